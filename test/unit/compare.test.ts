import { describe, expect, it } from 'vitest'
import { argmaxComparator, halfToFloat, relativeComparator } from '../../src/core/compare.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import type { DTypeName, WireTensor } from '../../src/core/tensor.js'

const f32 = (values: number[], dims = [values.length], name = 'y'): WireTensor =>
  fromTypedArray(name, 'float32', dims, new Float32Array(values))
const f64 = (values: number[], dims = [values.length], name = 'y'): WireTensor =>
  fromTypedArray(name, 'float64', dims, new Float64Array(values))

/** Encodes a number as IEEE half bits (round to nearest, normal range only: enough for tests). */
function toHalf (x: number): number {
  if (x === 0) return 0
  const sign = x < 0 ? 0x8000 : 0
  const a = Math.abs(x)
  const e = Math.floor(Math.log2(a))
  const frac = Math.round((a / 2 ** e - 1) * 1024)
  return sign | ((e + 15) << 10) | frac
}
const f16 = (values: number[], dims = [values.length], name = 'y'): WireTensor =>
  fromTypedArray(name, 'float16', dims, new Uint16Array(values.map(toHalf)))

describe('halfToFloat', () => {
  it('decodes normals, subnormals, zeros, infinities and NaN', () => {
    expect(halfToFloat(0x3c00)).toBe(1)
    expect(halfToFloat(0xc000)).toBe(-2)
    expect(halfToFloat(0x3555)).toBeCloseTo(0.333251953125, 12)
    expect(halfToFloat(0x7bff)).toBe(65504)
    expect(halfToFloat(0x0001)).toBe(2 ** -24)
    expect(halfToFloat(0x0000)).toBe(0)
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true)
    expect(halfToFloat(0x7c00)).toBe(Infinity)
    expect(halfToFloat(0xfc00)).toBe(-Infinity)
    expect(halfToFloat(0x7e00)).toBeNaN()
  })
})

describe('argmaxComparator', () => {
  const cmp = argmaxComparator('probs')

  it('agrees on the same argmax even when the scores differ', () => {
    expect(cmp([f32([0.1, 0.7, 0.2], [1, 3], 'probs')], [f32([0.3, 0.4, 0.3], [1, 3], 'probs')])).toBe(true)
    expect(cmp([f32([0.1, 0.7, 0.2], [1, 3], 'probs')], [f32([0.5, 0.4, 0.1], [1, 3], 'probs')])).toBe(false)
  })

  it('compares each row of a batched output', () => {
    const a = f32([0.9, 0.1, 0.2, 0.8], [2, 2], 'probs')
    const same = f32([0.6, 0.4, 0.0, 1.0], [2, 2], 'probs')
    const secondRowDiffers = f32([0.6, 0.4, 1.0, 0.0], [2, 2], 'probs')
    expect(cmp([a], [same])).toBe(true)
    expect(cmp([a], [secondRowDiffers])).toBe(false)
  })

  it('ignores other outputs and output order, and needs the named one on both sides with the same dims', () => {
    const a = [f32([1, 2, 3], [1, 3], 'logits'), f32([0.1, 0.9], [1, 2], 'probs')]
    const b = [f32([0.2, 0.8], [1, 2], 'probs'), f32([9, 9, 9], [1, 3], 'logits')]
    expect(cmp(a, b)).toBe(true)
    expect(cmp(a, [f32([1, 2, 3], [1, 3], 'logits')])).toBe(false)
    expect(cmp([f32([0.1, 0.9], [1, 2], 'probs')], [f32([0.1, 0.9], [2], 'probs')])).toBe(false)
  })

  it('handles float16 and float64 outputs, and ignores NaN', () => {
    expect(cmp([f16([0.25, 0.75], [1, 2], 'probs')], [f32([0.4, 0.6], [1, 2], 'probs')])).toBe(true)
    expect(cmp([f64([0.8, 0.2], [1, 2], 'probs')], [f16([0.75, 0.25], [1, 2], 'probs')])).toBe(true)
    expect(cmp([f32([NaN, 0.2, 0.9], [1, 3], 'probs')], [f32([0, 0.1, 0.5], [1, 3], 'probs')])).toBe(true)
    expect(cmp([f32([NaN, NaN], [1, 2], 'probs')], [f32([NaN, NaN], [1, 2], 'probs')])).toBe(false)
  })
})

describe('relativeComparator', () => {
  it('accepts float noise within the tolerance and rejects larger differences', () => {
    const cmp = relativeComparator() // 1e-4
    expect(cmp([f32([0.5, 0.25])], [f32([0.5 + 1e-6, 0.25 - 1e-6])])).toBe(true)
    expect(cmp([f32([0.5, 0.25])], [f32([0.5 + 1e-2, 0.25])])).toBe(false)
  })

  it('scales the tolerance with the magnitude above 1, symmetrically', () => {
    const cmp = relativeComparator(1e-4)
    expect(cmp([f64([1000])], [f64([1000.05])])).toBe(true) // 5e-5 relative
    expect(cmp([f64([1000])], [f64([1000.2])])).toBe(false) // 2e-4 relative
    expect(cmp([f64([1e-9])], [f64([5e-5])])).toBe(true) // absolute 1e-4 below 1
    const [a, b] = [[f64([1, 2000])], [f64([1.00005, 2000.1])]]
    expect(cmp(a, b)).toBe(cmp(b, a))
  })

  it('treats NaN as equal only to NaN and infinities only to themselves', () => {
    const cmp = relativeComparator()
    expect(cmp([f32([NaN, Infinity])], [f32([NaN, Infinity])])).toBe(true)
    expect(cmp([f32([NaN])], [f32([0])])).toBe(false)
    expect(cmp([f32([Infinity])], [f32([-Infinity])])).toBe(false)
    expect(cmp([f32([Infinity])], [f32([3e38])])).toBe(false)
  })

  it('needs the same output names (any order), dtypes and dims', () => {
    const cmp = relativeComparator()
    const a = [f32([1], [1], 'a'), f32([2, 3], [2], 'b')]
    expect(cmp(a, [f32([2, 3], [2], 'b'), f32([1], [1], 'a')])).toBe(true)
    expect(cmp(a, [f32([1], [1], 'a')])).toBe(false)
    expect(cmp(a, [f32([1], [1], 'a'), f32([2, 3], [2], 'c')])).toBe(false)
    expect(cmp(a, [f32([1], [1], 'a'), f32([2, 3], [1, 2], 'b')])).toBe(false)
    expect(cmp(a, [f32([1], [1], 'a'), f64([2, 3], [2], 'b')])).toBe(false)
    expect(cmp([f32([1], [1], 'a')], [f32([1], [1], 'a'), f32([1], [1], 'a')])).toBe(false)
  })

  it('compares float16 outputs by their decoded values', () => {
    const cmp = relativeComparator(1e-3)
    expect(cmp([f16([0.5, 1.5])], [f16([0.5, 1.5])])).toBe(true)
    // One half-precision ulp at 1.5 is ~0.001 (relative 6.5e-4): within 1e-3, not within 1e-4.
    const nextUp = fromTypedArray('y', 'float16', [2], new Uint16Array([toHalf(0.5), toHalf(1.5) + 1]))
    expect(cmp([f16([0.5, 1.5])], [nextUp])).toBe(true)
    expect(relativeComparator(1e-4)([f16([0.5, 1.5])], [nextUp])).toBe(false)
  })

  it('compares integer tensors exactly and bools by truthiness', () => {
    const cmp = relativeComparator(0.5)
    const int = (dtype: DTypeName, values: ArrayBufferView, n: number): WireTensor => fromTypedArray('y', dtype, [n], values)
    expect(cmp([int('int32', new Int32Array([1, 2]), 2)], [int('int32', new Int32Array([1, 2]), 2)])).toBe(true)
    expect(cmp([int('int32', new Int32Array([1, 2]), 2)], [int('int32', new Int32Array([1, 3]), 2)])).toBe(false)
    expect(cmp([int('int64', new BigInt64Array([5n]), 1)], [int('int64', new BigInt64Array([5n]), 1)])).toBe(true)
    expect(cmp([int('int64', new BigInt64Array([5n]), 1)], [int('int64', new BigInt64Array([6n]), 1)])).toBe(false)
    expect(cmp([int('bool', new Uint8Array([1, 0]), 2)], [int('bool', new Uint8Array([255, 0]), 2)])).toBe(true)
    expect(cmp([int('bool', new Uint8Array([1, 0]), 2)], [int('bool', new Uint8Array([0, 0]), 2)])).toBe(false)
  })

  it('rejects a malformed tensor (bytes do not match dims) and a bad tolerance', () => {
    const cmp = relativeComparator()
    const bad: WireTensor = { name: 'y', dtype: 'float32', dims: [3], data: new Uint8Array(8) }
    expect(cmp([bad], [bad])).toBe(false)
    expect(() => relativeComparator(-1)).toThrow(RangeError)
    expect(() => relativeComparator(NaN)).toThrow(RangeError)
  })
})

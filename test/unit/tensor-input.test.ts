/** User input (JSON, images, .npy) to wire tensors, and outputs back to JSON and summaries. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { DTYPES, DTYPE_BYTES, toTypedArray } from '../../src/core/tensor.js'
import type { DTypeName, WireTensor } from '../../src/core/tensor.js'
import type { TensorSpec } from '../../src/models/catalog.js'
import { writeNpy } from '../../src/models/npy.js'
import { readModelInfo } from '../../src/models/onnx-info.js'
import type { SupportedIo } from '../../src/models/onnx-info.js'
import { float16Bits, imageLayout, inputsFromJson, tensorFromImage, tensorFromJson, tensorFromNpy } from '../../src/models/tensor-input.js'
import type { InputSpec, RgbaImage } from '../../src/models/tensor-input.js'
import { float16Value, summarizeTensor, tensorToJson } from '../../src/models/tensor-output.js'
import { dynamicAddMul } from '../../src/models/test-models.js'
import { failure } from '../helpers/errors.js'

const spec = (dtype: DTypeName, dims: Array<number | string> = ['?']): TensorSpec => ({ name: 'x', dtype, dims })
const values = (t: WireTensor): unknown[] => [...toTypedArray(t)]

describe('tensorFromJson values', () => {
  it.each<[DTypeName, unknown[], unknown[]]>([
    ['float32', [1.5, -0, 'inf', '-inf', 1e-45, 3.4028234663852886e38], [1.5, -0, Infinity, -Infinity, 1.401298464324817e-45, 3.4028234663852886e38]],
    ['float64', [0.1, Number.MAX_VALUE, 'Infinity', '-INF', 5e-324], [0.1, Number.MAX_VALUE, Infinity, -Infinity, 5e-324]],
    ['int8', [-128, 127, '-5', 0], [-128, 127, -5, 0]],
    ['int16', [-32768, 32767], [-32768, 32767]],
    ['int32', [-2147483648, 2147483647, '+12'], [-2147483648, 2147483647, 12]],
    ['uint8', [0, 255], [0, 255]],
    ['uint16', [0, 65535], [0, 65535]],
    ['uint32', [0, 4294967295], [0, 4294967295]],
    ['int64', ['-9223372036854775808', '9223372036854775807', '9007199254740993', 9007199254740991, -3],
      [-(2n ** 63n), 2n ** 63n - 1n, 9007199254740993n, 9007199254740991n, -3n]],
    ['uint64', ['18446744073709551615', '0', 42], [2n ** 64n - 1n, 0n, 42n]],
    ['bool', [true, false, 1, 0], [1, 0, 1, 0]]
  ])('%s', (dtype, input, expected) => {
    const t = tensorFromJson(spec(dtype), input)
    expect(t).toMatchObject({ name: 'x', dtype, dims: [input.length] })
    expect(t.data.byteLength).toBe(input.length * DTYPE_BYTES[dtype])
    expect(values(t)).toEqual(expected)
  })

  it('NaN for every float type', () => {
    for (const dtype of ['float16', 'float32', 'float64'] as const) {
      expect(summarizeTensor(tensorFromJson(spec(dtype), ['nan', 'NaN'])).preview).toEqual(['nan', 'nan'])
    }
  })

  it('rejects values that do not fit the dtype, naming the element', () => {
    expect(failure(() => tensorFromJson(spec('int8', [2, 2]), [[1, 2], [3, 128]]))).toBe(
      "bad-request: input 'x': element [1, 1] is 128: expected an integer from -128 to 127")
    expect(failure(() => tensorFromJson(spec('uint8'), [-1]))).toMatch(/from 0 to 255/)
    expect(failure(() => tensorFromJson(spec('int32'), [1.5]))).toMatch(/element \[0\] is 1.5/)
    expect(failure(() => tensorFromJson(spec('int32'), ['1e3']))).toMatch(/expected an integer/)
    expect(failure(() => tensorFromJson(spec('uint32'), [2 ** 32]))).toMatch(/expected an integer/)
    expect(failure(() => tensorFromJson(spec('int64'), [2 ** 60]))).toMatch(/write it as a decimal string/)
    expect(failure(() => tensorFromJson(spec('int64'), ['9223372036854775808']))).toMatch(/expected an integer/)
    expect(failure(() => tensorFromJson(spec('uint64'), ['-1']))).toMatch(/expected an integer/)
    expect(failure(() => tensorFromJson(spec('uint64'), [1.5]))).toMatch(/expected an integer/)
    expect(failure(() => tensorFromJson(spec('bool'), [2]))).toMatch(/true, false, 0 or 1/)
    expect(failure(() => tensorFromJson(spec('bool'), ['true']))).toMatch(/true, false, 0 or 1/)
    expect(failure(() => tensorFromJson(spec('float32'), [null]))).toMatch(/element \[0\] is null: expected a number/)
    expect(failure(() => tensorFromJson(spec('float32'), ['1.5']))).toMatch(/expected a number/)
    expect(failure(() => tensorFromJson(spec('float32'), [1e39]))).toMatch(/out of float32 range/)
    expect(failure(() => tensorFromJson(spec('float16'), [65520]))).toMatch(/out of float16 range/)
  })
})

describe('float16', () => {
  const finite = Array.from({ length: 0x7c00 }, (_, bits) => bits)

  it('round-trips every finite half and rounds every midpoint to even', () => {
    const wrong: string[] = []
    const check = (x: number, bits: number): void => { if (float16Bits(x) !== bits) wrong.push(`${x} → ${float16Bits(x)}, not ${bits}`) }
    for (const bits of finite) {
      check(float16Value(bits), bits)
      check(-float16Value(bits), bits | 0x8000)
      if (bits === finite.length - 1) continue
      const mid = (float16Value(bits) + float16Value(bits + 1)) / 2 // exact in a double
      check(mid, bits % 2 === 0 ? bits : bits + 1)
      check(mid * (1 + 2 ** -40), bits + 1)
      check(mid * (1 - 2 ** -40), bits)
    }
    expect(wrong).toEqual([])
  })

  it('handles the edges: overflow, the largest half, underflow, signed zeros, NaN', () => {
    expect(float16Bits(65504)).toBe(0x7bff)
    expect(float16Bits(65519.99)).toBe(0x7bff)
    expect(float16Bits(65520)).toBe(0x7c00)
    expect(float16Bits(1e10)).toBe(0x7c00)
    expect(float16Bits(-Infinity)).toBe(0xfc00)
    expect(float16Bits(2 ** -25)).toBe(0) // a tie between 0 and the smallest subnormal
    expect(float16Bits(2 ** -25 * 1.0001)).toBe(1)
    expect(float16Bits(-0)).toBe(0x8000)
    expect(float16Bits(NaN)).toBe(0x7e00)
    expect(float16Value(0x7e00)).toBeNaN()
    // A float32 detour would round twice: 1 + 2^-11 + 2^-30 is just above a tie, so it rounds up.
    expect(float16Bits(1 + 2 ** -11 + 2 ** -30)).toBe(0x3c01)
  })

  it('is what tensorFromJson writes', () => {
    const t = tensorFromJson(spec('float16'), [1, -2, 0.1, 65504, 'inf', 6e-8])
    expect(values(t)).toEqual([0x3c00, 0xc000, 0x2e66, 0x7bff, 0x7c00, 0x0001])
  })
})

describe('tensorFromJson shapes', () => {
  it('infers the shape of nested arrays, scalars and empty lists', () => {
    expect(tensorFromJson(spec('int32', [2, 3]), '[[1, 2, 3], [4, 5, 6]]')).toMatchObject({ dims: [2, 3] })
    expect(values(tensorFromJson(spec('int32', [1, 2, 1]), [[[7], [8]]]))).toEqual([7, 8])
    expect(tensorFromJson(spec('float32', []), 2.5)).toMatchObject({ dims: [] })
    expect(tensorFromJson(spec('float32', ['n']), [])).toMatchObject({ dims: [0], data: new Uint8Array(0) })
    expect(tensorFromJson(spec('float32', ['n', 3]), { dims: [0, 3], data: [] })).toMatchObject({ dims: [0, 3] })
  })

  it('takes { dims, data } and the output of tensorToJson', () => {
    const t = tensorFromJson(spec('uint8', [2, 'w']), { dims: [2, 2], data: [1, 2, 3, 4] })
    expect(t).toMatchObject({ dims: [2, 2] })
    expect(tensorFromJson(spec('uint8', [2, 'w']), tensorToJson(t))).toEqual(t)
    expect(failure(() => tensorFromJson(spec('uint8'), { dims: [3], data: [1, 2] }))).toMatch(/"data" has 2 values, dims \[3\] need 3/)
    expect(failure(() => tensorFromJson(spec('uint8'), { dims: [-1], data: [] }))).toMatch(/"dims" must be/)
    expect(failure(() => tensorFromJson(spec('uint8'), { dims: [1], data: 5 }))).toMatch(/"data" must be a flat list/)
    expect(failure(() => tensorFromJson(spec('uint8'), { shape: [1], data: [5] }))).toMatch(/unexpected key 'shape'/)
    expect(failure(() => tensorFromJson(spec('uint8'), { dims: [1], data: [5], dtype: 'int8' }))).toMatch(/the data is int8, the model wants uint8/)
    expect(failure(() => tensorFromJson(spec('uint8'), { dims: [1], data: [[5]] }))).toMatch(/element \[0\] is \[5\]/)
  })

  it('rejects ragged arrays and bad JSON', () => {
    expect(failure(() => tensorFromJson(spec('float32', ['?', '?']), [[1, 2], [3]]))).toMatch(/not rectangular: \[1\] should be a list of 2 .*got 1/)
    expect(failure(() => tensorFromJson(spec('float32', ['?', '?']), [[1, 2], 3]))).toMatch(/not rectangular: \[1\] should be a list of 2/)
    expect(failure(() => tensorFromJson(spec('float32', ['?']), [1, [2]]))).toMatch(/not rectangular: \[1\] is nested deeper/)
    expect(failure(() => tensorFromJson(spec('float32'), '[1, 2'))).toMatch(/^bad-request: input 'x': not valid JSON/)
    expect(failure(() => tensorFromJson(spec('float32'), [[[[[[[[[1]]]]]]]]]))).toMatch(/more than 8 dimensions/)
  })

  it('checks dims against the spec: fixed sizes must match, symbolic and unknown ones take any', () => {
    const s = spec('float32', ['batch', 3])
    expect(tensorFromJson(s, [[1, 2, 3]])).toMatchObject({ dims: [1, 3] })
    expect(tensorFromJson(s, [[1, 2, 3], [4, 5, 6]])).toMatchObject({ dims: [2, 3] })
    expect(failure(() => tensorFromJson(s, [[1, 2]]))).toBe("bad-request: input 'x': axis 1 must be 3 (shape [batch, 3]), got 2 (shape [1, 2])")
    expect(failure(() => tensorFromJson(s, [1, 2, 3]))).toBe("bad-request: input 'x': expected 2 dimensions [batch, 3], got 1 [3]")
    expect(failure(() => tensorFromJson(spec('float32', []), [1]))).toMatch(/expected 0 dimensions/)
    expect(tensorFromJson(spec('float32', ['?', '?']), [[1], [2]])).toMatchObject({ dims: [2, 1] })
    const anyRank: InputSpec = { ...spec('float32', []), rankKnown: false }
    expect(tensorFromJson(anyRank, [[[1]]])).toMatchObject({ dims: [1, 1, 1] })
  })
})

describe('inputsFromJson', () => {
  const specs = readModelInfo(dynamicAddMul()).inputs as SupportedIo[]

  it('reads the sample inputs file for the sample model', () => {
    const [a, b] = inputsFromJson(specs, readFileSync('public/samples/models/add-mul.inputs.json', 'utf8'))
    expect(a).toMatchObject({ name: 'a', dtype: 'float32', dims: [2, 3] })
    expect(values(b!)).toEqual([0.5, -2, 10, 0.25, 0, -1])
  })

  it('names missing and unknown inputs', () => {
    expect(failure(() => inputsFromJson(specs, { a: [[1]] }))).toBe("bad-request: input 'b': missing")
    expect(failure(() => inputsFromJson(specs, { a: [[1]], b: [[1]], c: 1 }))).toMatch(/no input 'c'/)
    expect(failure(() => inputsFromJson(specs, '[1]'))).toMatch(/keyed by input name/)
  })
})

describe('tensorToJson', () => {
  /** Random bits, with NaNs made canonical and negative zeros positive (JSON text keeps neither). */
  function randomTensor (dtype: DTypeName, count: number, seed: number): WireTensor {
    const data = Uint8Array.from({ length: count * DTYPE_BYTES[dtype] }, (_, i) => ((i + 1) * 2654435761 * seed) >>> 24)
    const t: WireTensor = { name: 'r', dtype, dims: [count], data }
    const typed = toTypedArray(t)
    if (dtype === 'bool') typed.forEach((v, i) => { typed[i] = Number(v) & 1 })
    if (dtype === 'float16') typed.forEach((v, i) => { if ((Number(v) & 0x7c00) === 0x7c00 && (Number(v) & 0x3ff) !== 0) typed[i] = 0x7e00; if (v === 0x8000) typed[i] = 0 })
    if (typed instanceof Float32Array || typed instanceof Float64Array) typed.forEach((v, i) => { typed[i] = Number.isNaN(v) ? NaN : v === 0 ? 0 : v })
    return { ...t, data: new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength) }
  }

  it.each(DTYPES)('%s round-trips exactly through JSON text', dtype => {
    for (const seed of [1, 7, 13]) {
      const t = randomTensor(dtype, 2000, seed)
      const text = JSON.stringify(tensorToJson(t))
      expect(tensorFromJson(spec(dtype), text).data).toEqual(t.data)
    }
  })

  it('writes 64-bit integers as strings, non-finite floats as names, and short float32s', () => {
    expect(tensorToJson(tensorFromJson(spec('int64'), ['-9223372036854775808', 5])).data).toEqual(['-9223372036854775808', '5'])
    expect(tensorToJson(tensorFromJson(spec('float32'), [0.1, 'nan', '-inf', 1 / 3])).data).toEqual([0.1, 'nan', '-inf', 0.33333334])
    expect(tensorToJson(tensorFromJson(spec('float16'), [0.1])).data).toEqual([0.1])
    expect(tensorToJson(tensorFromJson(spec('bool'), [1, 0])).data).toEqual([true, false])
  })
})

describe('summarizeTensor', () => {
  it('gives count, preview, min, max, mean and argmax', () => {
    const s = summarizeTensor(tensorFromJson(spec('float32', [1, 4]), [[0.5, 3, -1, 3]]))
    expect(s).toEqual({ name: 'x', dtype: 'float32', dims: [1, 4], count: 4, preview: ['0.5', '3', '-1', '3'], min: -1, max: 3, mean: 1.375, argmax: 1 })
  })

  it('previews the first 20 values and leaves out argmax for batches and stats for empty tensors', () => {
    const s = summarizeTensor(tensorFromJson(spec('int64', [2, 15]), { dims: [2, 15], data: Array.from({ length: 30 }, (_, i) => String(i)) }))
    expect(s.preview).toHaveLength(20)
    expect(s).toMatchObject({ count: 30, min: 0, max: 29, mean: 14.5 })
    expect(s.argmax).toBeUndefined()
    expect(summarizeTensor(tensorFromJson(spec('uint8', [0]), []))).toEqual({ name: 'x', dtype: 'uint8', dims: [0], count: 0, preview: [] })
    expect(summarizeTensor(tensorFromJson(spec('float32'), [1, 'nan', 5]))).toMatchObject({ min: NaN, max: NaN, argmax: 2 })
  })

  it('refuses bytes that do not match the dims (results come from other peers)', () => {
    expect(failure(() => summarizeTensor({ name: 'y', dtype: 'float32', dims: [3], data: new Uint8Array(8) }))).toMatch(/8 bytes do not hold float32 \[3\]/)
  })
})

describe('tensorFromNpy', () => {
  it('checks the dtype and the dims against the spec', () => {
    const file = writeNpy(tensorFromJson(spec('int16', ['?', '?']), [[1, 2], [3, 4]]))
    expect(values(tensorFromNpy(spec('int16', ['n', 2]), file))).toEqual([1, 2, 3, 4])
    expect(tensorFromNpy({ name: 'other', dtype: 'int16', dims: [2, 2] }, file).name).toBe('other')
    expect(failure(() => tensorFromNpy(spec('float32', ['n', 2]), file))).toMatch(/the \.npy holds int16, the model wants float32/)
    expect(failure(() => tensorFromNpy(spec('int16', [2, 3]), file))).toMatch(/axis 1 must be 3/)
    expect(failure(() => tensorFromNpy(spec('int16', [2, 3]), file.subarray(0, 100)))).toMatch(/^bad-request: input 'x': truncated/)
  })
})

describe('images', () => {
  /** A w×h image whose pixel (x, y) is RGB (10x + y, 100 + y, 200 - x), alpha 128. */
  function image (w: number, h: number): RgbaImage {
    const data = new Uint8ClampedArray(w * h * 4)
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([10 * x + y, 100 + y, 200 - x, 128], (y * w + x) * 4)
    return { width: w, height: h, data }
  }

  it('recognises image-shaped inputs', () => {
    expect(imageLayout(spec('float32', ['batch', 1, 28, 28]))).toEqual({ layout: 'NCHW', channels: 1, height: 28, width: 28 })
    expect(imageLayout(spec('float32', ['p2o.0', 3, 'p2o.1', 'p2o.2']))).toEqual({ layout: 'NCHW', channels: 3, height: null, width: null })
    expect(imageLayout(spec('uint8', [1, 224, 224, 3]))).toEqual({ layout: 'NHWC', channels: 3, height: 224, width: 224 })
    expect(imageLayout(spec('float16', ['?', 'h', 'w', 1]))).toEqual({ layout: 'NHWC', channels: 1, height: null, width: null })
    expect(imageLayout(spec('float32', [2, 3, 224, 224]))).toBeNull() // a fixed batch of two
    expect(imageLayout(spec('int32', [1, 3, 224, 224]))).toBeNull()
    expect(imageLayout(spec('float32', [3, 224, 224]))).toBeNull()
    expect(imageLayout(spec('float32', [1, 4, 224, 224]))).toBeNull()
    expect(imageLayout(spec('float32', [1, 3, 0, 224]))).toBeNull()
  })

  it('NCHW float: channel planes of value / 255, at the natural size', () => {
    const t = tensorFromImage(spec('float32', ['n', 3, 'h', 'w']), image(3, 2))
    expect(t.dims).toEqual([1, 3, 2, 3])
    const v = values(t) as number[]
    expect(v.map(x => Math.round(x * 255))).toEqual([0, 10, 20, 1, 11, 21, 100, 100, 100, 101, 101, 101, 200, 199, 198, 200, 199, 198])
    expect(v[1]).toBe(Math.fround(10 / 255))
  })

  it('NHWC uint8: interleaved raw bytes; float16 and float64 scaled', () => {
    const t = tensorFromImage(spec('uint8', [1, 'h', 'w', 3]), image(2, 1))
    expect(t.dims).toEqual([1, 1, 2, 3])
    expect(values(t)).toEqual([0, 100, 200, 10, 100, 199])
    expect(values(tensorFromImage(spec('float16', [1, 'h', 'w', 3]), image(1, 1)))).toEqual([0, 100, 200].map(v => float16Bits(v / 255)))
    expect(values(tensorFromImage(spec('float64', [1, 'h', 'w', 3]), image(1, 1)))).toEqual([0, 100 / 255, 200 / 255])
  })

  it('gray: BT.601 luma, exact for gray pixels', () => {
    const gray: RgbaImage = { width: 2, height: 1, data: Uint8Array.of(255, 255, 255, 255, 7, 7, 7, 0) }
    expect(values(tensorFromImage(spec('float32', [1, 1, 'h', 'w']), gray))).toEqual([1, Math.fround(7 / 255)])
    const [v] = values(tensorFromImage(spec('float64', [1, 1, 1, 1]), { width: 1, height: 1, data: Uint8Array.of(100, 50, 200, 255) })) as number[]
    expect(v! * 255).toBeCloseTo(0.299 * 100 + 0.587 * 50 + 0.114 * 200, 10)
  })

  it('resizes bilinearly to fixed sizes: halving averages 2×2 blocks', () => {
    const t = tensorFromImage(spec('float64', [1, 3, 2, 2]), image(4, 4))
    const red = (values(t) as number[]).slice(0, 4).map(x => x * 255)
    // Block means of 10x + y over x, y in {0,1}, {2,3}.
    expect(red.map(x => Math.round(x * 1000) / 1000)).toEqual([5.5, 25.5, 7.5, 27.5])
  })

  it('resizes up with clamped edges', () => {
    const t = tensorFromImage(spec('uint8', [1, 1, 1, 4]), { width: 2, height: 1, data: Uint8Array.of(0, 0, 0, 255, 100, 100, 100, 255) })
    expect(values(t)).toEqual([0, 25, 75, 100])
  })

  it('keeps the aspect ratio when only one side is fixed', () => {
    expect(tensorFromImage(spec('float32', ['n', 3, 48, 'w']), image(100, 50)).dims).toEqual([1, 3, 48, 96])
    expect(tensorFromImage(spec('float32', ['n', 'h', 10, 1]), image(20, 30)).dims).toEqual([1, 15, 10, 1])
  })

  it('rejects non-image specs and malformed images', () => {
    expect(failure(() => tensorFromImage(spec('int64', [1, 3, 2, 2]), image(2, 2)))).toMatch(/is not an image input/)
    expect(failure(() => tensorFromImage(spec('float32', [1, 3, 2, 2]), { width: 2, height: 2, data: new Uint8Array(15) }))).toMatch(/not 2×2 RGBA/)
    // Size checks come before any pixel is read: a length-only stand-in for 100 MB of pixels will do.
    const huge = { width: 5000, height: 5000, data: { length: 5000 * 5000 * 4 } as unknown as Uint8Array }
    expect(failure(() => tensorFromImage(spec('float32', [1, 3, 'h', 'w']), huge))).toMatch(/at most 16777216/)
  })
})

describe('typed arrays from library callers', () => {
  const f32 = { name: 'x', dtype: 'float32' as const, dims: [1, 3] }
  it('takes the bytes of a typed array of the model\'s own dtype, the same as the JSON list gives', () => {
    const fromTyped = tensorFromJson(f32, { dims: [1, 3], data: new Float32Array([0.5, -2, 1e-3]).subarray(0) })
    const fromList = tensorFromJson(f32, { dims: [1, 3], data: [0.5, -2, Math.fround(1e-3)] })
    expect(fromTyped.data).toEqual(fromList.data)
    const i64 = tensorFromJson({ name: 'n', dtype: 'int64', dims: [2] }, { dims: [2], data: new BigInt64Array([2n ** 62n, -1n]) })
    expect(i64.data).toEqual(tensorFromJson({ name: 'n', dtype: 'int64', dims: [2] }, { dims: [2], data: [String(2n ** 62n), '-1'] }).data)
  })

  it('copies a view at an offset (not the whole buffer), and checks its length against dims', () => {
    const big = new Float32Array([9, 9, 1, 2, 3, 9])
    expect(tensorFromJson(f32, { dims: [1, 3], data: big.subarray(2, 5) }).data).toEqual(tensorFromJson(f32, { dims: [1, 3], data: [1, 2, 3] }).data)
    expect(() => tensorFromJson(f32, { dims: [1, 3], data: new Float32Array(4) })).toThrow(/"data" has 4 values, dims \[1, 3\] need 3/)
  })

  it('reads another typed array as a list, checked value by value', () => {
    expect(tensorFromJson({ name: 'x', dtype: 'float64', dims: [2] }, { dims: [2], data: new Float32Array([0.5, 2]) }).data)
      .toEqual(tensorFromJson({ name: 'x', dtype: 'float64', dims: [2] }, { dims: [2], data: [0.5, 2] }).data)
    expect(() => tensorFromJson({ name: 'x', dtype: 'uint8', dims: [1] }, { dims: [1], data: new Int16Array([-1]) })).toThrow(/element \[0\]/)
  })
})

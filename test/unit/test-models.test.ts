/** The generated test models run on onnxruntime-node and give exactly the expected outputs. */
import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { DTYPES, fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import type { DTypeName, WireTensor } from '../../src/core/tensor.js'
import { float16Bits, tensorFromJson } from '../../src/models/tensor-input.js'
import { tensorToJson } from '../../src/models/tensor-output.js'
import { castChain, dynamicAddMul, identityAllDtypes } from '../../src/models/test-models.js'

async function run (model: Uint8Array, inputs: WireTensor[]): Promise<Record<string, WireTensor>> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  try {
    const feeds = Object.fromEntries(inputs.map(t => [t.name, new ort.Tensor(t.dtype, toTypedArray(t), t.dims)]))
    const results = await session.run(feeds)
    return Object.fromEntries(Object.entries(results).map(([name, v]) =>
      [name, fromTypedArray(name, v.type as DTypeName, [...v.dims], v.data as ArrayBufferView)]))
  } finally {
    await session.release()
  }
}

/** Edge values per dtype, as JSON values; cycled to fill a tensor. */
const EDGE_VALUES: Record<DTypeName, unknown[]> = {
  float32: [0, -1.5, 3.4028234663852886e38, 1.401298464324817e-45, 'inf', '-inf', 'nan', 0.1],
  float64: [0, -1.5, Number.MAX_VALUE, Number.MIN_VALUE, 'inf', '-inf', 'nan', 0.1],
  float16: [0, -1.5, 65504, 2 ** -24, 'inf', '-inf', 'nan', 0.0999755859375],
  int8: [-128, 127, 0, -1],
  int16: [-32768, 32767, 0, -1],
  int32: [-2147483648, 2147483647, 0, -1],
  int64: ['-9223372036854775808', '9223372036854775807', '9007199254740993', -1],
  uint8: [0, 255, 1, 128],
  uint16: [0, 65535, 1, 32768],
  uint32: [0, 4294967295, 1, 2147483648],
  uint64: ['0', '18446744073709551615', '9007199254740993', 1],
  bool: [true, false, 1, 0]
}

const filled = (dtype: DTypeName, count: number): unknown[] =>
  Array.from({ length: count }, (_, i) => EDGE_VALUES[dtype][i % EDGE_VALUES[dtype].length])

describe('identityAllDtypes', () => {
  it.each([1, 4])('returns every dtype unchanged, byte for byte, with n = %i', async n => {
    const inputs = DTYPES.map(dtype =>
      tensorFromJson({ name: `in_${dtype}`, dtype, dims: ['n', 2] }, { dims: [n, 2], data: filled(dtype, n * 2) }))
    const outputs = await run(identityAllDtypes(), inputs)
    expect(Object.keys(outputs).sort()).toEqual(DTYPES.map(d => `out_${d}`).sort())
    for (const input of inputs) {
      const out = outputs[input.name.replace('in_', 'out_')]!
      expect(out.dtype).toBe(input.dtype)
      expect(out.dims).toEqual([n, 2])
      expect(out.data).toEqual(input.data)
      expect(tensorToJson(out).data).toEqual(tensorToJson(input).data)
    }
  })
})

describe('dynamicAddMul', () => {
  it.each([[1, 3], [4, 2]])('adds and multiplies float32 [%i, %i] exactly, and reports the shape', async (batch, n) => {
    const count = batch * n
    const a = Float32Array.from({ length: count }, (_, i) => (i - 2.3) * 1.7)
    const b = Float32Array.from({ length: count }, (_, i) => 1 / (i + 0.7))
    const outputs = await run(dynamicAddMul(), [
      fromTypedArray('a', 'float32', [batch, n], a),
      fromTypedArray('b', 'float32', [batch, n], b)
    ])
    // Double arithmetic on float32 operands, rounded once, is exactly float32 arithmetic.
    expect(toTypedArray(outputs.sum!)).toEqual(a.map((x, i) => Math.fround(x + b[i]!)))
    expect(toTypedArray(outputs.product!)).toEqual(a.map((x, i) => Math.fround(x * b[i]!)))
    expect(outputs.shape!.dtype).toBe('int64')
    expect(tensorToJson(outputs.shape!).data).toEqual([String(batch), String(n)])
  })
})

describe('castChain', () => {
  // Float16 ties (1 + 2^-11 → 1, 1 + 3·2^-11 → 1 + 2^-9), a subnormal, an overflow, truncation both ways.
  const X = [2.7, -2.7, 0, 0.5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 3.14159, 1e-6, 1e5, -65504, 70000.5]
  const X16 = [0x4166, 0xc166, 0, 0x3800, 0x3c00, 0x3c02, 0x4248, 0x0011, 0x7c00, 0xfbff, 0x7c00]
  const U = [0, 1, 127, 128, 255, 42, 7, 200, 3, 9, 250]

  it.each([3, X.length])('casts between dtypes as ONNX specifies, n = %i', async n => {
    const x = Float32Array.from(X.slice(0, n))
    const u = Uint8Array.from(U.slice(0, n))
    const out = await run(castChain(), [fromTypedArray('x', 'float32', [n], x), fromTypedArray('u', 'uint8', [n], u)])
    const xs = [...x]
    expect([...toTypedArray(out.x_int32!)]).toEqual(xs.map(Math.trunc))
    expect([...toTypedArray(out.x_float64!)]).toEqual(xs.map(Math.trunc))
    expect([...toTypedArray(out.x_int64!)]).toEqual(xs.map(v => BigInt(Math.trunc(v))))
    expect([...toTypedArray(out.x_bool!)]).toEqual(xs.map(v => v !== 0 ? 1 : 0))
    // onnxruntime's float → float16 conversion agrees with ours (round to nearest even) and with these bits.
    expect([...toTypedArray(out.x_float16!)]).toEqual(xs.map(float16Bits))
    expect([...toTypedArray(out.x_float16!)]).toEqual(X16.slice(0, n))
    expect([...toTypedArray(out.u_float32!)]).toEqual([...u])
    expect([...toTypedArray(out.u_int32!)]).toEqual([...u])
    for (const t of Object.values(out)) expect(t.dims).toEqual([n])
  })
})

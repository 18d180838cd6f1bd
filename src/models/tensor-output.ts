/** Shows model outputs to a user: a short summary, and JSON that tensorFromJson reads back. */
import { TaskError } from '../core/errors.js'
import { DTYPE_BYTES, elementCount } from '../core/tensor.js'
import type { DTypeName, WireTensor } from '../core/tensor.js'
import { float16Bits } from './tensor-input.js'

export { writeNpy as tensorToNpy } from './npy.js'

const PREVIEW = 20

export interface TensorSummary {
  name: string
  dtype: DTypeName
  dims: number[]
  count: number
  /** The first values, formatted as in tensorToJson. */
  preview: string[]
  /** Absent for empty tensors; NaN when any value is NaN. 64-bit integers are rounded to doubles. */
  min?: number
  max?: number
  mean?: number
  /** Index of the largest value, for a vector or a [1, K] batch of one: a classifier's answer. */
  argmax?: number
}

export interface TensorJson {
  name: string
  dtype: DTypeName
  dims: number[]
  /** Row-major values: 64-bit integers as decimal strings, non-finite floats as "nan", "inf", "-inf". */
  data: Array<number | string | boolean>
}

/** Value of IEEE half-precision bits. */
export function float16Value (bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const mantissa = bits & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN
  return sign * (1024 + mantissa) * 2 ** (exponent - 25)
}

type Get = (view: DataView, offset: number) => number | bigint

const GET: Readonly<Record<DTypeName, Get>> = {
  float32: (v, o) => v.getFloat32(o, true),
  float64: (v, o) => v.getFloat64(o, true),
  float16: (v, o) => float16Value(v.getUint16(o, true)),
  int8: (v, o) => v.getInt8(o),
  int16: (v, o) => v.getInt16(o, true),
  int32: (v, o) => v.getInt32(o, true),
  int64: (v, o) => v.getBigInt64(o, true),
  uint8: (v, o) => v.getUint8(o),
  uint16: (v, o) => v.getUint16(o, true),
  uint32: (v, o) => v.getUint32(o, true),
  uint64: (v, o) => v.getBigUint64(o, true),
  bool: (v, o) => v.getUint8(o)
}

/** The shortest decimal that reads back as the same float32 / float16, so JSON stays readable. */
const ROUND_TRIP: Partial<Record<DTypeName, (y: number, x: number) => boolean>> = {
  float32: (y, x) => Object.is(Math.fround(y), x),
  float16: (y, x) => float16Bits(y) === float16Bits(x)
}

function jsonValue (dtype: DTypeName, raw: number | bigint): number | string | boolean {
  if (typeof raw === 'bigint') return raw.toString()
  if (dtype === 'bool') return raw !== 0
  if (Number.isNaN(raw)) return 'nan'
  if (!Number.isFinite(raw)) return raw > 0 ? 'inf' : '-inf'
  const same = ROUND_TRIP[dtype]
  if (same === undefined) return raw
  for (let digits = 1; digits < 17; digits++) {
    const y = Number(raw.toPrecision(digits))
    if (same(y, raw)) return y
  }
  return raw
}

/** Reads every element; checks the bytes match the dims first, since results come from other peers. */
function values (t: WireTensor): { count: number, at: (i: number) => number | bigint } {
  const size = DTYPE_BYTES[t.dtype]
  const count = elementCount(t.dims)
  if (t.data.byteLength !== count * size) {
    throw new TaskError('bad-request', `${t.name}: ${t.data.byteLength} bytes do not hold ${t.dtype} [${t.dims.join(', ')}]`)
  }
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength)
  const get = GET[t.dtype]
  return { count, at: i => get(view, i * size) }
}

export function summarizeTensor (t: WireTensor): TensorSummary {
  const { count, at } = values(t)
  const preview: string[] = []
  for (let i = 0; i < Math.min(count, PREVIEW); i++) preview.push(String(jsonValue(t.dtype, at(i))))
  const summary: TensorSummary = { name: t.name, dtype: t.dtype, dims: [...t.dims], count, preview }
  if (count === 0) return summary

  let min = Infinity
  let max = -Infinity
  let sum = 0
  let argmax = 0
  let best = NaN
  for (let i = 0; i < count; i++) {
    const v = Number(at(i))
    min = Math.min(min, v)
    max = Math.max(max, v)
    sum += v
    if (v > best || Number.isNaN(best)) { best = v; argmax = i }
  }
  Object.assign(summary, { min, max, mean: sum / count })
  if (t.dims.length === 1 || (t.dims.length === 2 && t.dims[0] === 1)) summary.argmax = argmax
  return summary
}

/**
 * The inverse of tensorFromJson's { dims, data } form: every value reads back exactly, through JSON
 * text too (except the sign of a zero, which JSON.stringify drops, and NaN payloads).
 */
export function tensorToJson (t: WireTensor): TensorJson {
  const { count, at } = values(t)
  const data = Array.from({ length: count }, (_, i) => jsonValue(t.dtype, at(i)))
  return { name: t.name, dtype: t.dtype, dims: [...t.dims], data }
}

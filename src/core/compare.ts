/**
 * Output comparators: decide whether two workers' results for the same task are "the same
 * answer". The scheduler uses one as the equivalence when it votes on replicated results, so a
 * comparator must be symmetric and should tolerate the float noise honest hardware produces
 * (different backends, thread counts and SIMD paths do not give bit-identical floats).
 */
import { DTYPE_BYTES, elementCount, toTypedArray } from './tensor.js'
import type { DTypeName, WireTensor } from './tensor.js'

export type OutputComparator = (a: WireTensor[], b: WireTensor[]) => boolean

const FLOAT_TYPES: ReadonlySet<DTypeName> = new Set(['float16', 'float32', 'float64'])

/** Decodes one IEEE 754 half-precision value from its 16 raw bits. */
export function halfToFloat (bits: number): number {
  const sign = (bits & 0x8000) !== 0 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const fraction = bits & 0x3ff
  if (exponent === 0) return sign * fraction * 2 ** -24 // zero and subnormals
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15)
}

/** A tensor's elements as numbers (float16 decoded, 64-bit integers converted, possibly losing precision). */
export function tensorValues (t: WireTensor): ArrayLike<number> {
  const view = toTypedArray(t)
  if (t.dtype === 'float16') {
    const out = new Float64Array(view.length)
    for (let i = 0; i < view.length; i++) out[i] = halfToFloat(view[i] as number)
    return out
  }
  if (view instanceof BigInt64Array || view instanceof BigUint64Array) {
    const out = new Float64Array(view.length)
    for (let i = 0; i < view.length; i++) out[i] = Number(view[i])
    return out
  }
  return view as ArrayLike<number>
}

function sameDims (a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

/** The tensor is internally consistent: its byte length matches its dtype and dims. */
function wellFormed (t: WireTensor): boolean {
  return t.data.byteLength === elementCount(t.dims) * DTYPE_BYTES[t.dtype]
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** Index of the largest value in `values[from, to)` (first one on ties, NaN ignored); -1 when all are NaN. */
function argmax (values: ArrayLike<number>, from: number, to: number): number {
  let best = -1
  let bestValue = -Infinity
  for (let i = from; i < to; i++) {
    const v = values[i]
    if (Number.isNaN(v)) continue
    if (best < 0 || v > bestValue) { best = i - from; bestValue = v }
  }
  return best
}

/**
 * Classifiers: two results agree when the named output has the same dims and the same argmax —
 * per row when batched (the first dim is the batch, the rest are flattened into classes; a 0- or
 * 1-dim output is one row). Other outputs are ignored. A result missing the output, or whose row
 * is all NaN, agrees with nothing. Near-ties can flip the argmax between honest workers; that is
 * the price of comparing decisions rather than scores (use relativeComparator to compare scores).
 */
export function argmaxComparator (outputName: string): OutputComparator {
  return (a, b) => {
    const ta = a.find(t => t.name === outputName)
    const tb = b.find(t => t.name === outputName)
    if (ta == null || tb == null || !sameDims(ta.dims, tb.dims)) return false
    if (!wellFormed(ta) || !wellFormed(tb)) return false
    const va = tensorValues(ta)
    const vb = tensorValues(tb)
    const rows = ta.dims.length >= 2 ? ta.dims[0] : 1
    const width = rows > 0 ? va.length / rows : 0
    for (let r = 0; r < rows; r++) {
      const ia = argmax(va, r * width, (r + 1) * width)
      if (ia < 0 || ia !== argmax(vb, r * width, (r + 1) * width)) return false
    }
    return true
  }
}

/**
 * Every output must match: the same set of names, and for each the same dtype and dims. Float
 * values (float16 decoded) agree when |a − b| ≤ tolerance × max(1, |a|, |b|) elementwise — the
 * spec's tol × max(1, |a|), made symmetric so the vote does not depend on which result came
 * first; NaN agrees only with NaN and an infinity only with itself. Integer and bool tensors must
 * match exactly (bool compares truthiness, so any non-zero byte is true).
 */
export function relativeComparator (tolerance = 1e-4): OutputComparator {
  if (!(tolerance >= 0) || !Number.isFinite(tolerance)) throw new RangeError(`tolerance must be a finite number ≥ 0, not ${tolerance}`)
  return (a, b) => {
    if (a.length !== b.length) return false
    const byName = new Map(b.map(t => [t.name, t]))
    if (byName.size !== b.length) return false
    for (const ta of a) {
      const tb = byName.get(ta.name)
      if (tb == null || ta.dtype !== tb.dtype || !sameDims(ta.dims, tb.dims)) return false
      if (!wellFormed(ta) || !wellFormed(tb)) return false
      if (FLOAT_TYPES.has(ta.dtype)) {
        if (!floatsClose(tensorValues(ta), tensorValues(tb), tolerance)) return false
      } else if (ta.dtype === 'bool') {
        for (let i = 0; i < ta.data.byteLength; i++) if ((ta.data[i] !== 0) !== (tb.data[i] !== 0)) return false
      } else if (!bytesEqual(ta.data, tb.data)) {
        return false
      }
    }
    return true
  }
}

function floatsClose (a: ArrayLike<number>, b: ArrayLike<number>, tolerance: number): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    const x = a[i]
    const y = b[i]
    if (x === y) continue // also equal infinities
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) && Number.isNaN(y)) continue
      return false
    }
    if (!Number.isFinite(x) || !Number.isFinite(y)) return false
    if (Math.abs(x - y) > tolerance * Math.max(1, Math.abs(x), Math.abs(y))) return false
  }
  return true
}

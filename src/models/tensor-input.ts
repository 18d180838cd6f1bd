/**
 * Turns what a user gives (JSON, an image, a .npy file) into the wire tensor a model input expects,
 * with errors that name the input, the axis or the element at fault.
 */
import { TaskError } from '../core/errors.js'
import { DEFAULT_LIMITS } from '../core/limits.js'
import { DTYPE_BYTES, elementCount, isNativeArrayOf } from '../core/tensor.js'
import type { DTypeName, WireTensor } from '../core/tensor.js'
import type { TensorSpec } from './catalog.js'
import { parseNpy } from './npy.js'
import { axisTaps } from '../ocr/image.js'
import type { RgbaImage } from '../ocr/image.js'

export type { RgbaImage }

/** A model input; `rankKnown: false` (a model that leaves the rank open) accepts any shape. */
export type InputSpec = TensorSpec & { rankKnown?: boolean }

const bad = (spec: TensorSpec, detail: string): TaskError => new TaskError('bad-request', `input '${spec.name}': ${detail}`)

const fmtDims = (dims: ReadonlyArray<number | string>): string => `[${dims.join(', ')}]`

/** Checks a tensor's dims against the spec (symbolic and '?' dims take any size) and the wire limits. */
function checkDims (spec: InputSpec, dims: number[]): void {
  if (dims.length > DEFAULT_LIMITS.maxDims) throw bad(spec, `${dims.length} dimensions, at most ${DEFAULT_LIMITS.maxDims} are allowed`)
  const count = elementCount(dims)
  if (count > DEFAULT_LIMITS.maxElements) throw bad(spec, `${count} elements, at most ${DEFAULT_LIMITS.maxElements} are allowed`)
  if (spec.rankKnown === false) return
  if (dims.length !== spec.dims.length) {
    throw bad(spec, `expected ${spec.dims.length} dimensions ${fmtDims(spec.dims)}, got ${dims.length} ${fmtDims(dims)}`)
  }
  spec.dims.forEach((want, axis) => {
    if (typeof want === 'number' && dims[axis] !== want) {
      throw bad(spec, `axis ${axis} must be ${want} (shape ${fmtDims(spec.dims)}), got ${dims[axis]!} (shape ${fmtDims(dims)})`)
    }
  })
}

// ---------------------------------------------------------------- JSON

/**
 * `input` is JSON text or an already parsed value: a nested array (its shape is the tensor's),
 * a bare scalar, or { dims, data } with data flat in row-major order (what tensorToJson writes).
 */
export function tensorFromJson (spec: InputSpec, input: unknown): WireTensor {
  const value = typeof input === 'string' ? parseJson(`input '${spec.name}'`, input) : input
  const { dims, values, bytes }: { dims: number[], values?: unknown[], bytes?: Uint8Array } = isPlainObject(value) ? dimsAndData(spec, value) : flatten(spec, value)
  checkDims(spec, dims)
  return { name: spec.name, dtype: spec.dtype, dims, data: bytes ?? encode(spec, dims, values!) }
}

/** JSON text or value of the form { "<input name>": <tensorFromJson input>, ... } for every input. */
export function inputsFromJson (specs: readonly InputSpec[], input: unknown): WireTensor[] {
  const value = typeof input === 'string' ? parseJson('inputs', input) : input
  if (!isPlainObject(value)) throw new TaskError('bad-request', 'inputs: expected a JSON object keyed by input name')
  const unknown = Object.keys(value).filter(k => !specs.some(s => s.name === k))
  if (unknown.length > 0) throw new TaskError('bad-request', `inputs: the model has no input ${unknown.map(k => `'${k}'`).join(', ')}`)
  return specs.map(spec => {
    if (!Object.hasOwn(value, spec.name)) throw bad(spec, 'missing')
    return tensorFromJson(spec, value[spec.name])
  })
}

function parseJson (what: string, text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new TaskError('bad-request', `${what}: not valid JSON (${(err as Error).message})`)
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function dimsAndData (spec: TensorSpec, obj: Record<string, unknown>): { dims: number[], values?: unknown[], bytes?: Uint8Array } {
  const extra = Object.keys(obj).filter(k => !['dims', 'data', 'name', 'dtype'].includes(k))
  if (extra.length > 0) throw bad(spec, `unexpected key '${extra[0]!}'; use { "dims": [...], "data": [...] }`)
  if (obj.dtype !== undefined && obj.dtype !== spec.dtype) throw bad(spec, `the data is ${String(obj.dtype)}, the model wants ${spec.dtype}`)
  const { dims } = obj
  if (!Array.isArray(dims) || dims.length > DEFAULT_LIMITS.maxDims || !dims.every(d => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(spec, `"dims" must be a list of at most ${DEFAULT_LIMITS.maxDims} non-negative integers`)
  }
  // A library caller's typed array of the model's own dtype (a Float32Array for float32) is copied
  // as bytes; any other typed array reads as the plain list JSON gives.
  if (isNativeArrayOf(spec.dtype, obj.data)) {
    if (obj.data.length !== elementCount(dims)) throw bad(spec, `"data" has ${obj.data.length} values, dims ${fmtDims(dims)} need ${elementCount(dims)}`)
    return { dims, bytes: new Uint8Array(obj.data.buffer.slice(obj.data.byteOffset, obj.data.byteOffset + obj.data.byteLength)) }
  }
  const data = ArrayBuffer.isView(obj.data) && !(obj.data instanceof DataView) ? Array.from(obj.data as unknown as ArrayLike<number>) : obj.data
  if (!Array.isArray(data)) throw bad(spec, '"data" must be a flat list of values')
  if (data.length !== elementCount(dims)) throw bad(spec, `"data" has ${data.length} values, dims ${fmtDims(dims)} need ${elementCount(dims)}`)
  return { dims, values: data }
}

/** A nested array's shape (from its first elements) and its values, checked to be rectangular. */
function flatten (spec: TensorSpec, value: unknown): { dims: number[], values: unknown[] } {
  const dims: number[] = []
  for (let v = value; Array.isArray(v); v = v[0]) {
    if (dims.length === DEFAULT_LIMITS.maxDims) throw bad(spec, `more than ${DEFAULT_LIMITS.maxDims} dimensions`)
    dims.push(v.length)
  }
  const values: unknown[] = []
  const walk = (v: unknown, axis: number, path: string): void => {
    if (axis === dims.length) {
      if (Array.isArray(v)) throw bad(spec, `not rectangular: ${path} is nested deeper than the first element`)
      values.push(v)
      return
    }
    if (!Array.isArray(v) || v.length !== dims[axis]) {
      throw bad(spec, `not rectangular: ${path} should be a list of ${dims[axis]!} (like the first), got ${Array.isArray(v) ? `${v.length}` : JSON.stringify(v)}`)
    }
    v.forEach((item, i) => walk(item, axis + 1, `${path}[${i}]`))
  }
  walk(value, 0, '')
  return { dims, values }
}

/** Writes `values` as little-endian `spec.dtype`, naming the first bad element by its index. */
function encode (spec: TensorSpec, dims: number[], values: readonly unknown[]): Uint8Array {
  const size = DTYPE_BYTES[spec.dtype]
  const data = new Uint8Array(values.length * size)
  const view = new DataView(data.buffer)
  const put = PUT[spec.dtype]
  for (let i = 0; i < values.length; i++) {
    const problem = put(view, i * size, values[i])
    if (problem !== undefined) {
      const shown = JSON.stringify(values[i]) ?? String(values[i])
      throw bad(spec, `element ${fmtIndex(i, dims)} is ${shown.slice(0, 40)}: ${problem}`)
    }
  }
  return data
}

/** A flat row-major index as [i, j, k]. */
function fmtIndex (flat: number, dims: readonly number[]): string {
  const index: number[] = []
  for (let axis = dims.length - 1; axis >= 0; axis--) {
    index.unshift(flat % dims[axis]!)
    flat = Math.floor(flat / dims[axis]!)
  }
  return fmtDims(index)
}

/** Writes one element; returns why it cannot, or undefined once written. */
type Put = (view: DataView, offset: number, value: unknown) => string | undefined

const SPECIAL_FLOATS = new Map([['nan', NaN], ['inf', Infinity], ['+inf', Infinity], ['-inf', -Infinity], ['infinity', Infinity], ['-infinity', -Infinity]])

function floatPut (dtype: string, fits: (x: number) => boolean, set: (view: DataView, offset: number, x: number) => void): Put {
  return (view, offset, value) => {
    const x = typeof value === 'number' ? value : typeof value === 'string' ? SPECIAL_FLOATS.get(value.toLowerCase()) : undefined
    if (x === undefined) return 'expected a number or "nan", "inf", "-inf"'
    // Silently turning 1e39 into float32 infinity would hide a mistake.
    if (Number.isFinite(x) && !fits(x)) return `out of ${dtype} range`
    set(view, offset, x)
  }
}

const DECIMAL = /^[+-]?\d{1,20}$/

function intPut (min: number, max: number, set: (view: DataView, offset: number, x: number) => void): Put {
  return (view, offset, value) => {
    const x = typeof value === 'string' && DECIMAL.test(value) ? Number(value) : value
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) return `expected an integer from ${min} to ${max}`
    set(view, offset, x)
  }
}

/** 64-bit integers: JSON numbers are exact only to 2^53, so bigger values come as decimal strings. */
function bigIntPut (min: bigint, max: bigint, set: (view: DataView, offset: number, x: bigint) => void): Put {
  return (view, offset, value) => {
    if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
      return 'beyond 2^53 a JSON number has lost its exact value; write it as a decimal string'
    }
    const x = Number.isSafeInteger(value) ? BigInt(value as number) : typeof value === 'string' && DECIMAL.test(value) ? BigInt(value) : undefined
    if (x === undefined || x < min || x > max) return `expected an integer from ${min} to ${max} (a number or a decimal string)`
    set(view, offset, x)
  }
}

const PUT: Readonly<Record<DTypeName, Put>> = {
  float32: floatPut('float32', x => Number.isFinite(Math.fround(x)), (v, o, x) => v.setFloat32(o, x, true)),
  float64: floatPut('float64', () => true, (v, o, x) => v.setFloat64(o, x, true)),
  float16: floatPut('float16', x => (float16Bits(x) & 0x7fff) !== 0x7c00, (v, o, x) => v.setUint16(o, float16Bits(x), true)),
  int8: intPut(-0x80, 0x7f, (v, o, x) => v.setInt8(o, x)),
  int16: intPut(-0x8000, 0x7fff, (v, o, x) => v.setInt16(o, x, true)),
  int32: intPut(-0x80000000, 0x7fffffff, (v, o, x) => v.setInt32(o, x, true)),
  int64: bigIntPut(-(2n ** 63n), 2n ** 63n - 1n, (v, o, x) => v.setBigInt64(o, x, true)),
  uint8: intPut(0, 0xff, (v, o, x) => v.setUint8(o, x)),
  uint16: intPut(0, 0xffff, (v, o, x) => v.setUint16(o, x, true)),
  uint32: intPut(0, 0xffffffff, (v, o, x) => v.setUint32(o, x, true)),
  uint64: bigIntPut(0n, 2n ** 64n - 1n, (v, o, x) => v.setBigUint64(o, x, true)),
  bool: (view, offset, value) => {
    if (value !== true && value !== false && value !== 0 && value !== 1) return 'expected true, false, 0 or 1'
    view.setUint8(offset, value === true || value === 1 ? 1 : 0)
  }
}

/**
 * IEEE half-precision bits of `x`, rounded to nearest even straight from the double
 * (going through float32 first would round twice and can be off by one unit).
 */
export function float16Bits (x: number): number {
  if (Number.isNaN(x)) return 0x7e00
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0
  const a = Math.abs(x)
  // Below 2^-14 halves are subnormal: multiples of 2^-24. Rounding up to 1024 units gives the
  // smallest normal, whose bits are exactly 1024, so no special case is needed.
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24)
  let e = Math.floor(Math.log2(a))
  if (2 ** e > a) e-- // log2 can be off by one ulp next to powers of two
  else if (2 ** (e + 1) <= a) e++
  if (e > 15) return sign | 0x7c00
  // 10 mantissa bits; a carry to 2048 rolls into the exponent (and 65520 and up into infinity).
  const m = roundHalfEven(a * 2 ** (10 - e))
  return sign | (((e + 15) << 10) + m - 1024)
}

function roundHalfEven (y: number): number {
  const f = Math.floor(y)
  const d = y - f
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f
}

// ---------------------------------------------------------------- .npy

/** A .npy file for `spec`: its dtype must match exactly, its shape as for JSON. */
export function tensorFromNpy (spec: InputSpec, bytes: Uint8Array): WireTensor {
  const t = parseNpy(bytes, `input '${spec.name}'`)
  if (t.dtype !== spec.dtype) throw bad(spec, `the .npy holds ${t.dtype}, the model wants ${spec.dtype}`)
  checkDims(spec, t.dims)
  return { ...t, name: spec.name }
}

// ---------------------------------------------------------------- images

export interface ImageLayout {
  layout: 'NCHW' | 'NHWC'
  channels: 1 | 3
  /** Sizes the model fixes; null where it takes any size. */
  height: number | null
  width: number | null
}

type ImageDType = 'float32' | 'float64' | 'float16' | 'uint8'

/** Writes one pixel value in 0..255, by the dtypes an image input can have. */
const IMAGE_PUT: Readonly<Record<ImageDType, (view: DataView, offset: number, v: number) => void>> = {
  float32: (view, o, v) => view.setFloat32(o, v / 255, true),
  float64: (view, o, v) => view.setFloat64(o, v / 255, true),
  float16: (view, o, v) => view.setUint16(o, float16Bits(v / 255), true),
  uint8: (view, o, v) => view.setUint8(o, Math.round(v))
}

/**
 * Whether an input takes a single image: [N, C, H, W] or [N, H, W, C] with C 1 (gray) or 3 (RGB),
 * N 1 or dynamic, and a float or uint8 dtype. NCHW wins when both could match, as in most ONNX models.
 */
export function imageLayout (spec: TensorSpec): ImageLayout | null {
  const { dims } = spec
  if (dims.length !== 4 || !Object.hasOwn(IMAGE_PUT, spec.dtype) || dims.some(d => typeof d === 'number' && d < 1)) return null
  if (typeof dims[0] === 'number' && dims[0] !== 1) return null
  const size = (d: number | string): number | null => typeof d === 'number' ? d : null
  if (dims[1] === 1 || dims[1] === 3) return { layout: 'NCHW', channels: dims[1], height: size(dims[2]!), width: size(dims[3]!) }
  if (dims[3] === 1 || dims[3] === 3) return { layout: 'NHWC', channels: dims[3], height: size(dims[1]!), width: size(dims[2]!) }
  return null
}

/**
 * An image as a batch of one: floats get value / 255, uint8 the raw value; gray is BT.601 luma;
 * alpha is dropped. Resized (bilinear) to the spec's fixed height and width; when only one is fixed
 * the other follows the aspect ratio, when neither is the image keeps its size.
 */
export function tensorFromImage (spec: InputSpec, img: RgbaImage): WireTensor {
  const layout = imageLayout(spec)
  if (layout === null) throw bad(spec, `${spec.dtype} ${fmtDims(spec.dims)} is not an image input ([1,1|3,H,W] or [1,H,W,1|3], float or uint8)`)
  const { width: w, height: h, data: rgba } = img
  if (!Number.isSafeInteger(w) || !Number.isSafeInteger(h) || w <= 0 || h <= 0 || rgba.length !== w * h * 4) {
    throw bad(spec, `the image is not ${w}×${h} RGBA pixels`)
  }
  const H = layout.height ?? (layout.width === null ? h : Math.max(1, Math.round(h * layout.width / w)))
  const W = layout.width ?? Math.max(1, Math.round(w * H / h))
  const C = layout.channels
  const dims = layout.layout === 'NCHW' ? [1, C, H, W] : [1, H, W, C]
  checkDims(spec, dims)

  const cols = axisTaps(w, W)
  const rows = axisTaps(h, H)
  const channel = (c: number) => (p: number): number => rgba[p + c]!
  // Integer weights keep gray pixels exact: (299 + 587 + 114) v / 1000 = v.
  const luma = (p: number): number => (299 * rgba[p]! + 587 * rgba[p + 1]! + 114 * rgba[p + 2]!) / 1000
  const readers = C === 3 ? [channel(0), channel(1), channel(2)] : [luma]

  const size = DTYPE_BYTES[spec.dtype]
  const data = new Uint8Array(C * H * W * size)
  const view = new DataView(data.buffer)
  const put = IMAGE_PUT[spec.dtype as ImageDType]
  for (let y = 0; y < H; y++) {
    const y0 = rows.i0[y]!; const y1 = rows.i1[y]!; const fy = rows.a[y]!
    for (let x = 0; x < W; x++) {
      const x0 = cols.i0[x]!; const x1 = cols.i1[x]!; const fx = cols.a[x]!
      const p00 = (y0 * w + x0) * 4; const p01 = (y0 * w + x1) * 4
      const p10 = (y1 * w + x0) * 4; const p11 = (y1 * w + x1) * 4
      for (let c = 0; c < C; c++) {
        const read = readers[c]!
        const top = read(p00) * (1 - fx) + read(p01) * fx
        const bottom = read(p10) * (1 - fx) + read(p11) * fx
        const index = layout.layout === 'NCHW' ? (c * H + y) * W + x : (y * W + x) * C + c
        put(view, index * size, top * (1 - fy) + bottom * fy)
      }
    }
  }
  return { name: spec.name, dtype: spec.dtype, dims, data }
}


/** Tensor element types and the raw-bytes representation used on the wire. */

export type DTypeName =
  | 'float32' | 'float64' | 'float16'
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'bool'

/** Bytes per element, by dtype. */
export const DTYPE_BYTES: Readonly<Record<DTypeName, number>> = {
  float32: 4, float64: 8, float16: 2,
  int8: 1, int16: 2, int32: 4, int64: 8,
  uint8: 1, uint16: 2, uint32: 4, uint64: 8,
  bool: 1
}

export const DTYPES = Object.keys(DTYPE_BYTES) as DTypeName[]

/** A named tensor as raw little-endian bytes: what travels between peers. */
export interface WireTensor {
  name: string
  dtype: DTypeName
  dims: number[]
  data: Uint8Array
}

/** The typed arrays onnxruntime takes (float16 as raw Uint16 bits, bool as bytes). */
export type AnyTypedArray =
  | Float32Array | Float64Array | Uint16Array | Int8Array | Int16Array | Int32Array
  | BigInt64Array | Uint8Array | Uint32Array | BigUint64Array

type TypedArrayCtor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => AnyTypedArray

const CTORS: Record<DTypeName, TypedArrayCtor> = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array,
  int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  bool: Uint8Array
}

/**
 * Whether `v` is the typed array that holds `dtype`'s values as they travel (little-endian, as on
 * every platform onnxruntime runs on): its bytes can be taken as they are. float16 and bool are
 * never (a Uint16Array or Uint8Array of them is ambiguous).
 */
export function isNativeArrayOf (dtype: DTypeName, v: unknown): v is AnyTypedArray {
  return dtype !== 'float16' && dtype !== 'bool' && v instanceof CTORS[dtype]
}

export function isDType (value: string): value is DTypeName {
  return Object.hasOwn(DTYPE_BYTES, value)
}

/** Number of elements for the given dims (1 for a scalar). */
export function elementCount (dims: readonly number[]): number {
  let n = 1
  for (const d of dims) n *= d
  return n
}

/** Views a wire tensor's bytes as the typed array onnxruntime wants; copies only when misaligned. */
export function toTypedArray (t: WireTensor): AnyTypedArray {
  const size = DTYPE_BYTES[t.dtype]
  const length = t.data.byteLength / size
  let { buffer, byteOffset } = t.data
  if (byteOffset % size !== 0 || !(buffer instanceof ArrayBuffer)) {
    const copy = new Uint8Array(t.data)
    buffer = copy.buffer
    byteOffset = 0
  }
  return new CTORS[t.dtype](buffer as ArrayBuffer, byteOffset, length)
}

/** Wraps a typed array as a wire tensor without copying. */
export function fromTypedArray (name: string, dtype: DTypeName, dims: number[], values: ArrayBufferView): WireTensor {
  return { name, dtype, dims: [...dims], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) }
}

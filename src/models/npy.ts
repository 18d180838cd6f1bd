/**
 * NumPy .npy files (format versions 1 to 3) to and from wire tensors.
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import { TaskError } from '../core/errors.js'
import { DTYPE_BYTES, elementCount } from '../core/tensor.js'
import type { DTypeName, WireTensor } from '../core/tensor.js'

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY
/** numpy pads the header so the data starts on a 64-byte boundary. */
const ALIGN = 64
/** numpy ≥ 1.24 leaves room to grow the first axis in place: up to 21 digits. */
const GROWTH_AXIS_MAX_DIGITS = 21

/** The type code after the byte-order character, by dtype. */
const TYPE_CODES: Readonly<Record<DTypeName, string>> = {
  float32: 'f4', float64: 'f8', float16: 'f2',
  int8: 'i1', int16: 'i2', int32: 'i4', int64: 'i8',
  uint8: 'u1', uint16: 'u2', uint32: 'u4', uint64: 'u8',
  bool: 'b1'
}

const DTYPE_OF_CODE = new Map(Object.entries(TYPE_CODES).map(([dtype, code]) => [code, dtype as DTypeName]))

const bad = (name: string, detail: string): TaskError => new TaskError('bad-request', `${name}: ${detail}`)

/** Reads a .npy file as a little-endian wire tensor called `name`. */
export function parseNpy (bytes: Uint8Array, name: string): WireTensor {
  if (bytes.byteLength < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad(name, 'not a .npy file')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const major = bytes[6]!
  if (major < 1 || major > 3) throw bad(name, `unsupported .npy version ${major}.${bytes[7]!}`)
  // Version 1 stores the header length in 2 bytes, later versions in 4.
  const headerStart = major === 1 ? 10 : 12
  if (bytes.byteLength < headerStart) throw bad(name, 'truncated .npy header')
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  const dataStart = headerStart + headerLength
  if (dataStart > bytes.byteLength) throw bad(name, 'truncated .npy header')

  const header = parseHeader(new TextDecoder().decode(bytes.subarray(headerStart, dataStart)), name)
  const match = /^([<>=|])([a-zA-Z]\d*)$/.exec(header.descr)
  const dtype = match === null ? undefined : DTYPE_OF_CODE.get(match[2]!)
  if (match === null || dtype === undefined) {
    throw bad(name, `unsupported .npy dtype '${header.descr}' (supported: ${[...DTYPE_OF_CODE.keys()].join(' ')})`)
  }
  // Column-major data would need a transpose; numpy writes C order unless asked otherwise.
  if (header.fortranOrder) throw bad(name, '.npy data is in Fortran order; save it with np.ascontiguousarray() first')

  const count = elementCount(header.shape)
  const size = DTYPE_BYTES[dtype]
  const expected = count * size
  const actual = bytes.byteLength - dataStart
  if (!Number.isSafeInteger(expected) || actual !== expected) {
    throw bad(name, `.npy data is ${actual} bytes, expected ${expected} for shape (${header.shape.join(', ')}) of ${dtype}`)
  }
  const data = bytes.slice(dataStart)
  // '=' (native order) is taken as little-endian, as on every machine a browser runs on.
  if (match[1] === '>') swapBytes(data, size)
  return { name, dtype, dims: header.shape, data }
}

/** Writes a wire tensor as a version 1 .npy file, byte for byte as numpy's np.save does. */
export function writeNpy (t: WireTensor): Uint8Array {
  const size = DTYPE_BYTES[t.dtype]
  if (t.data.byteLength !== elementCount(t.dims) * size) {
    throw bad(t.name, `${t.data.byteLength} bytes do not hold a ${t.dtype} tensor of shape [${t.dims.join(', ')}]`)
  }
  const shape = t.dims.length === 1 ? `(${t.dims[0]!},)` : `(${t.dims.join(', ')})`
  let header = `{'descr': '${size === 1 ? '|' : '<'}${TYPE_CODES[t.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`
  if (t.dims.length > 0) header += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(t.dims[0]).length))
  const unpadded = 10 + header.length + 1 // magic, version, length, header, '\n'
  header += ' '.repeat((ALIGN - unpadded % ALIGN) % ALIGN) + '\n'
  if (header.length > 0xffff) throw bad(t.name, `too many dimensions for a .npy header (${t.dims.length})`)

  const out = new Uint8Array(10 + header.length + t.data.byteLength)
  out.set(MAGIC)
  out[6] = 1
  new DataView(out.buffer).setUint16(8, header.length, true)
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i)
  out.set(t.data, 10 + header.length)
  return out
}

function swapBytes (data: Uint8Array, size: number): void {
  for (let i = 0; i < data.length; i += size) data.subarray(i, i + size).reverse()
}

interface Header { descr: string, fortranOrder: boolean, shape: number[] }

/**
 * The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
 * This parses just that grammar (strings, True/False, tuples of ints), nothing Python can eval.
 */
function parseHeader (text: string, name: string): Header {
  let i = 0
  const fail = (what: string): never => { throw bad(name, `malformed .npy header (${what} at ${i}): ${text.trim().slice(0, 200)}`) }
  const skipSpace = (): void => { while (/\s/.test(text[i] ?? '')) i++ }
  const eat = (ch: string): boolean => {
    skipSpace()
    if (text[i] !== ch) return false
    i++
    return true
  }
  const string = (): string => {
    skipSpace()
    const quote = text[i]
    if (quote !== "'" && quote !== '"') return fail('expected a string')
    const end = text.indexOf(quote, i + 1)
    if (end < 0) return fail('unterminated string')
    const s = text.slice(i + 1, end)
    i = end + 1
    return s
  }
  const value = (): string | boolean | number[] => {
    skipSpace()
    const word = /^(True|False)\b/.exec(text.slice(i, i + 6))
    if (word !== null) {
      i += word[1]!.length
      return word[1] === 'True'
    }
    if (text[i] === '[') return fail('structured dtypes are not supported')
    if (!eat('(')) return string()
    const tuple: number[] = []
    while (!eat(')')) {
      skipSpace()
      // Python 2 wrote long ints with an L suffix.
      const int = /^(\d+)L?/.exec(text.slice(i, i + 24))
      if (int === null) return fail('expected a dimension')
      tuple.push(Number(int[1]))
      i += int[0].length
      if (!eat(',') && text[i] !== ')') fail("expected ',' or ')'")
    }
    return tuple
  }

  const fields = new Map<string, string | boolean | number[]>()
  if (!eat('{')) fail("expected '{'")
  while (!eat('}')) {
    const key = string()
    if (!eat(':')) fail("expected ':'")
    fields.set(key, value())
    if (!eat(',') && text[i] !== '}') fail("expected ',' or '}'")
  }
  const descr = fields.get('descr')
  const fortranOrder = fields.get('fortran_order')
  const shape = fields.get('shape')
  if (typeof descr !== 'string') return fail("no 'descr' string")
  if (typeof fortranOrder !== 'boolean') return fail("no 'fortran_order' flag")
  if (!Array.isArray(shape)) return fail("no 'shape' tuple")
  return { descr, fortranOrder, shape }
}

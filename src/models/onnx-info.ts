/**
 * Reads an ONNX model's interface (inputs, outputs, opsets) straight from the protobuf bytes.
 *
 * Users drop arbitrary files in the page, so this is a tiny hand-written reader rather than a
 * protobuf library: it walks only the fields it needs, skips everything else (node lists, weights)
 * without copying, checks every length against the bytes left, keeps only capped lists (so memory
 * stays proportional to the file), and recurses only into nested types, to a fixed depth.
 */
import { TaskError } from '../core/errors.js'
import type { DTypeName } from '../core/tensor.js'

/** A dim's size, its symbolic name, or '?' when the model leaves it unknown. */
export type Dim = number | string

interface IoBase {
  name: string
  /** The type as ONNX writes it: 'tensor(float)', 'tensor(bfloat16)', 'seq(tensor(float))'… */
  type: string
  /** Empty both for scalars and for tensors of unknown rank; `rankKnown` tells them apart. */
  dims: Dim[]
  rankKnown: boolean
}

/** A tensor this network can carry; usable wherever a catalog TensorSpec is. */
export interface SupportedIo extends IoBase { supported: true, dtype: DTypeName }
/** Strings, bfloat16, float8, sequences, maps…: shown to the user, but no input can be built. */
export interface UnsupportedIo extends IoBase { supported: false, dtype: null }
export type ModelIo = SupportedIo | UnsupportedIo

export interface ModelInfo {
  irVersion: number
  /** Version of the default ('ai.onnx') operator set; null when only other domains are imported. */
  opsetVersion: number | null
  opsets: Array<{ domain: string, version: number }>
  /** producer_name and producer_version, e.g. 'pytorch 2.3.0'. */
  producer: string
  graphName: string
  /** Graph inputs without the ones that are initializers (those are overridable weights). */
  inputs: ModelIo[]
  outputs: ModelIo[]
  /** Some weight lives in a separate file, which a single dropped .onnx cannot provide. */
  externalData: boolean
}

/** TensorProto.DataType names, indexed by code, as ONNX prints them in 'tensor(...)'. */
const ELEM_TYPE_NAMES = [
  'undefined', 'float', 'uint8', 'int8', 'uint16', 'int16', 'int32', 'int64', 'string', 'bool',
  'float16', 'double', 'uint32', 'uint64', 'complex64', 'complex128', 'bfloat16',
  'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz', 'uint4', 'int4', 'float4e2m1',
  'float8e8m0', 'uint2', 'int2'
]

/** TensorProto.DataType code of each dtype this network carries. */
export const ONNX_ELEM_TYPE: Readonly<Record<DTypeName, number>> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, bool: 9,
  float16: 10, float64: 11, uint32: 12, uint64: 13
}

const DTYPE_OF_ELEM = new Map(Object.entries(ONNX_ELEM_TYPE).map(([dtype, code]) => [code, dtype as DTypeName]))

/** seq(map(int64, seq(tensor(float))))… deeper than this is not a model anyone ships. */
const MAX_TYPE_DEPTH = 8
/**
 * Caps on list lengths (inputs, outputs, opsets; dims), far above real models: a list entry can be
 * two bytes in the file but a hundred in memory, and the file comes from anyone.
 */
const MAX_ENTRIES = 10_000
const MAX_RANK = 64

const WIRE_VARINT = 0
const WIRE_I64 = 1
const WIRE_LEN = 2
const WIRE_I32 = 5

const invalid = (detail: string): TaskError => new TaskError('bad-request', `not a valid ONNX model: ${detail}`)

const utf8 = new TextDecoder()

/** A cursor over one protobuf message: the bytes from `pos` to `end` of `buf`. */
class Reader {
  field = 0
  wire = 0

  constructor (private readonly buf: Uint8Array, private pos: number, private readonly end: number) {}

  /** A second cursor over the same message, from where this one is. */
  clone (): Reader {
    return new Reader(this.buf, this.pos, this.end)
  }

  /** Reads the next tag into `field` and `wire`; false at the end of the message. */
  next (): boolean {
    if (this.pos >= this.end) return false
    const tag = this.varint()
    this.field = Math.floor(tag / 8)
    this.wire = tag % 8
    if (this.field === 0 || this.field > 0x1fffffff) throw invalid('bad field number')
    return true
  }

  /** A varint field's value, unsigned, as a double: exact up to 2^53, which callers check. */
  varintField (): number {
    this.expect(WIRE_VARINT)
    return this.varint()
  }

  /** A non-negative integer field (version, enum): anything past 2^53 is nonsense. */
  uint (): number {
    const v = this.varintField()
    if (v > Number.MAX_SAFE_INTEGER) throw invalid(`absurd value in field ${this.field}`)
    return v
  }

  private varint (): number {
    let value = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw invalid('truncated data')
      const b = this.buf[this.pos++]!
      value += (b & 0x7f) * scale
      if (b < 0x80) return value
      scale *= 128
    }
    throw invalid('malformed varint')
  }

  /** An embedded message, as a reader over its bytes. */
  message (): Reader {
    const start = this.lengthDelimited()
    return new Reader(this.buf, start, this.pos)
  }

  string (): string {
    const start = this.lengthDelimited()
    return utf8.decode(this.buf.subarray(start, this.pos))
  }

  skip (): void {
    switch (this.wire) {
      case WIRE_VARINT: this.varint(); break
      case WIRE_I64: this.advance(8); break
      case WIRE_LEN: this.lengthDelimited(); break
      case WIRE_I32: this.advance(4); break
      default: throw invalid(`unsupported wire type ${this.wire}`)
    }
  }

  private lengthDelimited (): number {
    this.expect(WIRE_LEN)
    const length = this.varint()
    const start = this.pos
    this.advance(length)
    return start
  }

  private advance (n: number): void {
    if (n > this.end - this.pos) throw invalid('truncated data')
    this.pos += n
  }

  private expect (wire: number): void {
    if (this.wire !== wire) throw invalid(`field ${this.field} has wire type ${this.wire}, expected ${wire}`)
  }
}

/** Describes the interface of an ONNX model; throws TaskError('bad-request') for anything else. */
export function readModelInfo (bytes: Uint8Array): ModelInfo {
  if (bytes.byteLength === 0) throw new TaskError('bad-request', 'the file is empty, not an ONNX model')
  const r = new Reader(bytes, 0, bytes.byteLength)
  let irVersion = 0
  let producerName = ''
  let producerVersion = ''
  let graph: Reader | undefined
  const opsets: ModelInfo['opsets'] = []
  while (r.next()) {
    switch (r.field) {
      case 1: irVersion = r.uint(); break
      case 2: producerName = r.string(); break
      case 3: producerVersion = r.string(); break
      // Protobuf would merge a repeated graph; no exporter writes one, so it is refused.
      case 7: if (graph !== undefined) throw invalid('more than one graph'); graph = r.message(); break
      case 8: pushBounded(opsets, readOpset(r.message()), 'opset imports'); break
      default: r.skip()
    }
  }
  // Random or truncated bytes can still parse as protobuf; a real model always has these.
  if (irVersion === 0 || graph === undefined) throw invalid('no ir_version or graph')
  if (opsets.length === 0) throw invalid('no opset_import (the file may be truncated)')
  return {
    irVersion,
    opsetVersion: opsets.find(o => o.domain === '' || o.domain === 'ai.onnx')?.version ?? null,
    opsets,
    producer: `${producerName} ${producerVersion}`.trim(),
    ...readGraph(graph)
  }
}

function pushBounded<T> (list: T[], item: T, what: string, max = MAX_ENTRIES): void {
  if (list.length >= max) throw invalid(`more than ${max} ${what}`)
  list.push(item)
}

type GraphInfo = Pick<ModelInfo, 'graphName' | 'inputs' | 'outputs' | 'externalData'>

/**
 * GraphProto, in two passes: first its name, inputs and outputs; then its initializers, only to
 * match them against the inputs (a big model has thousands; their names are never kept).
 */
function readGraph (graph: Reader): GraphInfo {
  const info: GraphInfo = { graphName: '', inputs: [], outputs: [], externalData: false }
  const r = graph.clone()
  while (r.next()) {
    switch (r.field) {
      case 2: info.graphName = r.string(); break
      case 11: pushBounded(info.inputs, readValueInfo(r.message()), 'inputs'); break
      case 12: pushBounded(info.outputs, readValueInfo(r.message()), 'outputs'); break
      default: r.skip()
    }
  }
  const inputNames = new Set(info.inputs.map(io => io.name))
  const initialized = new Set<string>()
  while (graph.next()) {
    let tensor: TensorFields
    if (graph.field === 5) tensor = readTensor(graph.message())
    else if (graph.field === 15) tensor = readSparseTensor(graph.message())
    else { graph.skip(); continue }
    if (inputNames.has(tensor.name)) initialized.add(tensor.name)
    info.externalData ||= tensor.external
  }
  info.inputs = info.inputs.filter(io => !initialized.has(io.name))
  return info
}

interface TensorFields { name: string, external: boolean }

/** TensorProto: only its name (field 8) and data_location (14, 1 = EXTERNAL); the data is skipped. */
function readTensor (r: Reader): TensorFields {
  const t = { name: '', external: false }
  while (r.next()) {
    if (r.field === 8) t.name = r.string()
    else if (r.field === 14) t.external = r.uint() === 1
    else r.skip()
  }
  return t
}

/** SparseTensorProto: its name and storage are those of its values tensor (field 1). */
function readSparseTensor (r: Reader): TensorFields {
  let t: TensorFields = { name: '', external: false }
  while (r.next()) {
    if (r.field === 1) t = readTensor(r.message())
    else r.skip()
  }
  return t
}

function readOpset (r: Reader): { domain: string, version: number } {
  let domain = ''
  let version = 0
  while (r.next()) {
    if (r.field === 1) domain = r.string()
    else if (r.field === 2) version = r.uint()
    else r.skip()
  }
  return { domain, version }
}

function readValueInfo (r: Reader): ModelIo {
  let name = ''
  let type: TypeInfo = { type: 'undefined', elemType: null, dims: [], rankKnown: false }
  while (r.next()) {
    if (r.field === 1) name = r.string()
    else if (r.field === 2) type = readType(r.message(), 0)
    else r.skip()
  }
  const dtype = type.elemType === null ? undefined : DTYPE_OF_ELEM.get(type.elemType)
  const base = { name, type: type.type, dims: type.dims, rankKnown: type.rankKnown }
  return dtype === undefined ? { ...base, supported: false, dtype: null } : { ...base, supported: true, dtype }
}

interface TypeInfo {
  type: string
  /** Set for plain tensors only: sparse tensors and containers cannot be fed as inputs. */
  elemType: number | null
  dims: Dim[]
  rankKnown: boolean
}

/** TypeProto; a oneof, so the last member present wins, as in protobuf. */
function readType (r: Reader, depth: number): TypeInfo {
  if (depth >= MAX_TYPE_DEPTH) throw invalid('types nested too deeply')
  let info: TypeInfo = { type: 'undefined', elemType: null, dims: [], rankKnown: false }
  while (r.next()) {
    switch (r.field) {
      case 1: info = readTensorType(r.message(), 'tensor'); break
      case 8: info = { ...readTensorType(r.message(), 'sparse_tensor'), elemType: null }; break
      case 4: info = wrapped('seq', readElemType(r.message(), depth)); break
      case 9: info = wrapped('optional', readElemType(r.message(), depth)); break
      case 5: info = wrapped('map', readMapTypes(r.message(), depth)); break
      case 7: info = wrapped('opaque', ''); break
      default: r.skip()
    }
  }
  return info
}

const wrapped = (kind: string, inner: string): TypeInfo => ({ type: `${kind}(${inner})`, elemType: null, dims: [], rankKnown: false })

const elemTypeName = (code: number): string => ELEM_TYPE_NAMES[code] ?? `unknown type ${code}`

/** TypeProto.Tensor and TypeProto.SparseTensor: elem_type (1) and an optional shape (2). */
function readTensorType (r: Reader, kind: string): TypeInfo {
  let elemType = 0
  let dims: Dim[] = []
  let rankKnown = false
  while (r.next()) {
    if (r.field === 1) elemType = r.uint()
    else if (r.field === 2) { dims = readShape(r.message()); rankKnown = true } else r.skip()
  }
  return { type: `${kind}(${elemTypeName(elemType)})`, elemType, dims, rankKnown }
}

/** TypeProto.Sequence and TypeProto.Optional: elem_type (1), a nested TypeProto. */
function readElemType (r: Reader, depth: number): string {
  let inner = 'undefined'
  while (r.next()) {
    if (r.field === 1) inner = readType(r.message(), depth + 1).type
    else r.skip()
  }
  return inner
}

/** TypeProto.Map: key_type (1, an elem type code) and value_type (2, a nested TypeProto). */
function readMapTypes (r: Reader, depth: number): string {
  let key = 'undefined'
  let value = 'undefined'
  while (r.next()) {
    if (r.field === 1) key = elemTypeName(r.uint())
    else if (r.field === 2) value = readType(r.message(), depth + 1).type
    else r.skip()
  }
  return `${key},${value}`
}

function readShape (r: Reader): Dim[] {
  const dims: Dim[] = []
  while (r.next()) {
    if (r.field === 1) pushBounded(dims, readDim(r.message()), 'dimensions', MAX_RANK)
    else r.skip()
  }
  return dims
}

/** TensorShapeProto.Dimension: dim_value (1) or dim_param (2); neither, or a negative value, is unknown. */
function readDim (r: Reader): Dim {
  let dim: Dim = '?'
  while (r.next()) {
    if (r.field === 1) {
      const v = r.varintField()
      // Negative int64s arrive as 10-byte varints, i.e. as values of 2^63 and up.
      if (v >= 2 ** 63) dim = '?'
      else if (v > Number.MAX_SAFE_INTEGER) throw invalid(`absurd dimension ${v}`)
      else dim = v
    } else if (r.field === 2) {
      const param = r.string()
      dim = param === '' ? '?' : param
    } else r.skip()
  }
  return dim
}

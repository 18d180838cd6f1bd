/**
 * Build-time graph rewrites that make the PaddleOCR models (as Paddle2ONNX exports them) cheaper
 * to run, above all in onnxruntime-web's WASM build, where every elementwise pass over a feature
 * map costs more than in onnxruntime-node's native kernels. Both rewrites change no weight and
 * compute the same function up to float rounding:
 *
 *  - Paddle2ONNX writes an affine step after a convolution as Mul(constant, conv), constant first.
 *    onnxruntime's Conv+Mul and Conv+Add fusions only look for the constant in the second input,
 *    so these never fold into the convolution's weights. Swapping the operands of a commutative
 *    Mul/Add whose first operand is a Constant lets onnxruntime fold them when it loads the model.
 *  - hardswish is exported as four ops, x · clip(x + 3, 0, 6) / 6 (Add, Clip, Mul, Div: four
 *    passes over the map). It becomes HardSigmoid(x; α = 1/6, β = 0.5) and one Mul: two passes.
 *
 * The protobuf is edited in place field by field: graph fields other than nodes, and node fields
 * other than the inputs changed, are copied byte for byte, so the output is deterministic (its
 * sha256 is pinned like the package file's).
 */
import { readVarint as varintAt, wireFields, WireWriter } from '../core/protobuf-wire.js'
import type { WireField } from '../core/protobuf-wire.js'

export class OnnxRewriteError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'OnnxRewriteError'
  }
}

const MODEL_GRAPH = 7
const GRAPH_NODE = 1
const NODE_INPUT = 1
const NODE_OUTPUT = 2
const NODE_OP = 4
const NODE_ATTRIBUTE = 5
const ATTR_NAME = 1
const ATTR_FLOAT = 2
const ATTR_T = 5
const ATTR_TYPE = 20
const ATTR_TYPE_FLOAT = 1
const ATTR_TYPE_TENSOR = 4
const TENSOR_DIMS = 1
const TENSOR_DATA_TYPE = 2
const TENSOR_FLOAT_DATA = 4
const TENSOR_RAW_DATA = 9
const FLOAT = 1

const fields = (b: Uint8Array, start: number, end: number): WireField[] => wireFields(b, start, end, (message) => new OnnxRewriteError(`not an ONNX model: ${message}`))

function readVarint (b: Uint8Array, at: number): { value: number, next: number } {
  const v = varintAt(b, at)
  if (v == null) throw new OnnxRewriteError('not an ONNX model: truncated varint')
  return v
}

const text = (b: Uint8Array, f: WireField): string => new TextDecoder().decode(b.subarray(f.body!.start, f.body!.end))

interface Node {
  field: WireField
  op: string
  inputs: string[]
  outputs: string[]
  /** For a Constant holding one float32: its value. */
  scalar?: number
  /** For a Constant: its tensor's dims. */
  dims?: number[]
  /** Float attributes, by name. */
  floats?: Record<string, number>
  /** Replaced by these bytes (a rewritten node), or dropped (null). */
  replacement?: Uint8Array | null
  /** A node written right after the replacement. */
  extra?: Uint8Array
}

/** The float value of a Constant node's `value` tensor when it holds exactly one float32. */
function constantScalar (b: Uint8Array, node: WireField[]): number | undefined {
  for (const a of node.filter(f => f.field === NODE_ATTRIBUTE)) {
    const attr = fields(b, a.body!.start, a.body!.end)
    const name = attr.find(f => f.field === ATTR_NAME)
    const t = attr.find(f => f.field === ATTR_T)
    if (name == null || text(b, name) !== 'value' || t == null) continue
    const tensor = fields(b, t.body!.start, t.body!.end)
    if (tensor.find(f => f.field === TENSOR_DATA_TYPE)?.varint !== FLOAT) return undefined
    const count = tensor.filter(f => f.field === TENSOR_DIMS).reduce((n, f) => {
      if (f.wire === 0) return n * f.varint!
      // packed dims
      let m = n
      for (let at = f.body!.start; at < f.body!.end;) {
        const v = readVarint(b, at)
        m *= v.value
        at = v.next
      }
      return m
    }, 1)
    if (count !== 1) return undefined
    const data = tensor.find(f => f.field === TENSOR_RAW_DATA || (f.field === TENSOR_FLOAT_DATA && f.wire === 2))
    if (data?.body != null && data.body.end - data.body.start === 4) {
      return new DataView(b.buffer, b.byteOffset + data.body.start, 4).getFloat32(0, true)
    }
    const single = tensor.find(f => f.field === TENSOR_FLOAT_DATA && f.wire === 5)
    if (single != null) return new DataView(b.buffer, b.byteOffset + single.end - 4, 4).getFloat32(0, true)
    return undefined
  }
  return undefined
}

function floatAttributes (b: Uint8Array, node: WireField[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const a of node.filter(f => f.field === NODE_ATTRIBUTE)) {
    const attr = fields(b, a.body!.start, a.body!.end)
    const name = attr.find(f => f.field === ATTR_NAME)
    const value = attr.find(f => f.field === ATTR_FLOAT && f.wire === 5)
    if (name != null && value != null) out[text(b, name)] = new DataView(b.buffer, b.byteOffset + value.end - 4, 4).getFloat32(0, true)
  }
  return out
}

/** A Constant node's tensor dims (packed or not). */
function constantDims (b: Uint8Array, node: WireField[]): number[] | undefined {
  for (const a of node.filter(f => f.field === NODE_ATTRIBUTE)) {
    const t = fields(b, a.body!.start, a.body!.end).find(f => f.field === ATTR_T)
    if (t == null) continue
    const dims: number[] = []
    for (const f of fields(b, t.body!.start, t.body!.end).filter(x => x.field === TENSOR_DIMS)) {
      if (f.wire === 0) {
        dims.push(f.varint!)
        continue
      }
      for (let at = f.body!.start; at < f.body!.end;) {
        const v = readVarint(b, at)
        dims.push(v.value)
        at = v.next
      }
    }
    return dims
  }
  return undefined
}

/** A Constant node holding a float32 tensor. */
function constantNode (name: string, dims: number[], data: Float32Array): Uint8Array {
  const t = new WireWriter()
  for (const d of dims) t.varint(TENSOR_DIMS * 8).varint(d)
  t.varint(TENSOR_DATA_TYPE * 8).varint(FLOAT)
  t.bytesField(TENSOR_RAW_DATA, new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
  const attr = new WireWriter().string(ATTR_NAME, 'value').bytesField(ATTR_T, t.finish()).varint(ATTR_TYPE * 8).varint(ATTR_TYPE_TENSOR).finish()
  return new WireWriter().string(NODE_OUTPUT, name).string(3, name).string(NODE_OP, 'Constant').bytesField(NODE_ATTRIBUTE, attr).finish()
}

/** A Constant node's bytes with its one-element tensor's dims dropped (a scalar); undefined if it has more than [1]. */
function scalarShaped (b: Uint8Array, node: WireField): Uint8Array | undefined {
  const w = new WireWriter()
  let changed = false
  for (const f of fields(b, node.body!.start, node.body!.end)) {
    if (f.field !== NODE_ATTRIBUTE) {
      w.raw(b.subarray(f.start, f.end))
      continue
    }
    const attr = fields(b, f.body!.start, f.body!.end)
    const t = attr.find(a => a.field === ATTR_T)
    if (t == null) {
      w.raw(b.subarray(f.start, f.end))
      continue
    }
    const tensor = fields(b, t.body!.start, t.body!.end)
    const dims = tensor.filter(x => x.field === TENSOR_DIMS)
    if (dims.length === 0) return undefined // already a scalar
    if (dims.length !== 1 || dims[0].wire !== 0 || dims[0].varint !== 1) return undefined
    const tw = new WireWriter()
    for (const x of tensor) if (x.field !== TENSOR_DIMS) tw.raw(b.subarray(x.start, x.end))
    const aw = new WireWriter()
    for (const a of attr) {
      if (a === t) aw.bytesField(ATTR_T, tw.finish())
      else aw.raw(b.subarray(a.start, a.end))
    }
    w.bytesField(NODE_ATTRIBUTE, aw.finish())
    changed = true
  }
  return changed ? w.finish() : undefined
}

/** A node's bytes with its inputs replaced (other fields copied as they are). */
function withInputs (b: Uint8Array, node: WireField, inputs: string[]): Uint8Array {
  const w = new WireWriter()
  let written = false
  for (const f of fields(b, node.body!.start, node.body!.end)) {
    if (f.field !== NODE_INPUT) {
      w.raw(b.subarray(f.start, f.end))
    } else if (!written) {
      for (const i of inputs) w.string(NODE_INPUT, i)
      written = true
    }
  }
  return w.finish()
}

function newNode (op: string, name: string, inputs: string[], outputs: string[], floats: Record<string, number> = {}): Uint8Array {
  const w = new WireWriter()
  for (const i of inputs) w.string(NODE_INPUT, i)
  for (const o of outputs) w.string(NODE_OUTPUT, o)
  w.string(3, name)
  w.string(NODE_OP, op)
  for (const [k, v] of Object.entries(floats)) {
    const a = new WireWriter().string(ATTR_NAME, k).float(ATTR_FLOAT, v).varint(ATTR_TYPE * 8).varint(ATTR_TYPE_FLOAT).finish()
    w.bytesField(NODE_ATTRIBUTE, a)
  }
  return w.finish()
}

export interface FuseReport {
  /** Mul/Add nodes whose constant operand moved to the second input. */
  swapped: number
  /** Four-op hardswish patterns turned into HardSigmoid + Mul. */
  hardSwish: number
  /** Scalar Adds after a convolution given a per-channel constant. */
  broadcastBias: number
  /** One-element [1] constants of Mul/Add made scalars. */
  scalarised: number
  /** Constant nodes left without a consumer, dropped. */
  constantsDropped: number
}

/** The rewritten model (see the module comment) and what changed. */
export function fuseForWasm (model: Uint8Array): { bytes: Uint8Array, report: FuseReport } {
  const top = fields(model, 0, model.length)
  const graphField = top.find(f => f.field === MODEL_GRAPH && f.body != null)
  if (graphField == null) throw new OnnxRewriteError('the model has no graph')
  const graph = fields(model, graphField.body!.start, graphField.body!.end)
  const nodes: Node[] = []
  const nodeAt = new Map<WireField, Node>()
  for (const g of graph) {
    if (g.field !== GRAPH_NODE) continue
    const nf = fields(model, g.body!.start, g.body!.end)
    const op = nf.find(f => f.field === NODE_OP)
    const node: Node = {
      field: g,
      op: op == null ? '' : text(model, op),
      inputs: nf.filter(f => f.field === NODE_INPUT).map(f => text(model, f)),
      outputs: nf.filter(f => f.field === NODE_OUTPUT).map(f => text(model, f))
    }
    node.floats = floatAttributes(model, nf)
    if (node.op === 'Constant') {
      node.scalar = constantScalar(model, nf)
      node.dims = constantDims(model, nf)
    }
    nodes.push(node)
    nodeAt.set(g, node)
  }
  const producer = new Map<string, Node>()
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n)
  const consumers = new Map<string, number>()
  const consume = (name: string, by: number): void => { consumers.set(name, (consumers.get(name) ?? 0) + by) }
  for (const n of nodes) for (const i of n.inputs) consume(i, 1)
  // Graph outputs count as consumers: a tensor the graph returns is never folded away.
  for (const g of graph.filter(f => f.field === 12)) {
    const name = fields(model, g.body!.start, g.body!.end).find(f => f.field === 1)
    if (name != null) consume(text(model, name), 1)
  }
  const isConst = (name: string): boolean => producer.get(name)?.op === 'Constant'
  const scalar = (name: string): number | undefined => producer.get(name)?.scalar
  const only = (name: string): boolean => consumers.get(name) === 1
  const report: FuseReport = { swapped: 0, hardSwish: 0, scalarised: 0, broadcastBias: 0, constantsDropped: 0 }

  // hardswish: Add(x, 3) → Clip(·, 0, 6) → Mul(x, ·) → Div(·, 6)
  for (const div of nodes) {
    if (div.op !== 'Div' || div.inputs.length !== 2 || scalar(div.inputs[1]) !== 6) continue
    const mul = producer.get(div.inputs[0])
    if (mul?.op !== 'Mul' || mul.inputs.length !== 2 || !only(div.inputs[0])) continue
    for (const k of [0, 1]) {
      const clip = producer.get(mul.inputs[k])
      const x = mul.inputs[1 - k]
      if (clip?.op !== 'Clip' || !only(mul.inputs[k])) continue
      // Clip's bounds: inputs from opset 11, attributes before.
      const [lo, hi] = clip.inputs.length === 3 ? [scalar(clip.inputs[1]), scalar(clip.inputs[2])] : [clip.floats?.min, clip.floats?.max]
      if (lo !== 0 || hi !== 6) continue
      const add = producer.get(clip.inputs[0])
      if (add?.op !== 'Add' || add.inputs.length !== 2 || !only(clip.inputs[0])) continue
      const addend = add.inputs[0] === x ? add.inputs[1] : add.inputs[1] === x ? add.inputs[0] : undefined
      if (addend == null || scalar(addend) !== 3) continue
      const gate = `${div.outputs[0]}.hardsigmoid`
      // Both new nodes take the Div's place: every input (x) exists there, and the output keeps its name.
      div.replacement = newNode('HardSigmoid', gate, [x], [gate], { alpha: 1 / 6, beta: 0.5 })
      div.extra = newNode('Mul', `${div.outputs[0]}.mul`, [x, gate], [div.outputs[0]])
      for (const gone of [add, clip, mul]) {
        gone.replacement = null
        for (const i of gone.inputs) consume(i, -1)
      }
      consume(x, 2) // HardSigmoid and Mul
      consume(div.inputs[1], -1)
      report.hardSwish++
      break
    }
  }

  for (const n of nodes) {
    if (n.replacement !== undefined || (n.op !== 'Mul' && n.op !== 'Add') || n.inputs.length !== 2) continue
    if (isConst(n.inputs[0]) && !isConst(n.inputs[1])) {
      n.replacement = withInputs(model, n.field, [n.inputs[1], n.inputs[0]])
      report.swapped++
    }
  }

  // Conv → [Mul(·, scalar)] → Add(·, scalar): the Add's scalar becomes a [C, 1, 1] constant (C: the
  // convolution's output channels), the only shape onnxruntime's Conv+Add fusion folds into the bias.
  const convChannels = (name: string): number | undefined => {
    let p = producer.get(name)
    if (p?.op === 'Mul' && p.replacement !== null && p.inputs.length === 2) {
      const [a, b] = isConst(p.inputs[0]) ? [p.inputs[1], p.inputs[0]] : p.inputs
      if (scalar(b) == null || !only(name)) return undefined
      p = producer.get(a)
      if (p == null || !only(a)) return undefined
    } else if (!only(name)) return undefined
    if (p?.op !== 'Conv') return undefined
    const w = producer.get(p.inputs[1])
    return w?.op === 'Constant' ? w.dims?.[0] : undefined
  }
  for (const add of nodes) {
    if (add.op !== 'Add' || add.replacement !== undefined || add.inputs.length !== 2) continue
    const [x, c] = isConst(add.inputs[0]) ? [add.inputs[1], add.inputs[0]] : add.inputs
    const value = scalar(c)
    const channels = value == null || isConst(x) ? undefined : convChannels(x)
    if (channels == null) continue
    const bias = `${add.outputs[0]}.bias`
    add.replacement = constantNode(bias, [channels, 1, 1], new Float32Array(channels).fill(value!))
    add.extra = withInputs(model, add.field, [x, bias])
    consume(c, -1)
    report.broadcastBias++
  }

  // A one-element constant of shape [1] as the second operand of Mul/Add becomes a scalar (shape
  // []): onnxruntime's Conv+Mul/Add fusions take a scalar or a per-channel tensor, not [1], and
  // broadcasting gives the same result either way.
  const secondOperand = new Map<string, boolean>()
  for (const n of nodes) {
    if (n.replacement === null) continue
    const ins = n.op === 'Mul' || n.op === 'Add' ? (isConst(n.inputs[0]) && !isConst(n.inputs[1]) ? [n.inputs[1], n.inputs[0]] : n.inputs) : n.inputs
    ins.forEach((name, k) => {
      if (!isConst(name)) return
      const ok = (n.op === 'Mul' || n.op === 'Add') && ins.length === 2 && k === 1 && !isConst(ins[0])
      secondOperand.set(name, (secondOperand.get(name) ?? true) && ok)
    })
  }
  for (const n of nodes) {
    if (n.op !== 'Constant' || n.scalar == null || n.outputs.length !== 1 || secondOperand.get(n.outputs[0]) !== true) continue
    const rewritten = scalarShaped(model, n.field)
    if (rewritten != null) {
      n.replacement = rewritten
      report.scalarised++
    }
  }

  for (const n of nodes) {
    if (n.op === 'Constant' && n.replacement !== null && n.outputs.every(o => (consumers.get(o) ?? 0) <= 0)) {
      n.replacement = null
      report.constantsDropped++
    }
  }

  const g = new WireWriter()
  for (const f of graph) {
    const n = nodeAt.get(f)
    if (n?.replacement === undefined) {
      g.raw(model.subarray(f.start, f.end))
      continue
    }
    if (n.replacement === null) continue
    g.bytesField(GRAPH_NODE, n.replacement)
    if (n.extra != null) g.bytesField(GRAPH_NODE, n.extra)
  }
  const out = new WireWriter()
  for (const f of top) {
    if (f === graphField) out.bytesField(MODEL_GRAPH, g.finish())
    else out.raw(model.subarray(f.start, f.end))
  }
  return { bytes: out.finish(), report }
}

/**
 * Appends nodes and graph outputs to an ONNX model without decoding its weights: a protobuf
 * message may repeat a field anywhere, so new `node` and `output` entries written after the
 * graph's existing bytes join its lists (nodes stay in topological order: the new ones come last).
 * Only the graph's length prefix in the ModelProto changes.
 */
import { TaskError } from '../core/errors.js'
import { ONNX_ELEM_TYPE } from './onnx-info.js'
import { readVarint as varintAt } from '../core/varint.js'
import type { DTypeName } from '../core/tensor.js'

export interface NodeSpec {
  opType: string
  inputs: string[]
  outputs: string[]
  /** Integer and integer-list attributes (all this needs so far). */
  attributes?: Record<string, number | number[]>
}

export interface OutputSpec {
  name: string
  dtype: DTypeName
  dims: Array<number | string>
}

const MODEL_GRAPH = 7
const GRAPH_NODE = 1
const GRAPH_OUTPUT = 12
const ATTR_INT = 2
const ATTR_INTS = 7

class Writer {
  private readonly bytes: number[] = []

  varint (n: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(n))
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80)
      v >>= 7n
    }
    this.bytes.push(Number(v))
    return this
  }

  tag (field: number, wire: 0 | 2): this {
    return this.varint((field << 3) | wire)
  }

  int (field: number, n: number): this {
    return this.tag(field, 0).varint(n)
  }

  bytesField (field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.byteLength)
    for (const x of b) this.bytes.push(x)
    return this
  }

  string (field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s))
  }

  message (field: number, build: (w: Writer) => void): this {
    const inner = new Writer()
    build(inner)
    return this.bytesField(field, inner.finish())
  }

  finish (): Uint8Array {
    return Uint8Array.from(this.bytes)
  }
}

function readVarint (b: Uint8Array, at: number): { value: number, next: number } {
  const v = varintAt(b, at)
  if (v == null) throw new TaskError('bad-request', 'not an ONNX model: truncated varint')
  return v
}

/** Where the ModelProto's graph field (tag, length prefix and body) lies. */
function findGraph (model: Uint8Array): { start: number, body: number, end: number } {
  let at = 0
  while (at < model.length) {
    const start = at
    const key = readVarint(model, at)
    at = key.next
    const field = Math.floor(key.value / 8)
    switch (key.value & 7) {
      case 0: at = readVarint(model, at).next; break
      case 1: at += 8; break
      case 5: at += 4; break
      case 2: {
        const len = readVarint(model, at)
        if (len.next + len.value > model.length) throw new TaskError('bad-request', 'not an ONNX model: a field runs past the end')
        if (field === MODEL_GRAPH) return { start, body: len.next, end: len.next + len.value }
        at = len.next + len.value
        break
      }
      default: throw new TaskError('bad-request', `not an ONNX model: wire type ${key.value & 7}`)
    }
  }
  throw new TaskError('bad-request', 'the model has no graph')
}

/** A copy of `model` whose graph also computes `nodes` and returns `outputs`. */
export function appendToGraph (model: Uint8Array, nodes: NodeSpec[], outputs: OutputSpec[]): Uint8Array {
  const graph = findGraph(model)
  const extra = new Writer()
  for (const n of nodes) {
    extra.message(GRAPH_NODE, w => {
      for (const i of n.inputs) w.string(1, i)
      for (const o of n.outputs) w.string(2, o)
      w.string(3, n.outputs[0])
      w.string(4, n.opType)
      for (const [name, value] of Object.entries(n.attributes ?? {})) {
        w.message(5, a => {
          a.string(1, name)
          if (Array.isArray(value)) {
            for (const v of value) a.int(8, v)
            a.int(20, ATTR_INTS)
          } else {
            a.int(3, value).int(20, ATTR_INT)
          }
        })
      }
    })
  }
  for (const o of outputs) {
    extra.message(GRAPH_OUTPUT, v => {
      v.string(1, o.name)
      v.message(2, t => t.message(1, tensor => {
        tensor.int(1, ONNX_ELEM_TYPE[o.dtype])
        tensor.message(2, shape => {
          for (const d of o.dims) shape.message(1, dim => typeof d === 'number' ? dim.int(1, d) : dim.string(2, d))
        })
      }))
    })
  }
  const added = extra.finish()
  const header = new Writer().tag(MODEL_GRAPH, 2).varint(graph.end - graph.body + added.byteLength).finish()
  const out = new Uint8Array(graph.start + header.byteLength + (graph.end - graph.body) + added.byteLength + (model.length - graph.end))
  let at = 0
  for (const part of [model.subarray(0, graph.start), header, model.subarray(graph.body, graph.end), added, model.subarray(graph.end)]) {
    out.set(part, at)
    at += part.byteLength
  }
  return out
}

/**
 * Appends nodes and graph outputs to an ONNX model without decoding its weights: a protobuf
 * message may repeat a field anywhere, so new `node` and `output` entries written after the
 * graph's existing bytes join its lists (nodes stay in topological order: the new ones come last).
 * Only the graph's length prefix in the ModelProto changes.
 */
import { TaskError } from '../core/errors.js'
import { ONNX_ELEM_TYPE } from './onnx-info.js'
import { wireFields, WireWriter } from '../core/protobuf-wire.js'
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

const notOnnx = (message: string): Error => new TaskError('bad-request', `not an ONNX model: ${message}`)

/** Where the ModelProto's graph field (tag, length prefix and body) lies. */
function findGraph (model: Uint8Array): { start: number, body: number, end: number } {
  const graph = wireFields(model, 0, model.length, notOnnx).find(f => f.field === MODEL_GRAPH && f.body != null)
  if (graph == null) throw new TaskError('bad-request', 'the model has no graph')
  return { start: graph.start, body: graph.body!.start, end: graph.end }
}

/** A copy of `model` whose graph also computes `nodes` and returns `outputs`. */
export function appendToGraph (model: Uint8Array, nodes: NodeSpec[], outputs: OutputSpec[]): Uint8Array {
  const graph = findGraph(model)
  const extra = new WireWriter()
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
  const header = new WireWriter().tag(MODEL_GRAPH, 2).varint(graph.end - graph.body + added.byteLength).finish()
  const out = new Uint8Array(graph.start + header.byteLength + (graph.end - graph.body) + added.byteLength + (model.length - graph.end))
  let at = 0
  for (const part of [model.subarray(0, graph.start), header, model.subarray(graph.body, graph.end), added, model.subarray(graph.end)]) {
    out.set(part, at)
    at += part.byteLength
  }
  return out
}

/**
 * Tiny models that are costly to run, built here with onnx-proto (no downloads): what a hostile
 * requester sends a worker. Opset 17, IR 8, like src/models/test-models.ts.
 */
import onnxProto from 'onnx-proto'
import { fromTypedArray } from '../../src/core/tensor.js'
import type { onnx as Onnx } from 'onnx-proto'
import type { WireTensor } from '../../src/core/tensor.js'

const { onnx } = onnxProto
const FLOAT = 1
const INT64 = 7

function model (name: string, graph: Omit<Onnx.IGraphProto, 'name'>): Uint8Array {
  return onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], producerName: 'p2p-ai-agents/hostile-models', graph: { name, ...graph } }).finish()
}

const fill = (value: number): Onnx.IAttributeProto => ({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dims: [1], dataType: FLOAT, floatData: [value] } })
const shapeInput: Onnx.IValueInfoProto = { name: 'shape', type: { tensorType: { elemType: INT64, shape: { dim: [{ dimParam: 'rank' }] } } } }

/**
 * out = ConstantOfShape(shape): float32 ones of whatever shape the task asks for. A hundred-odd
 * bytes of model; `shape` [2^30] makes onnxruntime allocate and fill 4 GiB.
 */
export function memoryBomb (): Uint8Array {
  return model('memory_bomb', {
    node: [{ name: 'out', opType: 'ConstantOfShape', input: ['shape'], output: ['out'], attribute: [fill(1)] }],
    input: [shapeInput],
    output: [{ name: 'out', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'n' }] } } } }]
  })
}

/**
 * x = ConstantOfShape(shape) filled with `value` ([n, n]), then `rounds` matrix products
 * y = y·x, out = ReduceSum(y). With value 1/n every product is x again and out = n (exactly, for n a power of two). About
 * 2·n³·rounds flops for a few n² floats of memory: a slow model whose cost the task picks.
 */
export function slowMatMul (rounds: number, value: number): Uint8Array {
  const nodes: Onnx.INodeProto[] = [{ name: 'x', opType: 'ConstantOfShape', input: ['shape'], output: ['x'], attribute: [fill(value)] }]
  let y = 'x'
  for (let i = 0; i < rounds; i++) {
    nodes.push({ name: `y${i}`, opType: 'MatMul', input: [y, 'x'], output: [`y${i}`] })
    y = `y${i}`
  }
  nodes.push({ name: 'out', opType: 'ReduceSum', input: [y], output: ['out'], attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] })
  return model(`slow_matmul_${rounds}`, {
    node: nodes,
    input: [shapeInput],
    output: [{ name: 'out', type: { tensorType: { elemType: FLOAT, shape: { dim: [] } } } }]
  })
}

/** The `shape` input these models take. */
export function shapeTensor (dims: number[]): WireTensor {
  return fromTypedArray('shape', 'int64', [dims.length], BigInt64Array.from(dims.map(BigInt)))
}

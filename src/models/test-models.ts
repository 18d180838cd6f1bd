/**
 * Tiny ONNX models for tests and samples (Node only: builds them with onnx-proto).
 * Opset 17 at IR version 8: recent enough for every op used here, old enough for any onnxruntime 1.x.
 */
import onnxProto from 'onnx-proto'
import type { onnx as Onnx } from 'onnx-proto'
import { DTYPES } from '../core/tensor.js'
import type { DTypeName } from '../core/tensor.js'
import { ONNX_ELEM_TYPE } from './onnx-info.js'

const { onnx } = onnxProto

const IR_VERSION = 8
const OPSET = 17

type Dims = Array<number | string>

function valueInfo (name: string, dtype: DTypeName, dims: Dims): Onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_ELEM_TYPE[dtype],
        shape: { dim: dims.map(d => typeof d === 'string' ? { dimParam: d } : { dimValue: d }) }
      }
    }
  }
}

function node (opType: string, input: string[], output: string, attribute: Onnx.IAttributeProto[] = []): Onnx.INodeProto {
  return { name: output, opType, input, output: [output], attribute }
}

/** Cast's `to` attribute. */
const castTo = (dtype: DTypeName): Onnx.IAttributeProto =>
  ({ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: ONNX_ELEM_TYPE[dtype] })

function model (name: string, graph: Omit<Onnx.IGraphProto, 'name'>): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'p2p-ai-agents/test-models',
    producerVersion: '1',
    graph: { name, ...graph }
  }).finish()
}

/** out_<dtype> = Identity(in_<dtype>) for every dtype, each of shape ['n', 2]. */
export function identityAllDtypes (): Uint8Array {
  return model('identity_all_dtypes', {
    node: DTYPES.map(d => node('Identity', [`in_${d}`], `out_${d}`)),
    input: DTYPES.map(d => valueInfo(`in_${d}`, d, ['n', 2])),
    output: DTYPES.map(d => valueInfo(`out_${d}`, d, ['n', 2]))
  })
}

/** float32 a, b ['batch', 'n'] → sum = a + b, product = a * b, shape = Shape(a) (int64 [2]). */
export function dynamicAddMul (): Uint8Array {
  return model('add_mul', {
    node: [node('Add', ['a', 'b'], 'sum'), node('Mul', ['a', 'b'], 'product'), node('Shape', ['a'], 'shape')],
    input: [valueInfo('a', 'float32', ['batch', 'n']), valueInfo('b', 'float32', ['batch', 'n'])],
    output: [
      valueInfo('sum', 'float32', ['batch', 'n']),
      valueInfo('product', 'float32', ['batch', 'n']),
      valueInfo('shape', 'int64', [2])
    ]
  })
}

/**
 * Cast between dtypes, x float32 ['n'] and u uint8 ['n']:
 * x_int32 (truncates toward zero), x_float64 = Cast(x_int32), x_float16 (rounds to nearest even),
 * x_bool (nonzero → true), x_int64, u_float32, u_int32.
 */
export function castChain (): Uint8Array {
  const casts: Array<[string, string, DTypeName]> = [
    ['x', 'x_int32', 'int32'],
    ['x_int32', 'x_float64', 'float64'],
    ['x', 'x_float16', 'float16'],
    ['x', 'x_bool', 'bool'],
    ['x', 'x_int64', 'int64'],
    ['u', 'u_float32', 'float32'],
    ['u', 'u_int32', 'int32']
  ]
  return model('cast_chain', {
    node: casts.map(([from, to, dtype]) => node('Cast', [from], to, [castTo(dtype)])),
    input: [valueInfo('x', 'float32', ['n']), valueInfo('u', 'uint8', ['n'])],
    output: casts.map(([, to, dtype]) => valueInfo(to, dtype, ['n']))
  })
}

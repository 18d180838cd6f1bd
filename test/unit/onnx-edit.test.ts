/** appendToGraph: nodes and outputs added to a model without re-encoding it, and the OCR rec model's CTC head. */
import { describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { appendToGraph } from '../../src/models/onnx-edit.js'
import { readModelInfo } from '../../src/models/onnx-info.js'
import { dynamicAddMul } from '../../src/models/test-models.js'
import { ctcDecode, ctcDecodeBest } from '../../src/ocr/recognize.js'
import { failure } from '../helpers/errors.js'

describe('appendToGraph', () => {
  it('adds nodes and outputs that onnxruntime runs, keeping the model\'s own', async () => {
    const model = dynamicAddMul()
    const edited = appendToGraph(model, [
      { opType: 'ArgMax', inputs: ['sum'], outputs: ['best'], attributes: { axis: 1, keepdims: 0 } },
      { opType: 'ReduceMax', inputs: ['product'], outputs: ['top'], attributes: { axes: [1], keepdims: 0 } }
    ], [{ name: 'best', dtype: 'int64', dims: ['batch'] }, { name: 'top', dtype: 'float32', dims: ['batch'] }])
    // The original bytes are all still there: only the graph's length prefix changed.
    expect(edited.byteLength).toBeGreaterThan(model.byteLength)
    const info = readModelInfo(edited)
    expect(info.outputs.map(o => [o.name, o.dtype, o.dims])).toEqual([
      ['sum', 'float32', ['batch', 'n']], ['product', 'float32', ['batch', 'n']], ['shape', 'int64', [2]],
      ['best', 'int64', ['batch']], ['top', 'float32', ['batch']]
    ])
    const session = await ort.InferenceSession.create(edited)
    const a = new ort.Tensor('float32', Float32Array.from([1, 5, 2, 0, 0, 9]), [2, 3])
    const b = new ort.Tensor('float32', Float32Array.from([1, 1, 1, 2, 2, 2]), [2, 3])
    const out = await session.run({ a, b })
    expect(out.best.data).toEqual(BigInt64Array.from([1n, 2n]))
    expect(out.top.data).toEqual(Float32Array.from([5, 18]))
    expect(out.sum.data).toEqual(Float32Array.from([2, 6, 3, 2, 2, 11]))
    await session.release()
  })

  it('refuses bytes that are not an ONNX model', () => {
    expect(failure(() => appendToGraph(new Uint8Array([0x0a, 0xff]), [], []))).toMatch(/^bad-request: not an ONNX model/)
    expect(failure(() => appendToGraph(new Uint8Array([0x08, 0x07]), [], []))).toBe('bad-request: the model has no graph')
  })
})

describe('ctcDecodeBest', () => {
  it('reads the same text and score as decoding the full probabilities', () => {
    const dict = ['', 'a', 'b', ' ']
    // [1, 6, 4]: a a blank b ' ' b
    const probs = Float32Array.from([
      0.1, 0.7, 0.1, 0.1, 0.2, 0.6, 0.1, 0.1, 0.9, 0.05, 0.03, 0.02,
      0.1, 0.1, 0.8, 0.0, 0.1, 0.1, 0.1, 0.7, 0.0, 0.2, 0.5, 0.3
    ])
    const indices = BigInt64Array.from([1n, 1n, 0n, 2n, 3n, 2n])
    const scores = Float32Array.from([0.7, 0.6, 0.9, 0.8, 0.7, 0.5])
    expect(ctcDecodeBest(indices, scores, [1, 6], dict)).toEqual(ctcDecode(probs, [1, 6, 4], dict))
    expect(ctcDecodeBest(indices, scores, [1, 6], dict)[0].text).toBe('ab b')
    expect(() => ctcDecodeBest(BigInt64Array.from([9n]), Float32Array.from([1]), [1, 1], dict)).toThrow(/outside the 4-entry dictionary/)
  })
})

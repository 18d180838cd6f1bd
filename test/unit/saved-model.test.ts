/** What the page keeps across reloads is bounded when written and checked when read back. */
import { describe, expect, it } from 'vitest'
import { MAX_SAVED_INPUT_BYTES, MAX_SAVED_OUTPUT_BYTES, boundedSavedModel, savedModelProblem } from '../../src/browser/saved-model.js'
import { savedOcrPageProblem } from '../../src/browser/saved-ocr.js'
import { MAX_PASTE_CHARS } from '../../src/browser/input-parser-files.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import type { SavedModel } from '../../src/browser/saved-model.js'

const sha = 'a'.repeat(64)
const f32 = (name: string, n: number): ReturnType<typeof fromTypedArray> => fromTypedArray(name, 'float32', [n], new Float32Array(n))

function model (patch: Partial<SavedModel> = {}): SavedModel {
  return {
    sha256: sha,
    name: 'm.onnx',
    size: 10,
    inputs: [{ name: 'a', json: '[1, 2]', tensor: f32('a', 2) }],
    run: { taskId: 't', worker: 'self', backend: 'wasm', timings: { loadMs: 1, inferenceMs: 2, roundTripMs: 3 }, outputs: [f32('y', 2)] },
    ...patch
  }
}

describe('saved model', () => {
  it('keeps what fits, leaves out input tensors over the budget (the file name stays) and outputs over theirs', () => {
    const big = f32('b', MAX_SAVED_INPUT_BYTES / 4)
    const kept = boundedSavedModel(model({ inputs: [{ name: 'a', tensor: f32('a', 2) }, { name: 'b', file: 'big.json', tensor: big }] }))
    expect(kept.inputs[0]!.tensor?.dims).toEqual([2])
    expect(kept.inputs[1]).toEqual({ name: 'b', file: 'big.json' })
    expect(boundedSavedModel(model({ run: { ...model().run!, outputs: [f32('y', MAX_SAVED_OUTPUT_BYTES / 4 + 1)] } })).run).toBeUndefined()
    expect(boundedSavedModel(model({ inputs: [{ name: 'a', json: 'x'.repeat(MAX_PASTE_CHARS + 1) }] })).inputs[0]).toEqual({ name: 'a' })
    expect(savedModelProblem(kept)).toBeUndefined()
  })

  it('copies tensors into tight buffers: a view never drags its larger buffer into the database', () => {
    const whole = new Uint8Array(1024)
    const kept = boundedSavedModel(model({ inputs: [{ name: 'a', tensor: { name: 'a', dtype: 'uint8', dims: [4], data: whole.subarray(0, 4) } }] }))
    expect(kept.inputs[0]!.tensor!.data.buffer.byteLength).toBe(4)
  })

  it('refuses a damaged or foreign record', () => {
    expect(savedModelProblem(model())).toBeUndefined()
    expect(savedModelProblem(null)).toBe('not an object')
    expect(savedModelProblem(model({ sha256: 'nope' }))).toBe('sha256 is not 64 hex digits')
    expect(savedModelProblem(model({ inputs: [{ name: 'a', tensor: { name: 'a', dtype: 'float32', dims: [3], data: new Uint8Array(8) } }] }))).toMatch(/^inputs: .*needs 12/)
    expect(savedModelProblem(model({ inputs: [{ name: 'a', json: 'x'.repeat(MAX_PASTE_CHARS + 1) }] }))).toBe('input a: json is invalid')
    expect(savedModelProblem(model({ inputs: [{ name: 'a', tensor: f32('a', MAX_SAVED_INPUT_BYTES / 4 + 1) }] }))).toBe('inputs are over the size kept')
    expect(savedModelProblem({ ...model(), run: { ...model().run!, timings: { loadMs: 1 } } })).toBe('run timings are invalid')
    expect(savedModelProblem({ ...model(), run: { ...model().run!, outputs: [{ name: 'y', dtype: 'float99', dims: [1], data: new Uint8Array(4) }] } })).toMatch(/^run: .*unknown dtype/)
  })
})

describe('saved OCR page', () => {
  const page = (result: unknown): unknown => ({ name: 'p.png', width: 10, height: 5, image: new Blob(['x']), result })
  const line = { text: 'hi', score: 0.9, box: [{ x: 0, y: 0 }, { x: 1, y: 0 }, { x: 1, y: 1 }, { x: 0, y: 1 }] }

  it('takes a read page, with or without lines, and refuses failed or malformed ones', () => {
    expect(savedOcrPageProblem(page({ text: 'hi', lines: [line] }))).toBeUndefined()
    expect(savedOcrPageProblem(page({ text: '', lines: [] }))).toBeUndefined()
    expect(savedOcrPageProblem(page({ text: '', lines: [], error: 'detection failed' }))).toBe('result is invalid')
    expect(savedOcrPageProblem(page({ text: 'hi', lines: [{ ...line, box: [{ x: 0, y: 0 }] }] }))).toBe('a line box is invalid')
    expect(savedOcrPageProblem({ ...(page({ text: '', lines: [] }) as object), width: 0 })).toBe('size is invalid')
    expect(savedOcrPageProblem({ ...(page({ text: '', lines: [] }) as object), image: 'data:' })).toBe('image is invalid')
  })
})

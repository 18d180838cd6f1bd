import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { CustomJobError, MAX_CUSTOM_TASKS, customModel, datasetFromRows, imageInput, readNpyFiles, resultsJsonl } from '../../src/browser/job-custom.js'
import { fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import type { WireTensor } from '../../src/core/tensor.js'

const addMul = async (): Promise<Uint8Array> => new Uint8Array(await readFile('public/samples/models/add-mul.onnx'))

describe('custom jobs in the page', () => {
  it('reads a model\'s inputs and refuses what is not a model', async () => {
    const m = customModel('add-mul.onnx', await addMul())
    expect(m.inputs.map(i => i.name)).toEqual(['a', 'b'])
    expect(imageInput(m)).toBeUndefined()
    expect(() => customModel('x.onnx', new Uint8Array([1, 2, 3]))).toThrow(CustomJobError)
  })

  it('states the task limit with a message that says what to do', () => {
    const t: WireTensor[] = [fromTypedArray('x', 'float32', [1], new Float32Array([1]))]
    expect(datasetFromRows([t, t], 'data.jsonl').source).toBe('data.jsonl, 2 rows')
    expect(() => datasetFromRows([], 'empty.jsonl')).toThrow(/no inputs/)
    expect(() => datasetFromRows(Array.from({ length: MAX_CUSTOM_TASKS + 1 }, () => t), 'big.jsonl')).toThrow(/more than 100,000 tasks; split the dataset/)
  })

  it('takes .npy files in name order, one task each, for a one-input model only', async () => {
    const m = { ...customModel('add-mul.onnx', await addMul()) }
    await expect(readNpyFiles([], m, async () => { throw new Error('unused') })).rejects.toThrow(/takes 2 inputs/)
    const one = { ...m, inputs: [m.inputs[0]] }
    const files = ['b.npy', 'a.npy', 'notes.txt'].map(n => new File([new Uint8Array(4)], n))
    const seen: string[] = []
    const d = await readNpyFiles(files, one, async (spec, f) => { seen.push(f.name); return fromTypedArray(spec.name, 'float32', [1], new Float32Array([seen.length])) })
    expect(seen).toEqual(['a.npy', 'b.npy'])
    expect(d.tasks).toHaveLength(2)
    expect(d.source).toBe('2 .npy files')
  })

  it('writes results as JSONL in input order, as npm run infer does', () => {
    const out = (v: number): WireTensor => fromTypedArray('y', 'float32', [1], new Float32Array([v]))
    const text = resultsJsonl([
      { index: 1, outputs: [out(2)], agreedBy: ['p'], crossChecked: false },
      { index: 0, outputs: [out(1)], agreedBy: ['self'], crossChecked: false }
    ])
    const lines = text.trim().split('\n').map(l => JSON.parse(l) as { index: number, outputs: Array<{ name: string, data: number[] }>, agreedBy: string[] })
    expect(lines.map(l => l.index)).toEqual([0, 1])
    expect(lines[1].outputs[0]).toMatchObject({ name: 'y', dtype: 'float32', dims: [1], data: [2] })
    expect(lines[0].agreedBy).toEqual(['self'])
    expect(Array.from(toTypedArray(out(3)) as Float32Array)).toEqual([3])
  })
})

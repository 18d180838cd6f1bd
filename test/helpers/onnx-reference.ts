/** onnxruntime-node in the test process: the reference every network result is compared with. */
import { expect } from 'vitest'
import * as ort from 'onnxruntime-node'
import { toTypedArray } from '../../src/core/tensor.js'
import type { WireTensor } from '../../src/core/tensor.js'

/** Runs a model (bytes or a file path) once on `inputs` and returns every output by name. */
export async function referenceRun (model: Uint8Array | string, inputs: WireTensor[]): Promise<Record<string, ort.Tensor>> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model)
  try {
    return await session.run(Object.fromEntries(inputs.map(t => [t.name, new ort.Tensor(t.dtype, toTypedArray(t), t.dims)])))
  } finally {
    await session.release()
  }
}

/** Network outputs equal the reference exactly: same names, dtypes, dims and values (NaN equals NaN). */
export function expectSameOutputs (outputs: WireTensor[], ref: Record<string, ort.Tensor>): void {
  expect(outputs.map(o => o.name).sort()).toEqual(Object.keys(ref).sort())
  for (const o of outputs) {
    const r = ref[o.name]
    expect(o.dtype, o.name).toBe(r.type)
    expect(o.dims, o.name).toEqual([...r.dims])
    expect(toTypedArray(o), o.name).toEqual(r.data)
  }
}

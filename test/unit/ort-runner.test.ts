/** The runner a worker uses: model bytes must hash to the requested sha256 before anything loads. */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { OrtRunner } from '../../src/runtime/ort-runner.js'
import { fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { MODELS_DIR } from '../../src/node/node-peer.js'
import type { ModelFetcher, OrtModule } from '../../src/runtime/ort-runner.js'
import type { TaskRequest } from '../../src/core/task-types.js'
import { codeOf } from '../helpers/errors.js'

const model = builtinModel('digits')
const realBytes = async (): Promise<Uint8Array> => new Uint8Array(await readFile(MODELS_DIR + model.file))

function runner (fetchModel: ModelFetcher): OrtRunner {
  return new OrtRunner(ort as unknown as OrtModule, fetchModel, { backend: 'test', threads: 1 })
}

function request (overrides: Partial<TaskRequest> = {}): TaskRequest {
  return {
    taskId: 't',
    jobId: 'j',
    model: modelRef(model),
    inputs: [fromTypedArray('input', 'float32', [1, 1, 28, 28], new Float32Array(784))],
    timeoutMs: 0,
    outputNames: [],
    ...overrides
  }
}

describe('OrtRunner', () => {
  it('runs the digit model and returns every output with timings', async () => {
    const r = await runner(realBytes).execute(request())
    expect(r.outputs.map(o => o.name).sort()).toEqual(['logits', 'probs'])
    const probs = toTypedArray(r.outputs.find(o => o.name === 'probs')!) as Float32Array
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5)
    expect(r.inferenceMs).toBeGreaterThan(0)
  })

  it('rejects model bytes that do not hash to the requested sha256, and never loads them', async () => {
    let created = 0
    const spy = { ...ort, InferenceSession: { create: async (...args: Parameters<typeof ort.InferenceSession.create>) => { created++; return await ort.InferenceSession.create(...args) } } }
    const tampered = async (): Promise<Uint8Array> => {
      const bytes = await realBytes()
      bytes[bytes.length - 1] ^= 0xff
      return bytes
    }
    const r = new OrtRunner(spy as unknown as OrtModule, tampered, { backend: 'test', threads: 1 })
    expect(await codeOf(r.execute(request()))).toBe('model-hash-mismatch')
    expect(created).toBe(0)
  })

  it('reports a model it cannot get as model-unavailable', async () => {
    const r = runner(async () => { throw new Error('no such file') })
    expect(await codeOf(r.execute(request()))).toBe('model-unavailable')
  })

  it('does not cache a failed load: the next task can succeed', async () => {
    let calls = 0
    const flaky: ModelFetcher = async () => { if (++calls === 1) throw new Error('transient'); return await realBytes() }
    const r = runner(flaky)
    expect(await codeOf(r.execute(request()))).toBe('model-unavailable')
    await expect(r.execute(request())).resolves.toBeDefined()
  })

  it('creates one session per model and reuses it', async () => {
    let fetches = 0
    const r = runner(async () => { fetches++; return await realBytes() })
    await Promise.all([r.execute(request()), r.execute(request({ taskId: 'u' }))])
    await r.execute(request({ taskId: 'v' }))
    expect(fetches).toBe(1)
    expect(r.cachedModels).toEqual([model.sha256])
  })

  it('names unknown inputs and outputs in a bad-request error', async () => {
    const r = runner(realBytes)
    await expect(r.execute(request({ inputs: [fromTypedArray('pixels', 'float32', [1, 1, 28, 28], new Float32Array(784))] })))
      .rejects.toMatchObject({ code: 'bad-request', message: expect.stringContaining('"pixels"') })
    await expect(r.execute(request({ outputNames: ['nope'] })))
      .rejects.toMatchObject({ code: 'bad-request', message: expect.stringContaining('nope') })
  })

  it('turns a wrong input shape into inference-failed with onnxruntime\'s reason', async () => {
    const r = runner(realBytes)
    await expect(r.execute(request({ inputs: [fromTypedArray('input', 'float32', [1, 1, 27, 29], new Float32Array(27 * 29))] })))
      .rejects.toMatchObject({ code: 'inference-failed' })
  })
})

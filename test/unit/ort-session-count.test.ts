/**
 * OrtRunner also bounds how many sessions it keeps, whatever their model bytes: each session holds
 * its own onnxruntime state (prepacked weights, activation arena) worth several times a small
 * model's bytes, and in a tab that memory sits in a WASM heap that never shrinks.
 */
import { describe, expect, it } from 'vitest'
import { OrtRunner } from '../../src/runtime/ort-runner.js'
import { sha256Hex } from '../../src/core/hash.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import { flushMicrotasks } from '../helpers/memory-channel.js'
import type { ModelRef, TaskRequest } from '../../src/core/task-types.js'
import type { ModelFetcher, OrtModule } from '../../src/runtime/ort-runner.js'

/** A fake onnxruntime whose sessions are named by their model's first byte and answer at once. */
function fakeOrt (): { ort: OrtModule, created: number[], released: number[] } {
  const created: number[] = []
  const released: number[] = []
  const ort = {
    Tensor: class { constructor (readonly type: string, readonly data: ArrayBufferView, readonly dims: readonly number[]) {} },
    InferenceSession: {
      create: async (bytes: Uint8Array) => {
        const id = bytes[0]
        created.push(id)
        return {
          inputNames: ['x'],
          outputNames: ['y'],
          run: async (feeds: Record<string, unknown>) => ({ y: feeds.x }),
          release: async () => { released.push(id) }
        }
      }
    }
  }
  return { ort: ort as unknown as OrtModule, created, released }
}

async function tinyModels (n: number): Promise<{ refs: ModelRef[], fetch: ModelFetcher }> {
  const bytes = Array.from({ length: n }, (_, i) => new Uint8Array(1024).fill(i))
  const refs = await Promise.all(bytes.map(async (b, i) => ({ sha256: await sha256Hex(b), size: b.byteLength, name: `m${i}` })))
  return { refs, fetch: async (ref) => bytes[refs.findIndex(r => r.sha256 === ref.sha256)] }
}

function task (model: ModelRef): TaskRequest {
  return { taskId: model.name, jobId: 'j', model, inputs: [fromTypedArray('x', 'float32', [1], new Float32Array(1))], timeoutMs: 0, outputNames: [] }
}

describe('OrtRunner session count', () => {
  it('keeps at most maxSessions sessions, releasing the least recently used, even far under the byte budget', async () => {
    const { ort, created, released } = fakeOrt()
    const { refs, fetch } = await tinyModels(5)
    const runner = new OrtRunner(ort, fetch, { backend: 'fake', threads: 1, sessionBudgetBytes: 1024 * 1024 * 1024, maxSessions: 3 })
    for (const i of [0, 1, 2, 0, 3, 4]) {
      await runner.execute(task(refs[i]))
      await flushMicrotasks()
      expect(runner.cachedModels.length).toBeLessThanOrEqual(3)
    }
    // m1 then m2 were the least recently used when m3 and m4 came.
    expect(released).toEqual([1, 2])
    expect(runner.cachedModels.sort()).toEqual([refs[0], refs[3], refs[4]].map(r => r.sha256).sort())
    await runner.execute(task(refs[1]))
    expect(created).toEqual([0, 1, 2, 3, 4, 1])
  })
})

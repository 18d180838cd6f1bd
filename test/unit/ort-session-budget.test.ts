/** OrtRunner keeps its sessions within a budget of model bytes and a count, releasing the least recently used idle ones. */
import { describe, expect, it } from 'vitest'
import { OrtRunner } from '../../src/runtime/ort-runner.js'
import { sha256Hex } from '../../src/core/hash.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import { flushMicrotasks } from '../helpers/memory-channel.js'
import type { ModelRef, TaskRequest } from '../../src/core/task-types.js'
import type { ModelFetcher, OrtModule } from '../../src/runtime/ort-runner.js'

const MiB = 1024 * 1024

/** A fake onnxruntime: sessions named by their model's first byte; runs wait until the test lets them end. */
function fakeOrt () {
  const created: number[] = []
  const released: number[] = []
  const pending: Array<() => void> = []
  const onRun: Array<() => void> = []
  const ort = {
    Tensor: class { constructor (readonly type: string, readonly data: ArrayBufferView, readonly dims: readonly number[]) {} },
    InferenceSession: {
      create: async (bytes: Uint8Array) => {
        const id = bytes[0]
        created.push(id)
        return {
          inputNames: ['x'],
          outputNames: ['y'],
          run: async (feeds: Record<string, { data: ArrayBufferView, dims: readonly number[], type: string }>) => {
            await new Promise<void>(resolve => { pending.push(resolve); for (const w of onRun.splice(0)) w() })
            return { y: feeds.x }
          },
          release: async () => { released.push(id) }
        }
      }
    }
  }
  /** Resolves once `n` runs are waiting to end. */
  const runsStarted = async (n: number): Promise<void> => {
    while (pending.length < n) await new Promise<void>(resolve => { onRun.push(resolve) })
  }
  /** Lets every run started so far end. */
  const finishRuns = async (): Promise<void> => {
    for (const resolve of pending.splice(0)) resolve()
    await flushMicrotasks()
  }
  return { ort: ort as unknown as OrtModule, created, released, runsStarted, finishRuns }
}

async function models (sizes: number[]): Promise<{ refs: ModelRef[], fetch: ModelFetcher }> {
  const bytes = sizes.map((size, i) => new Uint8Array(size).fill(i))
  const refs = await Promise.all(bytes.map(async (b, i) => ({ sha256: await sha256Hex(b), size: b.byteLength, name: `m${i}` })))
  const fetch: ModelFetcher = async (ref) => bytes[refs.findIndex(r => r.sha256 === ref.sha256)]
  return { refs, fetch }
}

function task (model: ModelRef, taskId = model.name): TaskRequest {
  return { taskId, jobId: 'j', model, inputs: [fromTypedArray('x', 'float32', [1], new Float32Array(1))], timeoutMs: 0, outputNames: [] }
}

describe('OrtRunner session budget', () => {
  it('releases the least recently used sessions once their model bytes exceed the budget', async () => {
    const { ort, created, released, runsStarted, finishRuns } = fakeOrt()
    const { refs, fetch } = await models([4 * MiB, 4 * MiB, 4 * MiB, 4 * MiB])
    const runner = new OrtRunner(ort, fetch, { backend: 'fake', threads: 1, sessionBudgetBytes: 10 * MiB })
    const run = async (i: number): Promise<void> => {
      const done = runner.execute(task(refs[i]))
      await runsStarted(1)
      await finishRuns()
      await done
    }
    await run(0)
    await run(1)
    await run(0) // m0 is now more recent than m1
    await run(2)
    await flushMicrotasks()
    // 12 MiB > 10 MiB: m1, the least recently used, went; m0 and m2 stay.
    expect(released).toEqual([1])
    expect(runner.cachedModels.sort()).toEqual([refs[0].sha256, refs[2].sha256].sort())
    await run(3)
    await flushMicrotasks()
    expect(released).toEqual([1, 0])
    expect(runner.cachedBytes).toBeLessThanOrEqual(10 * MiB)
    // A released model loads again when asked for.
    await run(1)
    expect(created).toEqual([0, 1, 2, 3, 1])
  })

  it('never releases a session that is running, and keeps the latest even if it alone is over budget', async () => {
    const { ort, released, runsStarted, finishRuns } = fakeOrt()
    const { refs, fetch } = await models([6 * MiB, 6 * MiB, 20 * MiB])
    const runner = new OrtRunner(ort, fetch, { backend: 'fake', threads: 1, sessionBudgetBytes: 10 * MiB })
    const first = runner.execute(task(refs[0]))
    const second = runner.execute(task(refs[1]))
    await runsStarted(2)
    // Both run at once: 12 MiB, over budget, but neither may go.
    expect(runner.cachedModels.length).toBe(2)
    expect(released).toEqual([])
    await finishRuns()
    await Promise.all([first, second])
    await flushMicrotasks()
    expect(released).toEqual([0])

    const big = runner.execute(task(refs[2]))
    await runsStarted(1)
    await finishRuns()
    await big
    await flushMicrotasks()
    expect(released).toEqual([0, 1])
    expect(runner.cachedModels).toEqual([refs[2].sha256])
  })

  // A session holds its own onnxruntime state (prepacked weights, activation arena), several times a
  // small model's bytes, and in a tab that memory sits in a WASM heap that never shrinks.
  it('keeps at most maxSessions sessions, releasing the least recently used, even far under the byte budget', async () => {
    const { ort, created, released, runsStarted, finishRuns } = fakeOrt()
    const { refs, fetch } = await models([1024, 1024, 1024, 1024, 1024])
    const runner = new OrtRunner(ort, fetch, { backend: 'fake', threads: 1, sessionBudgetBytes: 1024 * MiB, maxSessions: 3 })
    const run = async (i: number): Promise<void> => {
      const done = runner.execute(task(refs[i]))
      await runsStarted(1)
      await finishRuns()
      await done
      await flushMicrotasks()
    }
    for (const i of [0, 1, 2, 0, 3, 4]) {
      await run(i)
      expect(runner.cachedModels.length).toBeLessThanOrEqual(3)
    }
    // m1 then m2 were the least recently used when m3 and m4 came.
    expect(released).toEqual([1, 2])
    expect(runner.cachedModels.sort()).toEqual([refs[0], refs[3], refs[4]].map(r => r.sha256).sort())
    await run(1)
    expect(created).toEqual([0, 1, 2, 3, 4, 1])
  })

  it('an explicit release of a running session waits for its run to end', async () => {
    const { ort, released, runsStarted, finishRuns } = fakeOrt()
    const { refs, fetch } = await models([MiB])
    const runner = new OrtRunner(ort, fetch, { backend: 'fake', threads: 1 })
    const running = runner.execute(task(refs[0]))
    await runsStarted(1)
    await runner.release(refs[0].sha256)
    expect(released).toEqual([])
    expect(runner.cachedModels).toEqual([])
    await finishRuns()
    await running
    await flushMicrotasks()
    expect(released).toEqual([0])
  })
})

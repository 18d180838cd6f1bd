import { describe, expect, it } from 'vitest'
import { QUICK_TASK_MS, WorkerAdvertiser } from '../../src/net/worker-advertiser.js'
import { WorkQueue } from '../../src/core/work-queue.js'
import { PIPELINE_DEPTH } from '../../src/core/discovery/advert.js'
import type { Advert } from '../../src/core/discovery/advert.js'
import type { Executor, WorkEvent } from '../../src/core/work-queue.js'

const SHA = 'cd'.repeat(32)
const never = async (): Promise<never> => { throw new Error('not run in this test') }

function advertiserOn (executor: Executor, options: ConstructorParameters<typeof WorkQueue>[1]): { advertiser: WorkerAdvertiser, advert: () => Advert } {
  let source: (() => Advert) | undefined
  const sink = { advertise: (s: () => Advert) => { source = s }, changed: () => {} }
  const queue = new WorkQueue(executor, options)
  const advertiser = new WorkerAdvertiser(sink, queue, { kind: 'node', backend: 'cpu', threads: 1, models: () => [SHA], maxModelBytes: 0 })
  return { advertiser, advert: () => source!() }
}

function done (taskId: string, inferenceMs: number): WorkEvent {
  return {
    taskId, jobId: 'j', requester: 'r', model: 'm', sha256: SHA, state: 'done',
    result: { taskId, outputs: [], backend: 'cpu', threads: 1, timings: { queueMs: 0, loadMs: 0, inferenceMs, totalMs: inferenceMs } }
  } as unknown as WorkEvent
}

describe('advertised credits with batching', () => {
  it('offers a batch\'s worth queued per slot once tasks are quick, one task once they are heavy', () => {
    const batching: Executor = { execute: never, executeMany: never }
    const { advertiser, advert } = advertiserOn(batching, { slots: 2, batch: { maxTasks: 8 } })
    expect(advert().slots).toBe(2 + PIPELINE_DEPTH) // nothing measured yet: as without batching
    advertiser.onWork(done('t1', QUICK_TASK_MS / 4))
    expect(advert().slots).toBe(2 + PIPELINE_DEPTH * 8)
    expect(advert().freeSlots).toBe(2 + PIPELINE_DEPTH * 8)
    advertiser.onWork(done('t2', QUICK_TASK_MS * 20)) // an OCR-sized task: no pile-up on one worker
    expect(advert().slots).toBe(2 + PIPELINE_DEPTH)
  })

  it('keeps one task queued when the executor cannot batch, or batching is off', () => {
    for (const [executor, options] of [
      [{ execute: never }, { slots: 1 }],
      [{ execute: never, executeMany: never }, { slots: 1, batch: false }]
    ] as const) {
      const { advertiser, advert } = advertiserOn(executor, options)
      advertiser.onWork(done('t1', 0.05))
      expect(advert().slots).toBe(1 + PIPELINE_DEPTH)
    }
  })
})

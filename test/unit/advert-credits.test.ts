import { describe, expect, it } from 'vitest'
import { QUICK_RECENT_TASKS, QUICK_TASK_MS, WorkerAdvertiser } from '../../src/net/worker-advertiser.js'
import { WorkQueue } from '../../src/core/work-queue.js'
import { PIPELINE_DEPTH } from '../../src/core/discovery/advert.js'
import { decodeAdvertBody, encodeAdvertBody } from '../../src/core/discovery/codec.js'
import { AdvertBody } from '../../src/core/discovery/pb/advert.js'
import { TaskError } from '../../src/core/errors.js'
import { loadWords } from '../../src/ui/dashboard/peer-words.js'
import type { Advert } from '../../src/core/discovery/advert.js'
import type { Executor, WorkEvent } from '../../src/core/work-queue.js'

const SHA = 'cd'.repeat(32)
const HEAVY = 'ef'.repeat(32)
const never = async (): Promise<never> => { throw new Error('not run in this test') }

function advertiserOn (executor: Executor, options: ConstructorParameters<typeof WorkQueue>[1]): { advertiser: WorkerAdvertiser, advert: () => Advert, changes: () => number } {
  let source: (() => Advert) | undefined
  let changes = 0
  const sink = { advertise: (s: () => Advert) => { source = s }, changed: () => { changes++ } }
  const queue = new WorkQueue(executor, options)
  const advertiser = new WorkerAdvertiser(sink, queue, { kind: 'node', backend: 'cpu', threads: 1, models: () => [SHA, HEAVY], maxModelBytes: 0 })
  return { advertiser, advert: () => source!(), changes: () => changes }
}

function done (taskId: string, inferenceMs: number, sha256 = SHA): WorkEvent {
  return {
    taskId, jobId: 'j', requester: 'r', model: 'm', sha256, state: 'done',
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
    advertiser.onWork(done('t2', QUICK_TASK_MS * 20, HEAVY)) // an OCR-sized task: no pile-up on one worker
    expect(advert().slots).toBe(2 + PIPELINE_DEPTH)
  })

  it('under a mixed load of quick and heavy models keeps one task queued, with no publication per task', () => {
    const batching: Executor = { execute: never, executeMany: never }
    const { advertiser, advert, changes } = advertiserOn(batching, { slots: 1, batch: { maxTasks: 16 } })
    advertiser.onWork(done('q0', 0.5))
    advertiser.onWork(done('h0', 200, HEAVY))
    const settled = changes()
    // Digits and OCR alternating (what bench:soak runs): a heavy model's requester must never be
    // offered a quick model's 17 credits, and the advert must not change with each task.
    for (let i = 1; i <= 40; i++) {
      advertiser.onWork(done(`q${i}`, 0.5))
      expect(advert().slots).toBe(1 + PIPELINE_DEPTH)
      advertiser.onWork(done(`h${i}`, 200, HEAVY))
      expect(advert().slots).toBe(1 + PIPELINE_DEPTH)
    }
    expect(changes()).toBe(settled)
  })

  it('batches again once a heavy model has not been run for QUICK_RECENT_TASKS tasks (an OCR page read long ago does not stop digits batching)', () => {
    const batching: Executor = { execute: never, executeMany: never }
    const { advertiser, advert } = advertiserOn(batching, { slots: 1, batch: { maxTasks: 8 } })
    advertiser.onWork(done('h', 200, HEAVY))
    for (let i = 0; i < QUICK_RECENT_TASKS - 1; i++) {
      advertiser.onWork(done(`q${i}`, 0.5))
      expect(advert().slots).toBe(1 + PIPELINE_DEPTH)
    }
    advertiser.onWork(done('q-last', 0.5))
    expect(advert().slots).toBe(1 + PIPELINE_DEPTH * 8)
    // The heavy model's requester comes back: one task of it and the worker is unbatched again.
    advertiser.onWork(done('h2', 200, HEAVY))
    expect(advert().slots).toBe(1 + PIPELINE_DEPTH)
  })

  it('does not flip with each task while a model\'s mean hovers at the quick bound', () => {
    const batching: Executor = { execute: never, executeMany: never }
    const { advertiser, advert, changes } = advertiserOn(batching, { slots: 1, batch: { maxTasks: 8 } })
    // Tasks of 0.8 and 1.2 × the bound in turn: the mean converges on the bound, crossing it each task.
    const ms = (i: number): number => QUICK_TASK_MS * (i % 2 === 0 ? 0.8 : 1.2)
    for (let i = 0; i < 30; i++) advertiser.onWork(done(`w${i}`, ms(i)))
    const slots = advert().slots
    const before = changes()
    for (let i = 30; i < 60; i++) {
      advertiser.onWork(done(`t${i}`, ms(i)))
      expect(advert().slots).toBe(slots)
    }
    expect(changes()).toBe(before)
  })

  it('says how many of its credits are queued, so the peer list counts execution slots', () => {
    const batching: Executor = { execute: never, executeMany: never }
    const { advertiser, advert } = advertiserOn(batching, { slots: 2, batch: { maxTasks: 8 } })
    advertiser.onWork(done('t1', 0.5))
    expect(advert()).toMatchObject({ slots: 2 + PIPELINE_DEPTH * 8, queueDepth: PIPELINE_DEPTH * 8 })
    // Through the wire, as a receiver reads it.
    const received = decodeAdvertBody(encodeAdvertBody({ seq: 1, leaving: false, advert: advert() }, [])).envelope.advert
    expect(received.queueDepth).toBe(PIPELINE_DEPTH * 8)
    expect(loadWords({ ...received, addrs: [] })).toBe('idle, 2 slots')
    expect(loadWords({ ...received, addrs: [], freeSlots: received.slots - 3 })).toBe('2 running of 2 slots (+1 queued)')
  })

  it('refuses an advert whose queue depth is more than its slots', () => {
    const body = AdvertBody.encode({ ...AdvertBody.decode(encodeAdvertBody({ seq: 1, leaving: false, advert: { kind: 'node', addrs: [], worker: true, paused: false, backend: 'cpu', threads: 1, slots: 2, freeSlots: 2, models: [], cached: [], speeds: {}, maxModelBytes: 0, backends: {} } }, [])), queueDepth: 3 })
    expect(() => decodeAdvertBody(body)).toThrow(TaskError)
    expect(() => decodeAdvertBody(body)).toThrow(/queue depth 3 over its 2 slots/)
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

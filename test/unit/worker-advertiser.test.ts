import { describe, expect, it } from 'vitest'
import { WorkerAdvertiser } from '../../src/net/worker-advertiser.js'
import { WorkQueue } from '../../src/core/work-queue.js'
import { TaskError } from '../../src/core/errors.js'
import type { Advert } from '../../src/core/discovery/advert.js'
import type { WorkEvent } from '../../src/core/work-queue.js'

const SHA = 'ab'.repeat(32)

function setup (): { advertiser: WorkerAdvertiser, changes: () => number, advert: () => Advert } {
  let source: (() => Advert) | undefined
  let changes = 0
  const sink = { advertise: (s: () => Advert) => { source = s }, changed: () => { changes++ } }
  const queue = new WorkQueue({ execute: async () => { throw new Error('not run in this test') } })
  const advertiser = new WorkerAdvertiser(sink, queue, { kind: 'node', backend: 'cpu', threads: 1, models: () => [SHA], maxModelBytes: 0 })
  return { advertiser, changes: () => changes, advert: () => source!() }
}

function event (state: WorkEvent['state'], taskId: string): WorkEvent {
  return {
    taskId,
    jobId: 'j',
    requester: 'r',
    model: 'm',
    sha256: SHA,
    state,
    ...(state === 'done' ? { result: { taskId, outputs: [], backend: 'cpu', threads: 1, timings: { queueMs: 0, loadMs: 0, inferenceMs: 4, totalMs: 4 } } } : {}),
    ...(state === 'failed' ? { error: new TaskError('timeout', 'too slow') } : {})
  } as WorkEvent
}

describe('WorkerAdvertiser task totals', () => {
  it('counts served tasks done and failed, and a counter that moved alone asks for no publication', () => {
    const { advertiser, changes, advert } = setup()
    expect(advert().tasksDone).toBe(0)
    advertiser.onWork(event('queued', 't1'))
    advertiser.onWork(event('running', 't1'))
    advertiser.onWork(event('done', 't1')) // first result: the model is loaded now, a material change
    const afterFirst = changes()
    for (let i = 2; i <= 50; i++) {
      advertiser.onWork(event('queued', `t${i}`))
      advertiser.onWork(event('running', `t${i}`))
      advertiser.onWork(event(i % 10 === 0 ? 'failed' : 'done', `t${i}`))
    }
    expect(advert().tasksDone).toBe(45)
    expect(advert().tasksFailed).toBe(5)
    // Same speed, same models: 49 more tasks ride along with the next heartbeat.
    expect(changes()).toBe(afterFirst)
  })
})

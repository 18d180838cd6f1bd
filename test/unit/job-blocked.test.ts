import { describe, expect, it } from 'vitest'
import { BlockedTracker, RELAY_UNREACHABLE, blockedReason, independentWorkers, needFor } from '../../src/core/job-blocked.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { countedInferenceMs } from '../../src/net/job-runner.js'
import type { BlockedView, BlockedWorker } from '../../src/core/job-blocked.js'

function worker (peerId: string, o: Partial<BlockedWorker> = {}): BlockedWorker {
  return { peerId, paused: false, capable: true, excluded: false, ...o }
}

function view (o: Partial<BlockedView>): BlockedView {
  return { finished: false, need: 1, workers: [], stuck: false, ...o }
}

describe('blockedReason', () => {
  it('says nothing while the job can progress, or once it is over', () => {
    expect(blockedReason(view({ workers: [worker('a')] }))).toBeUndefined()
    expect(blockedReason(view({ need: 2, workers: [worker('a'), worker('b')] }))).toBeUndefined()
    expect(blockedReason(view({ finished: true, need: 3, workers: [] }))).toBeUndefined()
  })

  it('counts different workers as the scheduler counts votes: one diversity group is one worker', () => {
    const sameHost = [worker('a', { groups: ['host:1.2.3.4', 'net:1.2.3.0/24'] }), worker('b', { groups: ['host:1.2.3.4', 'net:1.2.3.0/24'] })]
    expect(blockedReason(view({ need: 3, workers: [...sameHost, worker('self')] }))).toEqual({ code: 'too-few-workers', message: 'needs 3 different workers, 2 available' })
    expect(blockedReason(view({ need: 3, workers: [worker('a')] }))).toEqual({ code: 'too-few-workers', message: 'needs 3 different workers, 1 available' })
    // Unplaced workers (groups unknown) count on their own: they are placed at their first task.
    expect(independentWorkers([worker('a'), worker('b'), worker('c', { groups: ['net:x'] }), worker('d', { groups: ['net:x', 'host:y'] })])).toBe(3)
    // Counting stops at what a job can need.
    expect(independentWorkers(Array.from({ length: 5 }, (_, i) => worker(`w${i}`)), 3)).toBe(3)
  })

  it('names a job that waits for its first worker, only paused workers, or none able to run the model', () => {
    expect(blockedReason(view({ need: 1, workers: [] }))).toEqual({ code: 'no-worker', message: 'no worker has joined yet' })
    expect(blockedReason(view({ workers: [worker('a', { paused: true }), worker('b', { paused: true })] }))).toEqual({ code: 'all-paused', message: 'all 2 workers paused' })
    expect(blockedReason(view({ workers: [worker('a', { paused: true })] }))?.code).toBe('all-paused')
    expect(blockedReason(view({ workers: [worker('a', { capable: false }), worker('b', { paused: true })] }))).toEqual({ code: 'no-capable-worker', message: 'no worker can run this model' })
  })

  it('does not count excluded workers, and says how many there are', () => {
    const r = blockedReason(view({ need: 2, workers: [worker('a'), worker('b', { excluded: true })] }))
    expect(r).toEqual({ code: 'too-few-workers', message: 'needs 2 different workers, 1 available (1 worker excluded for wrong results)' })
  })

  it('puts an unreachable relay first: the missing workers follow from it', () => {
    expect(blockedReason(view({ workers: [], connectivity: RELAY_UNREACHABLE }))).toEqual({ code: 'relay-unreachable', message: RELAY_UNREACHABLE })
    // Workers still reachable over their direct connections: not blocked by the relay alone.
    expect(blockedReason(view({ workers: [worker('a')], connectivity: RELAY_UNREACHABLE }))).toBeUndefined()
  })

  it('takes the scheduler\'s stuck verdict when the workers present cannot decide what is left', () => {
    expect(blockedReason(view({ need: 2, stuck: true, workers: [worker('a'), worker('b')] }))).toEqual({ code: 'too-few-workers', message: 'needs 2 different workers; the workers available cannot all be told apart yet' })
  })

  it('asks an adaptive job for one trusted result, else max(replicas, 2)', () => {
    expect(needFor(3, false, true)).toBe(3)
    expect(needFor(1, true, true)).toBe(1)
    expect(needFor(1, true, false)).toBe(2)
    expect(needFor(3, true, false)).toBe(3)
  })
})

describe('BlockedTracker', () => {
  it('keeps the start of a block while any reason holds, reports each change, and forgets it once the job moves', () => {
    const clock = new FakeClock(1000)
    const t = new BlockedTracker(() => clock.now())
    expect(t.update(undefined)).toBe(false)
    expect(t.update({ code: 'no-worker', message: 'no worker has joined yet' })).toBe(true)
    expect(t.current).toEqual({ code: 'no-worker', message: 'no worker has joined yet', sinceMs: 1000 })
    clock.advance(500)
    expect(t.update({ code: 'no-worker', message: 'no worker has joined yet' })).toBe(false)
    clock.advance(500)
    expect(t.update({ code: 'too-few-workers', message: 'needs 2 different workers, 1 available' })).toBe(true)
    expect(t.current).toEqual({ code: 'too-few-workers', message: 'needs 2 different workers, 1 available', sinceMs: 1000 })
    expect(t.update(undefined)).toBe(true)
    expect(t.current).toBeUndefined()
    clock.advance(100)
    t.update({ code: 'all-paused', message: 'all 2 workers paused' })
    expect(t.current?.sinceMs).toBe(2100)
  })
})

describe('countedInferenceMs', () => {
  it('counts a worker\'s reported inference time only when it is a real duration within the deadline', () => {
    expect(countedInferenceMs(12.5, 60_000)).toBe(12.5)
    expect(countedInferenceMs(60_500, 60_000)).toBe(60_500) // a second of clock slack
    for (const lie of [-1, 0, Number.NaN, Number.POSITIVE_INFINITY, 86_400_000, '5', undefined]) expect(countedInferenceMs(lie, 60_000)).toBe(0)
  })
})

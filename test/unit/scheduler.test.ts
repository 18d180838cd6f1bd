import { describe, expect, it } from 'vitest'
import { Scheduler } from '../../src/core/scheduler.js'
import { Reputation } from '../../src/core/reputation.js'
import { argmaxComparator, relativeComparator } from '../../src/core/compare.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { liarSimulation, simulate } from '../../scripts/sim-scheduler.js'
import { seededRandom } from '../../src/core/random.js'
import type { Assignment, Decision, SchedulerOptions, SchedulerWorker } from '../../src/core/scheduler.js'
import type { TaskErrorCode } from '../../src/core/errors.js'
import type { WireTensor } from '../../src/core/tensor.js'

/** A one-value float32 output. */
function out (value: number): WireTensor[] {
  return [fromTypedArray('y', 'float32', [1], new Float32Array([value]))]
}

type Outcome = { ms: number, outputs?: WireTensor[], error?: TaskErrorCode } | 'stuck'
interface SimWorker extends Partial<SchedulerWorker> {
  peerId: string
  /** What this worker does with an assignment (default: the right answer after 100 ms). */
  run?: (a: Assignment) => Outcome
}

const honest = (ms = 100) => (a: Assignment): Outcome => ({ ms, outputs: out(a.taskIndex) })

/**
 * Drives a Scheduler on a FakeClock: every assignment is started at once and answered (or not)
 * as its worker's `run` says, via clock timers; onChange refills credits.
 */
function harness (options: Partial<SchedulerOptions> & { taskCount: number }, workers: SimWorker[]) {
  const clock = new FakeClock()
  const reputation = options.reputation ?? new Reputation()
  const s = new Scheduler({ replicas: 1, compare: relativeComparator(), clock, reputation, random: seededRandom(42), ...options })
  const runs = new Map(workers.map(w => [w.peerId, w.run ?? honest()]))
  const slots = new Map(workers.map(w => [w.peerId, w.slots ?? 1]))
  const decisions: Decision[] = []
  const decidedTimes = new Uint8Array(options.taskCount)
  const started: Assignment[] = []
  const stuck: Assignment[] = []
  const running = new Map<string, number>()
  const ran = new Map<string, number>()
  const disagreements: Array<[number, string[]]> = []
  const failures: Array<[number, string]> = []
  let overCommitted = false
  let twoReplicasOnOneWorker = false
  const holders = new Map<number, Set<string>>()
  s.onDecision = d => { decisions.push(d); decidedTimes[d.taskIndex]++; holders.delete(d.taskIndex) }
  s.onDisagreement = (t, peers) => { disagreements.push([t, peers]) }
  s.onFailed = (t, reason) => { failures.push([t, reason]); holders.delete(t) }
  const finish = (a: Assignment): void => { running.set(a.peerId, running.get(a.peerId)! - 1); holders.get(a.taskIndex)?.delete(a.peerId) }
  const start = (a: Assignment): void => {
    started.push(a)
    running.set(a.peerId, (running.get(a.peerId) ?? 0) + 1)
    if (running.get(a.peerId)! > slots.get(a.peerId)!) overCommitted = true
    const h = holders.get(a.taskIndex) ?? new Set()
    if (h.has(a.peerId)) twoReplicasOnOneWorker = true
    h.add(a.peerId)
    holders.set(a.taskIndex, h)
    const o = runs.get(a.peerId)!(a)
    if (o === 'stuck') { stuck.push(a); return }
    clock.setTimeout(() => {
      finish(a)
      ran.set(a.peerId, (ran.get(a.peerId) ?? 0) + 1)
      if (o.error != null) s.failed(a, o.error)
      else s.succeeded(a, o.outputs ?? out(a.taskIndex))
    }, o.ms)
  }
  s.onChange = () => { for (const a of s.assign()) start(a) }
  for (const w of workers) s.setWorker({ peerId: w.peerId, slots: w.slots ?? 1, eligible: w.eligible ?? true, msPerTask: w.msPerTask })
  /** Advances in steps until every task is final (or `maxMs` passes). */
  const runUntilFinished = (stepMs = 50, maxMs = 10_000_000): void => {
    while (!s.finished && clock.now() < maxMs) clock.advance(stepMs)
  }
  return {
    clock, s, reputation, decisions, decidedTimes, started, stuck, ran, disagreements, failures, runUntilFinished,
    get overCommitted () { return overCommitted },
    get twoReplicasOnOneWorker () { return twoReplicasOnOneWorker }
  }
}

/** A scheduler driven by hand (no onChange wiring). */
function manual (options: Partial<SchedulerOptions> & { taskCount: number }) {
  const clock = new FakeClock()
  const reputation = options.reputation ?? new Reputation()
  const s = new Scheduler({ replicas: 1, compare: relativeComparator(), clock, reputation, random: seededRandom(1), ...options })
  const decisions: Decision[] = []
  s.onDecision = d => { decisions.push(d) }
  return { clock, s, reputation, decisions }
}

const byPeer = (as: Assignment[]): Record<string, number[]> => {
  const r: Record<string, number[]> = {}
  for (const a of as) (r[a.peerId] ??= []).push(a.taskIndex)
  return r
}

describe('Scheduler: credit dispatch', () => {
  it('gives a 4-slot worker ~4× the tasks of a 1-slot worker and never exceeds anyone\'s credits', () => {
    const h = harness({ taskCount: 500 }, [{ peerId: 'one', slots: 1 }, { peerId: 'four', slots: 4 }])
    h.runUntilFinished()
    expect(h.s.finished).toBe(true)
    expect(h.overCommitted).toBe(false)
    const one = h.ran.get('one')!
    const four = h.ran.get('four')!
    expect(one + four).toBe(500)
    expect(four / one).toBeGreaterThan(3.8)
    expect(four / one).toBeLessThan(4.2)
    // Demand-driven: 500 tasks at 5 in flight and 100 ms each is 100 rounds.
    expect(h.clock.now()).toBeLessThanOrEqual(100 * 100)
  })

  it('runs faster workers more often: demand follows speed', () => {
    const h = harness({ taskCount: 600 }, [{ peerId: 'slow', run: honest(300) }, { peerId: 'fast', run: honest(100) }])
    h.runUntilFinished(100)
    expect(h.ran.get('fast')! / h.ran.get('slow')!).toBeCloseTo(3, 0)
  })

  it('prefers faster workers when several have free credits; unknown speeds come last', () => {
    const { s } = manual({ taskCount: 3 })
    s.setWorker({ peerId: 'unknown', slots: 1, eligible: true })
    s.setWorker({ peerId: 'slow', slots: 1, eligible: true, msPerTask: 300 })
    s.setWorker({ peerId: 'fast', slots: 1, eligible: true, msPerTask: 100 })
    s.setWorker({ peerId: 'mid', slots: 1, eligible: true, msPerTask: 200 })
    expect(s.assign().map(a => a.peerId)).toEqual(['fast', 'mid', 'slow'])
    // A speed update re-sorts.
    const { s: s2 } = manual({ taskCount: 1 })
    s2.setWorker({ peerId: 'a', slots: 1, eligible: true, msPerTask: 100 })
    s2.setWorker({ peerId: 'b', slots: 1, eligible: true, msPerTask: 200 })
    s2.setWorker({ peerId: 'a', slots: 1, eligible: true, msPerTask: 500 })
    expect(s2.assign().map(a => a.peerId)).toEqual(['b'])
  })

  it('prefers workers that already have the model (no transfer first), then speed; a cached model re-sorts', () => {
    const { s } = manual({ taskCount: 2 })
    s.setWorker({ peerId: 'fast-without', slots: 1, eligible: true, msPerTask: 10 })
    s.setWorker({ peerId: 'slow-with', slots: 1, eligible: true, msPerTask: 300, hasModel: true })
    s.setWorker({ peerId: 'unknown-with', slots: 1, eligible: true, hasModel: true })
    expect(s.assign().map(a => a.peerId)).toEqual(['slow-with', 'unknown-with'])
    const { s: s2 } = manual({ taskCount: 1 })
    s2.setWorker({ peerId: 'a', slots: 1, eligible: true, msPerTask: 100 })
    s2.setWorker({ peerId: 'b', slots: 1, eligible: true, msPerTask: 200 })
    s2.setWorker({ peerId: 'b', slots: 1, eligible: true, msPerTask: 200, hasModel: true })
    expect(s2.assign().map(a => a.peerId)).toEqual(['b'])
  })

  it('is capability-aware: ineligible workers get nothing until they become eligible', () => {
    const { s } = manual({ taskCount: 10 })
    s.setWorker({ peerId: 'cannot', slots: 4, eligible: false, msPerTask: 1 })
    s.setWorker({ peerId: 'zero', slots: 0, eligible: true })
    s.setWorker({ peerId: 'can', slots: 2, eligible: true, msPerTask: 100 })
    const first = s.assign()
    expect(byPeer(first)).toEqual({ can: [0, 1] })
    expect(s.assign()).toEqual([])
    s.setWorker({ peerId: 'cannot', slots: 4, eligible: true, msPerTask: 1 })
    expect(byPeer(s.assign())).toEqual({ cannot: [2, 3, 4, 5] })
    // Pausing keeps what is running but gives no more.
    s.setWorker({ peerId: 'cannot', slots: 4, eligible: false, msPerTask: 1 })
    s.succeeded(first[0], out(0))
    expect(byPeer(s.assign())).toEqual({ can: [6] })
    expect(s.progress).toMatchObject({ total: 10, done: 1, inFlight: 6, pending: 3, running: 6 })
  })

  it('fires onChange when credits free up, and never re-entrantly', () => {
    const { s } = manual({ taskCount: 5 })
    let depth = 0
    let maxDepth = 0
    let calls = 0
    s.onChange = () => {
      calls++
      depth++
      maxDepth = Math.max(maxDepth, depth)
      s.setWorker({ peerId: 'w', slots: 1, eligible: true }) // a change inside the handler
      depth--
    }
    s.setWorker({ peerId: 'w', slots: 1, eligible: true })
    expect(maxDepth).toBe(1)
    expect(calls).toBeGreaterThan(0)
  })
})

describe('Scheduler: re-queueing', () => {
  it("re-queues a removed worker's tasks at the front of the pending order", () => {
    const { s } = manual({ taskCount: 10 })
    s.setWorker({ peerId: 'A', slots: 2, eligible: true })
    s.setWorker({ peerId: 'B', slots: 2, eligible: true })
    const first = s.assign()
    expect(byPeer(first)).toEqual({ A: [0, 1], B: [2, 3] })
    expect(s.removeWorker('A')).toEqual([0, 1])
    expect(s.removeWorker('A')).toEqual([])
    expect(s.progress).toMatchObject({ inFlight: 2, pending: 8 })
    expect(s.assign()).toEqual([]) // B is full
    s.succeeded(first[2], out(2))
    expect(s.assign().map(a => a.taskIndex)).toEqual([0])
    s.succeeded(first[3], out(3))
    expect(s.assign().map(a => a.taskIndex)).toEqual([1])
    // A late answer from the removed worker is dropped.
    expect(s.succeeded(first[0], out(0))).toBeUndefined()
    expect(s.progress.done).toBe(2)
  })

  it('fails an assignment with no answer by taskTimeoutMs and re-queues its task (to another worker first)', () => {
    const timedOut: Assignment[] = []
    const h = harness({ taskCount: 3, taskTimeoutMs: 1000, speculate: false }, [
      { peerId: 'A', run: a => a.taskIndex === 0 ? 'stuck' : { ms: 100 } },
      { peerId: 'B' }
    ])
    h.s.onTimeout = a => { timedOut.push(a) }
    h.clock.advance(999)
    expect(h.decisions.map(d => d.taskIndex).sort()).toEqual([1, 2])
    expect(h.s.progress).toMatchObject({ done: 2, inFlight: 1, pending: 0 })
    h.clock.advance(1)
    expect(timedOut.map(a => [a.taskIndex, a.peerId])).toEqual([[0, 'A']])
    // Task 0 went back to the queue and B (that has not failed it) took it at once.
    expect(h.started.at(-1)).toMatchObject({ taskIndex: 0, peerId: 'B' })
    h.clock.advance(100)
    expect(h.s.finished).toBe(true)
    expect(h.decisions.find(d => d.taskIndex === 0)?.agreedBy).toEqual(['B'])
    // A's answer after its timeout counts for nothing.
    expect(h.s.succeeded(h.stuck[0], out(0))).toBeUndefined()
    expect(h.decisions).toHaveLength(3)
    h.s.dispose()
    expect(h.clock.pendingTimers).toBe(0)
  })

  it("backs a busy worker off until its next success, a setWorker, or the backoff's end", () => {
    const { s, clock } = manual({ taskCount: 20, busyBackoffMs: 500, maxAttempts: 1 })
    let changes = 0
    s.setWorker({ peerId: 'A', slots: 2, eligible: true })
    s.setWorker({ peerId: 'B', slots: 1, eligible: true })
    s.onChange = () => { changes++ }
    const first = s.assign()
    expect(byPeer(first)).toEqual({ A: [0, 1], B: [2] })
    s.failed(first[0], 'busy')
    expect(s.taskState(0)).toBe('active') // busy is not the task's fault: maxAttempts 1 is not used up
    expect(s.assign()).toEqual([]) // A has a free credit but is backed off; B is full
    s.succeeded(first[2], out(2))
    expect(byPeer(s.assign())).toEqual({ B: [0] }) // the re-queued task first
    s.succeeded(first[1], out(1)) // A's success lifts the backoff
    const aNow = s.assign()
    expect(byPeer(aNow)).toEqual({ A: [3, 4] })

    expect(s.assign()).toEqual([])
    expect(s.progress.running).toBe(3)
    // Busy again: the backoff ends by itself after busyBackoffMs.
    const [a3, a4] = aNow
    s.failed(a3, 'busy')
    expect(s.assign()).toEqual([])
    changes = 0
    clock.advance(499)
    expect(changes).toBe(0)
    clock.advance(1)
    expect(changes).toBe(1)
    expect(s.assign().map(a => [a.peerId, a.taskIndex])).toEqual([['A', 3]])
    // And setWorker lifts it at once.
    s.failed(a4, 'busy')
    expect(s.assign()).toEqual([])
    s.setWorker({ peerId: 'A', slots: 2, eligible: true })
    expect(s.assign().map(a => [a.peerId, a.taskIndex])).toEqual([['A', 4]])
  })

  it('gives up on a task after maxAttempts failures and reports it failed', () => {
    const h = harness({ taskCount: 3, maxAttempts: 3 }, [
      { peerId: 'bad', run: () => ({ ms: 10, error: 'inference-failed' }) }
    ])
    h.runUntilFinished(10)
    expect(h.s.finished).toBe(true)
    expect(h.s.failedTasks()).toEqual([0, 1, 2])
    expect(h.failures.sort()).toEqual([[0, 'max-attempts'], [1, 'max-attempts'], [2, 'max-attempts']])
    expect(h.started).toHaveLength(9)
    expect(h.decisions).toEqual([])
    expect(h.s.progress).toMatchObject({ done: 0, failed: 3, pending: 0, inFlight: 0 })
  })

  it('retries a failed task on another worker before the one that failed it', () => {
    const h = harness({ taskCount: 50, maxAttempts: 2 }, [
      { peerId: 'broken', msPerTask: 1, run: () => ({ ms: 5, error: 'inference-failed' }) },
      { peerId: 'good', msPerTask: 100 }
    ])
    h.runUntilFinished(10)
    expect(h.s.finished).toBe(true)
    expect(h.s.failedTasks()).toEqual([]) // no task failed twice on the broken worker
    expect(h.decisions.every(d => d.agreedBy[0] === 'good')).toBe(true)
    // Three failures in a row rest the broken worker (2 s, then doubling), so it wastes little.
    expect(h.ran.get('broken')).toBeLessThan(15)
  })

  it('rests a worker that fails three tasks in a row; a repeated advert does not lift that, a changed one does', () => {
    const { s } = manual({ taskCount: 20, busyBackoffMs: 1000 })
    s.setWorker({ peerId: 'w', slots: 3, eligible: true })
    for (const a of s.assign()) s.failed(a, 'inference-failed')
    expect(s.assign()).toEqual([])
    s.setWorker({ peerId: 'w', slots: 3, eligible: true }) // same advert again
    expect(s.assign()).toEqual([])
    s.setWorker({ peerId: 'w', slots: 2, eligible: true })
    expect(s.assign()).toHaveLength(2)
  })

  it('keeps the votes of a removed worker, and does not let it vote twice when it comes back', () => {
    const { s } = manual({ taskCount: 1, replicas: 2 })
    s.setWorker({ peerId: 'a', slots: 1, eligible: true })
    s.setWorker({ peerId: 'b', slots: 1, eligible: true })
    const [x, y] = s.assign()
    expect(s.succeeded(x, out(0))).toBeUndefined()
    s.removeWorker('a')
    expect(s.removeWorker('b')).toEqual([0])
    s.setWorker({ peerId: 'a', slots: 1, eligible: true })
    expect(s.assign()).toEqual([]) // a already voted on task 0
    expect(s.succeeded(y, out(0))).toBeUndefined() // b's assignment was withdrawn
    s.setWorker({ peerId: 'c', slots: 1, eligible: true })
    const [z] = s.assign()
    expect(z.peerId).toBe('c')
    expect(s.succeeded(z, out(0))?.agreedBy).toEqual(['a', 'c'])
  })

  it('never dispatches tasks already done (resume)', () => {
    const h = harness({ taskCount: 10, done: [0, 2, 4, 4, 9] }, [{ peerId: 'A', slots: 3 }, { peerId: 'B' }])
    expect(h.s.progress).toMatchObject({ total: 10, done: 4, resumed: 4, pending: 2, inFlight: 4 })
    h.runUntilFinished()
    expect(h.started.map(a => a.taskIndex).sort((a, b) => a - b)).toEqual([1, 3, 5, 6, 7, 8])
    expect(h.s.progress.done).toBe(10)
    const all = manual({ taskCount: 3, done: [0, 1, 2] })
    expect(all.s.finished).toBe(true)
    all.s.setWorker({ peerId: 'A', slots: 1, eligible: true })
    expect(all.s.assign()).toEqual([])
    expect(() => manual({ taskCount: 3, done: [3] })).toThrow(RangeError)
  })
})

describe('Scheduler: exactly once and speculation', () => {
  it('finalises on the first result and drops duplicates and late results', () => {
    const { s, decisions } = manual({ taskCount: 2 })
    s.setWorker({ peerId: 'A', slots: 2, eligible: true })
    const [a0, a1] = s.assign()
    const d = s.succeeded(a0, out(0))
    expect(d).toEqual({ taskIndex: 0, outputs: out(0), agreedBy: ['A'], crossChecked: false })
    expect(s.succeeded(a0, out(0))).toBeUndefined()
    expect(s.succeeded({ ...a0 }, out(7))).toBeUndefined()
    s.failed(a0, 'timeout')
    expect(s.succeeded({ ...a1, taskIndex: 0 }, out(0))).toBeUndefined() // forged: wrong task for that id
    expect(s.succeeded({ ...a1, id: 999 }, out(1))).toBeUndefined() // unknown id
    expect(decisions).toHaveLength(1)
    expect(s.progress).toMatchObject({ done: 1, inFlight: 1, replicasRun: 1 })
    expect(s.succeeded(a1, out(1))?.taskIndex).toBe(1)
    expect(decisions).toHaveLength(2)
    expect(s.finished).toBe(true)
  })

  it("copies a stuck worker's task to an idle worker; the copy wins and the late answer is dropped", () => {
    const cancelled: Assignment[] = []
    const h = harness({ taskCount: 2 }, [
      { peerId: 'stuck', run: a => a.taskIndex === 0 ? 'stuck' : { ms: 100 } },
      { peerId: 'B' },
      { peerId: 'C', run: honest(1000) }
    ])
    h.s.onCancel = a => { cancelled.push(a) }
    // t=0: stuck←0, B←1, C idle. t=100: task 1 done, the median is 100 ms, so task 0 turns straggler at 200.
    h.clock.advance(199)
    expect(h.started.filter(a => a.speculative)).toEqual([])
    h.clock.advance(1)
    const copies = h.started.filter(a => a.speculative)
    expect(copies).toHaveLength(1) // one copy per task, even with two idle workers
    expect(copies[0]).toMatchObject({ taskIndex: 0, peerId: 'B' })
    h.clock.advance(100)
    expect(h.s.finished).toBe(true)
    expect(h.decisions.find(d => d.taskIndex === 0)?.agreedBy).toEqual(['B'])
    expect(cancelled).toEqual([h.stuck[0]])
    // The stuck worker's late answer is dropped and frees its credit.
    expect(h.s.progress.running).toBe(1)
    expect(h.s.succeeded(h.stuck[0], out(0))).toBeUndefined()
    expect(h.s.progress).toMatchObject({ running: 0, speculative: 1, replicasRun: 3 })
    expect(h.decisions).toHaveLength(2)
    expect(Array.from(h.decidedTimes)).toEqual([1, 1])
  })

  it('never copies to the worker already running the task, and makes one copy per task', () => {
    const h = harness({ taskCount: 1 }, [{ peerId: 'only', slots: 3, msPerTask: 10, run: () => 'stuck' }])
    h.clock.advance(1000)
    expect(h.started).toHaveLength(1) // free credits, a straggler, but it is its own task

    const { s, clock } = manual({ taskCount: 1 })
    s.setWorker({ peerId: 'x', slots: 1, eligible: true, msPerTask: 10 })
    const [a] = s.assign()
    s.setWorker({ peerId: 'y', slots: 1, eligible: true, msPerTask: 10 })
    s.setWorker({ peerId: 'z', slots: 1, eligible: true, msPerTask: 10 })
    clock.advance(19)
    expect(s.assign()).toEqual([]) // not a straggler yet (2 × 10 ms)
    clock.advance(1)
    const copies = s.assign()
    expect(copies).toEqual([{ id: 2, taskIndex: 0, peerId: 'y', speculative: true }])
    clock.advance(100)
    expect(s.assign()).toEqual([])
    expect(s.succeeded(a, out(0))?.agreedBy).toEqual(['x']) // the original may still win
    expect(s.succeeded(copies[0], out(0))).toBeUndefined()
  })

  it('re-queues on removeWorker while a copy runs elsewhere only if the task needs it', () => {
    const { s, clock } = manual({ taskCount: 1 })
    s.setWorker({ peerId: 'x', slots: 1, eligible: true, msPerTask: 10 })
    s.assign()
    s.setWorker({ peerId: 'y', slots: 1, eligible: true, msPerTask: 10 })
    clock.advance(20)
    const [copy] = s.assign()
    expect(copy.speculative).toBe(true)
    expect(s.removeWorker('x')).toEqual([]) // the copy carries on
    expect(s.succeeded(copy, out(0))?.agreedBy).toEqual(['y'])
  })
})

describe('Scheduler: replication and quorum', () => {
  it('finalises when r results agree within the tolerance (1e-6 apart agree)', () => {
    const h = harness({ taskCount: 20, replicas: 2, compare: relativeComparator(1e-4) }, [
      { peerId: 'A', run: a => ({ ms: 100, outputs: out(0.5 + a.taskIndex) }) },
      { peerId: 'B', run: a => ({ ms: 100, outputs: out(0.5 + a.taskIndex + 1e-6) }) }
    ])
    h.runUntilFinished()
    expect(h.decisions).toHaveLength(20)
    expect(h.decisions.every(d => d.crossChecked && d.agreedBy.length === 2)).toBe(true)
    expect(h.twoReplicasOnOneWorker).toBe(false)
    expect(h.s.progress).toMatchObject({ done: 20, crossChecked: 20, disagreements: 0, replicasRun: 40 })
    expect(h.reputation.record('A').agreed).toBe(20)
    expect(h.reputation.record('B').agreed).toBe(20)
  })

  it('dispatches another replica when results disagree (1e-2 apart) and decides by majority', () => {
    const h = harness({ taskCount: 10, replicas: 2, compare: relativeComparator(1e-4) }, [
      { peerId: 'A', msPerTask: 100, run: a => ({ ms: 100, outputs: out(0.5 + a.taskIndex) }) },
      { peerId: 'off', msPerTask: 100, run: a => ({ ms: 100, outputs: out(0.5 + a.taskIndex + 1e-2) }) },
      { peerId: 'C', msPerTask: 200, run: a => ({ ms: 100, outputs: out(0.5 + a.taskIndex + 1e-6) }) }
    ])
    h.runUntilFinished()
    expect(h.decisions).toHaveLength(10)
    for (const d of h.decisions) {
      expect(d.agreedBy).not.toContain('off')
      expect(d.crossChecked).toBe(true)
      expect(relativeComparator(1e-4)(d.outputs, out(0.5 + d.taskIndex))).toBe(true)
    }
    const lost = h.disagreements.filter(([, peers]) => peers.includes('off'))
    expect(lost.length).toBeGreaterThan(0)
    expect(lost.every(([, peers]) => peers.length === 1)).toBe(true)
    expect(h.reputation.record('off').disagreed).toBe(lost.length)
    expect(h.reputation.record('A').disagreed).toBe(0)
    expect(h.reputation.record('C').disagreed).toBe(0)
    expect(h.s.progress.disagreements).toBe(lost.length)
    // Two agreeing results per task, plus off's: those that lost a vote, and those discarded
    // unvoted once its first loss excluded it.
    expect(h.s.progress.replicasRun).toBeGreaterThanOrEqual(20 + lost.length)
    expect(h.s.progress.replicasRun).toBeLessThanOrEqual(20 + h.ran.get('off')!)
    expect(h.twoReplicasOnOneWorker).toBe(false)
  })

  it('gives a worker caught lying no more of the job once its score falls below excludeBelow', () => {
    const run = (excludeBelow: number) => {
      const h = harness({ taskCount: 200, replicas: 2, compare: relativeComparator(1e-4), excludeBelow }, [
        { peerId: 'A', run: a => ({ ms: 100, outputs: out(a.taskIndex) }) },
        { peerId: 'B', run: a => ({ ms: 100, outputs: out(a.taskIndex) }) },
        { peerId: 'liar', run: a => ({ ms: 100, outputs: out(a.taskIndex + 1) }) }
      ])
      h.runUntilFinished()
      expect(h.decisions).toHaveLength(200)
      for (const d of h.decisions) expect(d.agreedBy).not.toContain('liar')
      expect(h.reputation.record('A').disagreed + h.reputation.record('B').disagreed).toBe(0)
      return h
    }
    const excluding = run(0.3)
    const tolerating = run(0)
    expect(excluding.s.excludedWorkers).toEqual(['liar'])
    expect(tolerating.s.excludedWorkers).toEqual([])
    // Caught on its first votes, it ran only what it had started by then; tolerated, it keeps costing replicas.
    expect(excluding.ran.get('liar')).toBeLessThan(10)
    expect(tolerating.ran.get('liar')).toBeGreaterThan(50)
    expect(excluding.s.progress.replicasRun).toBeLessThan(tolerating.s.progress.replicasRun)
  })

  it('keeps an honest peer that lost one vote after a long clean record', () => {
    const reputation = new Reputation()
    for (let i = 0; i < 50; i++) reputation.agree('veteran', i)
    reputation.disagree('veteran', 51)
    const h = harness({ taskCount: 50, replicas: 1, reputation }, [{ peerId: 'veteran' }])
    h.runUntilFinished()
    expect(h.s.excludedWorkers).toEqual([])
    expect(h.ran.get('veteran')).toBe(50)
  })

  it('needs three agreeing results with replicas 3, outvoting a liar in up to five', () => {
    const h = harness({ taskCount: 30, replicas: 3 }, [
      { peerId: 'liar', msPerTask: 1, run: a => ({ ms: 100, outputs: out(-1 - a.taskIndex) }) },
      { peerId: 'h1' }, { peerId: 'h2' }, { peerId: 'h3' }
    ])
    h.runUntilFinished()
    expect(h.decisions).toHaveLength(30)
    for (const d of h.decisions) {
      expect(d.agreedBy.sort()).toEqual(['h1', 'h2', 'h3'])
      expect(d.outputs).toEqual(out(d.taskIndex))
    }
    expect(h.reputation.record('liar')).toMatchObject({ agreed: 0 })
    expect(h.reputation.record('liar').disagreed).toBeGreaterThan(0)
    expect(h.twoReplicasOnOneWorker).toBe(false)
  })

  it('marks a task failed when no result can reach a majority within r + 2 results', () => {
    const h = harness({ taskCount: 1, replicas: 2 }, ['a', 'b', 'c', 'd', 'e'].map((peerId, i) => ({ peerId, run: () => ({ ms: 100, outputs: out(i) }) })))
    h.runUntilFinished()
    expect(h.s.finished).toBe(true)
    expect(h.s.failedTasks()).toEqual([0])
    expect(h.failures).toEqual([[0, 'no-majority']])
    expect(h.started).toHaveLength(4) // 2 + 2 extra replicas, never a fifth
    expect(h.decisions).toEqual([])
    expect(h.s.progress).toMatchObject({ failed: 1, disagreements: 1, crossChecked: 0 })
    for (const p of ['a', 'b', 'c', 'd']) expect(h.reputation.record(p)).toMatchObject({ agreed: 0, disagreed: 0 })
  })

  it('never gives a worker two replicas of a task, even when that leaves the task waiting', () => {
    const { s } = manual({ taskCount: 2, replicas: 3 })
    s.setWorker({ peerId: 'a', slots: 4, eligible: true })
    s.setWorker({ peerId: 'b', slots: 4, eligible: true })
    const as = s.assign()
    expect(as.map(a => `${a.taskIndex}${a.peerId}`).sort()).toEqual(['0a', '0b', '1a', '1b'])
    for (const a of as) s.succeeded(a, out(a.taskIndex))
    expect(s.assign()).toEqual([])
    expect(s.finished).toBe(false)
    s.setWorker({ peerId: 'c', slots: 4, eligible: true })
    const third = s.assign()
    expect(third.map(a => a.peerId)).toEqual(['c', 'c'])
    for (const a of third) expect(s.succeeded(a, out(a.taskIndex))?.agreedBy).toEqual(['a', 'b', 'c'])
  })

  it('stops opening new tasks when too few distinct workers leave replicas waiting', () => {
    const { s } = manual({ taskCount: 100_000, replicas: 2 })
    s.setWorker({ peerId: 'alone', slots: 8, eligible: true })
    for (let round = 0; round < 500; round++) {
      const as = s.assign()
      if (as.length === 0) break
      for (const a of as) s.succeeded(a, out(a.taskIndex))
    }
    expect(s.progress.done).toBe(0)
    expect(s.tracked).toBeLessThanOrEqual(2 * 1024)
    // A second worker unblocks them: it runs the waiting replicas before any new task.
    s.setWorker({ peerId: 'other', slots: 8, eligible: true })
    const next = s.assign()
    expect(next).toHaveLength(8)
    expect(next.every(a => a.peerId === 'other' && a.taskIndex < 1024)).toBe(true)
    for (const a of next) expect(s.succeeded(a, out(a.taskIndex))?.agreedBy).toEqual(['alone', 'other'])
  })

  it('argmax quorum: classifiers agree on the class even when the scores differ', () => {
    const probs = (hot: number, p: number): WireTensor[] => {
      const v = new Float32Array(3).fill((1 - p) / 2)
      v[hot] = p
      return [fromTypedArray('probs', 'float32', [1, 3], v)]
    }
    const { s } = manual({ taskCount: 1, replicas: 2, compare: argmaxComparator('probs') })
    s.setWorker({ peerId: 'a', slots: 1, eligible: true })
    s.setWorker({ peerId: 'b', slots: 1, eligible: true })
    const [x, y] = s.assign()
    expect(s.succeeded(x, probs(1, 0.9))).toBeUndefined()
    expect(s.succeeded(y, probs(1, 0.6))?.agreedBy).toEqual(['a', 'b'])
  })

  it('treats a malformed result as a lie: no vote, a disagreement, and a new peer is excluded', () => {
    const { s, reputation } = manual({ taskCount: 1 })
    const malformed: string[] = []
    s.onMalformed = (a, reason) => { malformed.push(`${a.peerId}: ${reason}`) }
    s.setWorker({ peerId: 'a', slots: 1, eligible: true })
    s.setWorker({ peerId: 'b', slots: 1, eligible: true })
    const [a] = s.assign().filter(x => x.peerId === 'a')
    s.malformed(a, 'wrong output count')
    expect(malformed).toEqual(['a: wrong output count'])
    expect(reputation.record('a').disagreed).toBe(1)
    expect(s.excludedWorkers).toEqual(['a'])
    expect(s.taskState(0)).toBe('active')
    const [b] = s.assign()
    expect(b.peerId).toBe('b')
    expect(s.succeeded(b, out(0))?.taskIndex).toBe(0)
  })
})

describe('Scheduler: adaptive replication', () => {
  it("mostly trusts a trusted peer's single result, and always checks a new peer's", () => {
    const reputation = new Reputation({ veteran: { agreed: 2000, disagreed: 0, lastSeen: 0 } })
    expect(reputation.spotCheckProbability('veteran')).toBe(0.03)
    const firstPeer = new Map<number, string>()
    const h = harness({ taskCount: 400, replicas: 2, adaptive: true, reputation }, [
      { peerId: 'veteran', slots: 2 },
      { peerId: 'newcomer', slots: 2 }
    ])
    h.runUntilFinished()
    for (const a of h.started) if (!firstPeer.has(a.taskIndex)) firstPeer.set(a.taskIndex, a.peerId)
    expect(h.decisions).toHaveLength(400)
    const veteranFirst = h.decisions.filter(d => firstPeer.get(d.taskIndex) === 'veteran')
    const checkedShare = veteranFirst.filter(d => d.crossChecked).length / veteranFirst.length
    expect(veteranFirst.length).toBeGreaterThan(100)
    expect(checkedShare).toBeLessThan(0.15)
    const newcomerFirst = h.decisions.filter(d => firstPeer.get(d.taskIndex) === 'newcomer')
    const newcomerChecked = newcomerFirst.filter(d => d.crossChecked).length
    // The newcomer's first 20 tasks (at least) were all cross-checked; then it earned trust.
    expect(newcomerChecked).toBeGreaterThanOrEqual(20)
    expect(newcomerFirst.slice(0, 20).every(d => d.crossChecked)).toBe(true)
    expect(reputation.trusted('newcomer')).toBe(true)
    expect(h.s.progress.replicasRun).toBeLessThan(400 * 1.4)
  })

  it('checks every result of a peer that is not trusted (replicas 1: one check each)', () => {
    const { s } = manual({ taskCount: 50, replicas: 1, adaptive: true, reputation: new Reputation({}, { trustStreak: 1_000_000 }) })
    s.setWorker({ peerId: 'a', slots: 5, eligible: true })
    s.setWorker({ peerId: 'b', slots: 5, eligible: true })
    let decided = 0
    while (!s.finished) {
      const as = s.assign()
      expect(as.length).toBeGreaterThan(0)
      for (const a of as) { const d = s.succeeded(a, out(a.taskIndex)); if (d != null) { decided++; expect(d.crossChecked).toBe(true) } }
    }
    expect(decided).toBe(50)
    expect(s.progress.replicasRun).toBe(100)
  })

  it("turns an unchecked task into a checked one when an untrusted peer's copy answers first", () => {
    const reputation = new Reputation({ vet: { agreed: 5000, disagreed: 0, lastSeen: 0 } })
    const { s, clock } = manual({ taskCount: 1, replicas: 1, adaptive: true, reputation, random: () => 0.99 })
    s.setWorker({ peerId: 'vet', slots: 1, eligible: true, msPerTask: 10 })
    const [original] = s.assign()
    s.setWorker({ peerId: 'new', slots: 1, eligible: true, msPerTask: 10 })
    clock.advance(25)
    const [copy] = s.assign()
    expect(copy).toMatchObject({ peerId: 'new', speculative: true })
    expect(s.succeeded(copy, out(0))).toBeUndefined() // the newcomer's word alone is not enough
    expect(s.succeeded(original, out(0))).toMatchObject({ agreedBy: ['new', 'vet'], crossChecked: true })
  })

  it('catches a trusted peer that turns liar, and stops trusting it', () => {
    const reputation = new Reputation({ turncoat: { agreed: 500, disagreed: 0, lastSeen: 0 } })
    const h = harness({ taskCount: 600, replicas: 2, adaptive: true, reputation }, [
      { peerId: 'turncoat', msPerTask: 50, run: a => ({ ms: 50, outputs: out(-a.taskIndex - 1) }) },
      { peerId: 'h1', msPerTask: 100 }, { peerId: 'h2', msPerTask: 100 }
    ])
    h.runUntilFinished()
    expect(reputation.trusted('turncoat')).toBe(false)
    expect(reputation.record('turncoat').disagreed).toBeGreaterThan(0)
    expect(reputation.record('h1').disagreed + reputation.record('h2').disagreed).toBe(0)
    // Lies accepted before it was caught are bounded by the spot-check rate.
    const wrong = h.decisions.filter(d => d.outputs[0].data.join() !== out(d.taskIndex)[0].data.join())
    expect(wrong.length).toBeLessThan(60)
  })
})

describe('Scheduler: scale', () => {
  it('runs 100,000 tasks on 64 workers: each decided exactly once, with bounded objects', () => {
    const N = 100_000
    const clock = new FakeClock()
    const s = new Scheduler({ taskCount: N, replicas: 1, compare: relativeComparator(), reputation: new Reputation(), clock })
    const decided = new Uint8Array(N)
    const result = out(1)
    let maxTracked = 0
    let decisions = 0
    s.onDecision = d => { decided[d.taskIndex]++; decisions++ }
    s.onChange = () => {
      for (const a of s.assign()) clock.setTimeout(() => { s.succeeded(a, result) }, 10 + (a.id % 7))
      if (s.tracked > maxTracked) maxTracked = s.tracked
    }
    for (let i = 0; i < 64; i++) s.setWorker({ peerId: `w${i}`, slots: 1, eligible: true })
    while (!s.finished) clock.advance(10)
    expect(decisions).toBe(N)
    expect(decided.every(x => x === 1)).toBe(true)
    expect(s.progress).toMatchObject({ total: N, done: N, inFlight: 0, pending: 0, failed: 0 })
    expect(maxTracked).toBeLessThanOrEqual(3 * 64)
    // Ideal: 100,000 × 13 ms mean / 64 ≈ 20.3 s of simulated time.
    expect(clock.now()).toBeLessThan(22_000)
  })

  it('simulate(): ≥ 95 % efficiency at 64 workers, with jitter, slow and stuck workers', () => {
    expect(simulate({ workers: 64, taskMs: 100, tasks: 10_000 }).efficiency).toBeGreaterThanOrEqual(0.95)
    expect(simulate({ workers: 64, taskMs: 100, tasks: 10_000, jitter: 0.3 }).efficiency).toBeGreaterThanOrEqual(0.95)
    const stuck = simulate({ workers: 64, taskMs: 100, tasks: 10_000, stuckWorkers: 1, taskTimeoutMs: 5000 })
    expect(stuck.decided).toBe(10_000)
    expect(stuck.efficiency).toBeGreaterThanOrEqual(0.95)
    // 4 workers 10× slower: their last tasks would end up to 1 s after everyone else's.
    const slow = simulate({ workers: 64, taskMs: 100, tasks: 10_000, slowWorkers: 4, slowFactor: 10 })
    const noCopies = simulate({ workers: 64, taskMs: 100, tasks: 10_000, slowWorkers: 4, slowFactor: 10, speculate: false })
    expect(slow.speculative).toBeGreaterThan(0)
    expect(slow.makespanMs).toBeLessThan(noCopies.makespanMs)
    expect(slow.maxTracked).toBeLessThanOrEqual(3 * 64)
  })

  it('liarSimulation(): replication catches every lie; adaptive replication costs far less', () => {
    const full = liarSimulation({ workers: 20, liarFraction: 0.1, tasks: 3000, adaptive: false })
    const adaptive = liarSimulation({ workers: 20, liarFraction: 0.1, tasks: 3000, adaptive: true })
    for (const r of [full, adaptive]) {
      expect(r.liars).toBe(2)
      expect(r.caughtFraction).toBe(1)
      expect(r.honestFlagged).toBe(0)
      expect(r.wrongDecisions).toBe(0)
      expect(r.decided).toBe(3000)
    }
    expect(full.extraComputeFraction).toBeGreaterThan(1)
    expect(adaptive.extraComputeFraction).toBeLessThan(0.6)
    // Colluding liars can outvote an honest peer only when two of them meet on a task.
    const collude = liarSimulation({ workers: 10, liarFraction: 0.3, tasks: 1000, adaptive: false, collude: true })
    expect(collude.caughtFraction).toBeLessThan(1)
  })
})

import { describe, expect, it } from 'vitest'
import { Scheduler } from '../../src/core/scheduler.js'
import { Reputation } from '../../src/core/reputation.js'
import { relativeComparator } from '../../src/core/compare.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import { seededRandom } from '../../src/core/random.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { collusionSimulation } from '../../scripts/sim-scheduler.js'
import type { Assignment, Decision, SchedulerOptions } from '../../src/core/scheduler.js'
import type { WireTensor } from '../../src/core/tensor.js'

function out (value: number): WireTensor[] {
  return [fromTypedArray('y', 'float32', [1], new Float32Array([value]))]
}

function manual (options: Partial<SchedulerOptions> & { taskCount: number }) {
  const clock = new FakeClock()
  const reputation = options.reputation ?? new Reputation()
  const s = new Scheduler({ replicas: 1, compare: relativeComparator(), clock, reputation, random: seededRandom(1), ...options })
  const decisions: Decision[] = []
  const revoked: number[][] = []
  const excluded: string[] = []
  s.onDecision = d => { decisions.push(d) }
  s.onRevoke = (tasks) => { revoked.push(tasks) }
  s.onExclude = (peer, reason) => { excluded.push(`${peer} ${reason}`) }
  return { clock, s, reputation, decisions, revoked, excluded }
}

const of = (as: Assignment[], peer: string): Assignment[] => as.filter(a => a.peerId === peer)

describe('Scheduler: independent witnesses (diversity groups)', () => {
  it('never gives two replicas of a task to workers sharing a group', () => {
    const { s } = manual({ taskCount: 4, replicas: 2 })
    s.setWorker({ peerId: 'liar1', slots: 4, eligible: true, groups: ['host:203.0.113.7'] })
    s.setWorker({ peerId: 'liar2', slots: 4, eligible: true, groups: ['host:203.0.113.7'] })
    s.setWorker({ peerId: 'honest', slots: 4, eligible: true, groups: ['host:198.51.100.2'] })
    const as = s.assign()
    for (let t = 0; t < 4; t++) {
      const holders = as.filter(a => a.taskIndex === t).map(a => a.peerId)
      expect(holders.filter(p => p.startsWith('liar')).length).toBeLessThanOrEqual(1)
    }
  })

  it('counts agreeing results from one group as one vote (groups learned after dispatch)', () => {
    const { s, decisions } = manual({ taskCount: 1, replicas: 2 })
    s.setWorker({ peerId: 'a', slots: 1, eligible: true })
    s.setWorker({ peerId: 'b', slots: 1, eligible: true })
    s.setWorker({ peerId: 'c', slots: 1, eligible: true, groups: ['net:198.51.100.0/24'] })
    const [x, y] = s.assign()
    expect([x.peerId, y.peerId]).toEqual(['a', 'b'])
    // Only now does the requester learn that a and b share a host.
    s.setWorker({ peerId: 'a', slots: 1, eligible: true, groups: ['host:203.0.113.7'] })
    s.setWorker({ peerId: 'b', slots: 1, eligible: true, groups: ['host:203.0.113.7'] })
    s.succeeded(x, out(666))
    expect(s.succeeded(y, out(666))).toBeUndefined()
    expect(decisions).toHaveLength(0)
    const [z] = s.assign()
    expect(z.peerId).toBe('c')
    // c disagrees with the pair; the pair is one vote, so nothing reaches 2.
    s.succeeded(z, out(7))
    expect(decisions).toHaveLength(0)
  })
})

describe('Scheduler: malformed results', () => {
  it('count against a task only from the third one on (the task itself is then suspect)', () => {
    const { s } = manual({ taskCount: 1, maxAttempts: 1 })
    for (const liar of ['x1', 'x2', 'x3']) {
      s.setWorker({ peerId: liar, slots: 1, eligible: true })
      const [a] = s.assign()
      s.malformed(a, 'wrong shape')
    }
    expect(s.taskState(0)).toBe('failed')
  })

  it('do not use up the task\'s attempts: fresh identities cannot make an honest task fail', () => {
    const { s, decisions } = manual({ taskCount: 1, maxAttempts: 2 })
    for (const liar of ['x1', 'x2', 'x3']) {
      s.setWorker({ peerId: liar, slots: 1, eligible: true })
      const [a] = s.assign()
      expect(a.peerId).toBe(liar)
      s.malformed(a, 'wrong shape')
    }
    expect(s.taskState(0)).toBe('active')
    s.setWorker({ peerId: 'honest', slots: 1, eligible: true })
    const [h] = s.assign()
    s.succeeded(h, out(0))
    expect(decisions).toHaveLength(1)
  })
})

describe('Scheduler: unplaced workers', () => {
  it('counts an unplaced worker\'s vote as related to everyone\'s until it is placed, then reconsiders', () => {
    const { s, decisions } = manual({ taskCount: 1, replicas: 2 })
    s.setWorker({ peerId: 'a', slots: 1, eligible: true, placed: false })
    s.setWorker({ peerId: 'b', slots: 1, eligible: true, placed: false })
    const first = s.assign()
    expect(first.map(a => a.peerId).sort()).toEqual(['a', 'b'])
    for (const a of first) s.succeeded(a, out(666))
    expect(decisions).toHaveLength(0)
    // Placed on one host: still one witness.
    s.setWorker({ peerId: 'a', slots: 1, eligible: true, groups: ['host:203.0.113.1'] })
    s.setWorker({ peerId: 'b', slots: 1, eligible: true, groups: ['host:203.0.113.1'] })
    expect(decisions).toHaveLength(0)
    // A third worker on another host agrees: now two independent witnesses.
    s.setWorker({ peerId: 'c', slots: 1, eligible: true, groups: ['host:198.51.100.1'] })
    const [c] = s.assign()
    expect(c.peerId).toBe('c')
    s.succeeded(c, out(666))
    expect(decisions.map(d => d.agreedBy.sort())).toEqual([['a', 'b', 'c']])
  })

  it('decides at placement when the pair turns out to be on different hosts', () => {
    const { s, decisions } = manual({ taskCount: 1, replicas: 2 })
    s.setWorker({ peerId: 'a', slots: 1, eligible: true, placed: false })
    s.setWorker({ peerId: 'b', slots: 1, eligible: true, placed: false })
    for (const a of s.assign()) s.succeeded(a, out(0))
    s.setWorker({ peerId: 'a', slots: 1, eligible: true, groups: ['host:203.0.113.1'] })
    expect(decisions).toHaveLength(0)
    s.setWorker({ peerId: 'b', slots: 1, eligible: true, groups: ['host:198.51.100.1'] })
    expect(decisions).toHaveLength(1)
  })

  it('drops the votes of a worker that leaves before it is placed (it cannot hold tasks hostage)', () => {
    const { s, decisions } = manual({ taskCount: 1, replicas: 2 })
    s.setWorker({ peerId: 'hit-and-run', slots: 1, eligible: true, placed: false })
    const [x] = s.assign()
    s.succeeded(x, out(666))
    s.removeWorker('hit-and-run')
    s.setWorker({ peerId: 'h1', slots: 1, eligible: true })
    s.setWorker({ peerId: 'h2', slots: 1, eligible: true })
    for (const a of s.assign()) s.succeeded(a, out(0))
    expect(decisions.map(d => d.agreedBy.sort())).toEqual([['h1', 'h2']])
  })

  it('is stuck when free workers may take nothing, and waiting (not stuck) with no worker', () => {
    const { s } = manual({ taskCount: 1, replicas: 2 })
    expect(s.stuck).toBe(false)
    s.setWorker({ peerId: 'only', slots: 1, eligible: true })
    const [a] = s.assign()
    expect(s.stuck).toBe(false)
    s.succeeded(a, out(0))
    expect(s.assign()).toEqual([])
    expect(s.stuck).toBe(true)
  })

  it('is stuck when every worker present is excluded', () => {
    const { s } = manual({ taskCount: 2, replicas: 1 })
    s.setWorker({ peerId: 'bad', slots: 1, eligible: true })
    const [a] = s.assign()
    s.malformed(a, 'wrong shape')
    expect(s.excludedWorkers).toEqual(['bad'])
    expect(s.assign()).toEqual([])
    expect(s.stuck).toBe(true)
  })
})

describe('Scheduler: conviction by the requester', () => {
  it('discards every vote of a convicted worker, re-opens the tasks it decided, and excludes it', () => {
    const { s, decisions, revoked, excluded, reputation } = manual({ taskCount: 3, replicas: 2 })
    s.setWorker({ peerId: 'liar1', slots: 3, eligible: true })
    s.setWorker({ peerId: 'liar2', slots: 3, eligible: true })
    const as = s.assign()
    for (const a of as) s.succeeded(a, out(666))
    expect(decisions.map(d => d.taskIndex).sort()).toEqual([0, 1, 2])
    expect(s.progress.done).toBe(3)

    expect(s.convict('liar1').sort()).toEqual([0, 1, 2])
    expect(revoked).toEqual([[0, 1, 2]])
    expect(excluded).toContain('liar1 convicted')
    expect(s.progress.done).toBe(0)
    expect(s.finished).toBe(false)
    expect(reputation.score('liar1')).toBeLessThan(0.05)
    // liar2 alone cannot make a quorum of 2; an honest worker arrives.
    s.setWorker({ peerId: 'honest', slots: 3, eligible: true })
    const next = s.assign()
    expect(of(next, 'liar1')).toHaveLength(0)
    expect(of(next, 'honest').map(a => a.taskIndex).sort()).toEqual([0, 1, 2])
    for (const a of next) s.succeeded(a, out(a.peerId === 'honest' ? a.taskIndex : 666))
    // honest vs liar2 disagree on every task: no quorum yet, nothing wrong accepted.
    expect(decisions.slice(3)).toHaveLength(0)
  })

  it('gives workers excluded for losing votes another chance once a voter is convicted', () => {
    const { s } = manual({ taskCount: 1, replicas: 2 })
    s.setWorker({ peerId: 'liar1', slots: 1, eligible: true })
    s.setWorker({ peerId: 'honest', slots: 1, eligible: true })
    // The pair outvotes the honest worker, which is excluded (a new peer's first lost vote).
    for (const a of s.assign()) s.succeeded(a, out(a.peerId === 'honest' ? 0 : 666))
    s.setWorker({ peerId: 'liar2', slots: 1, eligible: true })
    for (const a of s.assign()) s.succeeded(a, out(666))
    expect(s.taskState(0)).toBe('done')
    expect(s.excludedWorkers).toContain('honest')
    s.convict('liar1')
    expect(s.excludedWorkers).toEqual(['liar1'])
  })

  it("drops a convicted worker's results from undecided tasks and its assignments in flight", () => {
    const { s, decisions } = manual({ taskCount: 2, replicas: 2 })
    const cancelled: Assignment[] = []
    s.onCancel = a => { cancelled.push(a) }
    s.setWorker({ peerId: 'liar', slots: 2, eligible: true })
    s.setWorker({ peerId: 'h1', slots: 1, eligible: true })
    const as = s.assign()
    const liar0 = as.find(a => a.peerId === 'liar' && a.taskIndex === 0)!
    s.succeeded(liar0, out(666))
    s.convict('liar')
    expect(cancelled.map(a => a.peerId)).toEqual(['liar'])
    s.setWorker({ peerId: 'h2', slots: 2, eligible: true })
    const more = s.assign()
    expect(of(more, 'liar')).toHaveLength(0)
    for (const a of [...as.filter(a => a.peerId !== 'liar'), ...more]) s.succeeded(a, out(a.taskIndex))
    const rest = s.assign()
    for (const a of rest) s.succeeded(a, out(a.taskIndex))
    expect(decisions.every(d => !d.agreedBy.includes('liar'))).toBe(true)
  })

  it('re-opens restored tasks given with their voters', () => {
    const { s } = manual({ taskCount: 2, replicas: 1, done: [{ index: 0, agreedBy: ['liar'] }, { index: 1, agreedBy: ['honest'] }] })
    expect(s.finished).toBe(true)
    expect(s.convict('liar')).toEqual([0])
    expect(s.taskState(0)).toBe('active')
    expect(s.taskState(1)).toBe('done')
  })

  it("settle() decides a task with the requester's own outputs", () => {
    const { s, decisions } = manual({ taskCount: 2, replicas: 2 })
    s.setWorker({ peerId: 'a', slots: 1, eligible: true })
    const [a] = s.assign()
    const d = s.settle(a.taskIndex, out(5))
    expect(d).toMatchObject({ taskIndex: a.taskIndex, agreedBy: [], byRequester: true })
    expect(s.taskState(a.taskIndex)).toBe('done')
    expect(s.settle(a.taskIndex, out(5))).toBeUndefined()
    expect(decisions).toHaveLength(1)
    // Its late result is dropped.
    expect(s.succeeded(a, out(5))).toBeUndefined()
  })
})

describe('Scheduler: speed is measured, never taken from the worker', () => {
  it('prefers the worker this job measured faster, whatever order they arrived in', () => {
    const { s, clock } = manual({ taskCount: 100, replicas: 1 })
    s.setWorker({ peerId: 'slow', slots: 1, eligible: true })
    s.setWorker({ peerId: 'fast', slots: 1, eligible: true })
    const [x, y] = s.assign()
    clock.advance(10)
    s.succeeded(y, out(y.taskIndex)) // fast answers in 10 ms
    clock.advance(90)
    s.succeeded(x, out(x.taskIndex)) // slow in 100 ms
    // Both free: with one task left over per round, the fast one is served first.
    const next = s.assign()
    expect(next[0].peerId).toBe('fast')
  })
})

describe('Scheduler: abandon()', () => {
  it('fails every undecided task as unverifiable, leaving decided ones alone', () => {
    const { s } = manual({ taskCount: 4, replicas: 2 })
    const failed: string[] = []
    s.onFailed = (t, reason) => { failed.push(`${t} ${reason}`) }
    s.setWorker({ peerId: 'a', slots: 2, eligible: true })
    s.setWorker({ peerId: 'b', slots: 1, eligible: true })
    const as = s.assign()
    const t = as.find(a => as.filter(x => x.taskIndex === a.taskIndex).length === 2)!.taskIndex
    for (const a of as.filter(a => a.taskIndex === t)) s.succeeded(a, out(t))
    expect(s.taskState(t)).toBe('done')
    expect(s.abandon()).toBe(3)
    expect(s.finished).toBe(true)
    expect(failed).toEqual([0, 1, 2, 3].filter(i => i !== t).map(i => `${i} unverifiable`))
    expect(s.progress).toMatchObject({ done: 1, failed: 3, pending: 0, inFlight: 0 })
  })
})

describe('Scheduler: exclusion discards votes', () => {
  it("re-opens what a worker decided before it was excluded for losing votes", () => {
    const { s, revoked, decisions } = manual({ taskCount: 2, replicas: 2 })
    s.setWorker({ peerId: 'liar1', slots: 1, eligible: true })
    s.setWorker({ peerId: 'liar2', slots: 1, eligible: true })
    // The pair decides task 0 wrongly before anyone else is there.
    for (const a of s.assign()) s.succeeded(a, out(666))
    expect(decisions.map(d => d.taskIndex)).toEqual([0])
    // liar2 goes quiet; two honest workers arrive; on task 1 the honest pair outvotes liar1, which is excluded.
    s.setWorker({ peerId: 'liar2', slots: 1, eligible: false })
    s.setWorker({ peerId: 'h1', slots: 1, eligible: true })
    s.setWorker({ peerId: 'h2', slots: 1, eligible: true })
    for (const a of s.assign()) s.succeeded(a, out(a.peerId.startsWith('liar') ? 666 : a.taskIndex))
    for (const a of s.assign()) s.succeeded(a, out(a.peerId.startsWith('liar') ? 666 : a.taskIndex))
    expect(s.excludedWorkers).toContain('liar1')
    // …and the wrong decision it took part in is re-opened.
    expect(revoked.flat()).toContain(0)
  })
})

describe('collusionSimulation (the table in docs/BENCHMARKS.md)', () => {
  it('spot checks catch colluders that replication alone lets through', () => {
    const base = { workers: 20, colluderFraction: 0.5, lieProbability: 1, tasks: 1000 }
    const without = collusionSimulation({ ...base, replicas: 2, spotCheck: 0 })
    const withChecks = collusionSimulation({ ...base, replicas: 2, spotCheck: 0.05 })
    expect(without.wrongAccepted).toBeGreaterThan(0.3)
    expect(withChecks.wrongAccepted).toBe(0)
    expect(withChecks.convicted).toBeGreaterThan(0)
    const single = collusionSimulation({ ...base, replicas: 1, spotCheck: 0.05 })
    expect(single.wrongAccepted).toBe(0)
    expect(single.convicted).toBe(single.colluders)
  })
})

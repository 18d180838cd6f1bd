import { describe, expect, it } from 'vitest'
import { ContributionLedger, ledgerKey, MAX_REQUESTERS, OTHERS, parseLedger } from '../../src/browser/contribution-ledger.js'
import type { WorkEvent } from '../../src/core/work-queue.js'

type FakeStorage = Map<string, string> & { getItem: (k: string) => string | null, setItem: (k: string, v: string) => void, key: (i: number) => string | null, readonly length: number }

/** localStorage as one browser's tabs share it. */
function storage (): FakeStorage {
  const m = new Map<string, string>() as FakeStorage
  m.getItem = (k) => m.get(k) ?? null
  m.setItem = (k, v) => { m.set(k, v) }
  m.key = (i) => [...m.keys()][i] ?? null
  Object.defineProperty(m, 'length', { get: () => m.size })
  return m
}

function done (requester: string, inferenceMs: number): WorkEvent {
  return {
    taskId: `t-${Math.random()}`,
    jobId: 'j',
    requester,
    model: 'digits',
    sha256: 'a'.repeat(64),
    state: 'done',
    result: { outputs: [], backend: 'wasm', threads: 1, timings: { queueMs: 0, loadMs: 0, inferenceMs, totalMs: inferenceMs } }
  } as unknown as WorkEvent
}

describe('ContributionLedger', () => {
  it('adds up tasks and inference time per requester and keeps them across a restart', () => {
    const s = storage()
    let t = 1000
    const a = new ContributionLedger(s, () => t)
    a.bindSlot(0)
    a.record(done('peerA', 4))
    a.record(done('peerA', 6))
    a.record(done('peerB', 2.5))
    a.record({ ...done('peerB', 100), state: 'failed' } as WorkEvent)
    a.save()
    t = 5000
    const b = new ContributionLedger(s, () => t)
    const v = b.value
    expect(v.since).toBe(1000)
    expect(v.tasks).toBe(3)
    expect(v.inferenceMs).toBe(12.5)
    expect(v.byRequester.peerA).toEqual({ tasks: 2, inferenceMs: 10, lastAt: 1000 })
    expect(v.byRequester.peerB.tasks).toBe(1)
  })

  it('keeps at most MAX_REQUESTERS requesters, folding the least recent into one line', () => {
    let t = 0
    const l = new ContributionLedger(storage(), () => ++t)
    for (let i = 0; i <= MAX_REQUESTERS; i++) l.record(done(`p${i}`, 1))
    const v = l.value
    expect(Object.keys(v.byRequester).filter(p => p !== OTHERS)).toHaveLength(MAX_REQUESTERS)
    expect(v.byRequester.p0).toBeUndefined()
    expect(v.byRequester[OTHERS].tasks).toBe(1)
    expect(v.tasks).toBe(MAX_REQUESTERS + 1)
  })

  it('starts afresh from damaged storage, and a peer id like __proto__ stays plain data', () => {
    const s = storage()
    s.setItem(ledgerKey(0), '{"since": "yesterday"}')
    expect(parseLedger(s.getItem(ledgerKey(0)))).toBeUndefined()
    const l = new ContributionLedger(s, () => 7)
    expect(l.value.tasks).toBe(0)
    l.bindSlot(0)
    l.record(done('__proto__', 3))
    l.save()
    const back = parseLedger(s.getItem(ledgerKey(0)))!
    expect(Object.getPrototypeOf(back.byRequester)).toBe(Object.prototype)
    expect(Object.hasOwn(back.byRequester, '__proto__')).toBe(true)
    expect(parseLedger('not json')).toBeUndefined()
  })

  it('adds up the work of every tab of one browser: each tab saves its own share, none overwrites another', () => {
    const s = storage()
    const a = new ContributionLedger(s, () => 1000)
    const b = new ContributionLedger(s, () => 2000)
    a.bindSlot(0)
    b.bindSlot(1)
    a.record(done('peerA', 4))
    b.record(done('peerA', 6))
    b.record(done('peerB', 1))
    a.save()
    b.save()
    a.record(done('peerA', 2))
    a.record({ ...done('peerB', 50), state: 'failed' } as WorkEvent)
    a.save()
    // Each tab shows the browser's figures, the other tab's saved work included.
    expect(b.value).toMatchObject({ tasks: 4, failed: 1, inferenceMs: 13, since: 1000 })
    const reloaded = new ContributionLedger(s, () => 3000)
    expect(reloaded.value).toMatchObject({ tasks: 4, failed: 1, inferenceMs: 13, since: 1000 })
    expect(reloaded.value.byRequester.peerA).toEqual({ tasks: 3, inferenceMs: 12, lastAt: 2000 })
    expect(reloaded.value.byRequester.peerB).toEqual({ tasks: 1, inferenceMs: 1, lastAt: 2000 })
  })

  it('adds to what is stored even when two tabs write the same slot (no Web Locks: every tab is slot 0)', () => {
    const s = storage()
    const a = new ContributionLedger(s, () => 1000)
    const b = new ContributionLedger(s, () => 1000)
    a.bindSlot(0)
    b.bindSlot(0)
    a.record(done('peerA', 1))
    b.record(done('peerA', 1))
    a.save()
    b.save()
    expect(new ContributionLedger(s).value.byRequester.peerA.tasks).toBe(2)
  })

  it('counts work done before the tab knows its slot, saving it once the slot is bound', () => {
    const s = storage()
    const a = new ContributionLedger(s, () => 1000)
    a.record(done('peerA', 1))
    a.save()
    expect(s.size).toBe(0)
    expect(a.value.tasks).toBe(1)
    a.bindSlot(2)
    a.save()
    expect(parseLedger(s.getItem(ledgerKey(2)))?.tasks).toBe(1)
  })

  it('is the one count of tasks since install: done and failed, past any log cap, the own jobs apart by requester', () => {
    const l = new ContributionLedger(storage(), () => 1000)
    for (let i = 0; i < 600; i++) l.record(done(i % 2 === 0 ? 'self' : 'peerA', 2))
    l.record({ ...done('peerA', 9), state: 'failed' } as WorkEvent)
    l.record({ ...done('peerA', 9), state: 'running' } as WorkEvent)
    const v = l.value
    expect(v).toMatchObject({ tasks: 600, failed: 1, inferenceMs: 1200 })
    expect(v.byRequester.self.tasks + v.byRequester.peerA.tasks).toBe(v.tasks)
  })
})

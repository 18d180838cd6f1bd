import { describe, expect, it } from 'vitest'
import { ContributionLedger, LEDGER_KEY, MAX_REQUESTERS, OTHERS, parseLedger } from '../../src/browser/contribution-ledger.js'
import type { WorkEvent } from '../../src/core/work-queue.js'

function storage (): Map<string, string> & { getItem: (k: string) => string | null, setItem: (k: string, v: string) => void } {
  const m = new Map<string, string>() as Map<string, string> & { getItem: (k: string) => string | null, setItem: (k: string, v: string) => void }
  m.getItem = (k) => m.get(k) ?? null
  m.setItem = (k, v) => { m.set(k, v) }
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
    s.setItem(LEDGER_KEY, '{"since": "yesterday"}')
    expect(parseLedger(s.getItem(LEDGER_KEY))).toBeUndefined()
    const l = new ContributionLedger(s, () => 7)
    expect(l.value.tasks).toBe(0)
    l.record(done('__proto__', 3))
    l.save()
    const back = parseLedger(s.getItem(LEDGER_KEY))!
    expect(Object.getPrototypeOf(back.byRequester)).toBe(Object.prototype)
    expect(Object.hasOwn(back.byRequester, '__proto__')).toBe(true)
    expect(parseLedger('not json')).toBeUndefined()
  })
})

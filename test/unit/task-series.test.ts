import { describe, expect, it } from 'vitest'
import { TaskSeries } from '../../src/core/stats/task-series.js'
import { CounterDeltas } from '../../src/core/stats/counter-deltas.js'
import { parseMetrics } from '../../src/core/stats/metrics-text.js'
import { BINS, binOf, binValue, quantile } from '../../src/core/stats/histogram.js'
import { FakeClock } from '../helpers/fake-clock.js'

describe('latency histogram', () => {
  it('reads quantiles within ±10 % of the true value', () => {
    const bins = new Float64Array(BINS)
    const values = Array.from({ length: 1000 }, (_, i) => 1 + i) // 1 … 1000 ms
    for (const v of values) bins[binOf(v)]++
    expect(quantile(bins, 0.5)! / 500).toBeGreaterThan(0.9)
    expect(quantile(bins, 0.5)! / 500).toBeLessThan(1.1)
    expect(quantile(bins, 0.95)! / 950).toBeGreaterThan(0.9)
    expect(quantile(bins, 0.95)! / 950).toBeLessThan(1.1)
  })

  it('has no quantile without samples, and clamps absurd latencies into its end bins', () => {
    expect(quantile(new Float64Array(BINS), 0.5)).toBeUndefined()
    expect(binOf(-5)).toBe(0)
    expect(binOf(Number.NaN)).toBe(0)
    expect(binOf(1e12)).toBe(BINS - 1)
    expect(binValue(binOf(10)) / 10).toBeCloseTo(1, 0)
  })
})

describe('TaskSeries', () => {
  it('reports the rate, p50/p95 and success rate of the last completed buckets', () => {
    const clock = new FakeClock(100_000)
    const s = new TaskSeries({ clock, bucketMs: 1000, buckets: 60, windowMs: 2000 })
    // Two seconds of 10 tasks each: 9 ok at 20 ms, 1 failed at 200 ms.
    for (let sec = 0; sec < 2; sec++) {
      for (let i = 0; i < 9; i++) s.record(true, 20)
      s.record(false, 200)
      clock.advance(1000)
    }
    const p = s.last()
    expect(p.t).toBe(102)
    expect(p.tasksPerSec).toBe(10)
    expect(p.successRate).toBeCloseTo(0.9)
    expect(p.p50! / 20).toBeGreaterThan(0.9)
    expect(p.p50! / 20).toBeLessThan(1.1)
    expect(p.p95! / 200).toBeGreaterThan(0.9)
    expect(p.p95! / 200).toBeLessThan(1.1)
    const c = s.columns()
    expect(c.t).toHaveLength(59)
    expect(c.t.at(-1)).toBe(102)
    expect(c.tasksPerSec.at(-1)).toBe(10)
    // Before anything finished: zero rate, no latency, no success rate (null, not 0 %).
    expect(c.tasksPerSec[0]).toBe(0)
    expect(c.p50[0]).toBeNull()
    expect(c.successRate[0]).toBeNull()
  })

  it('forgets what fell out of the window, also when the slot is reused after a long silence', () => {
    const clock = new FakeClock(0)
    const s = new TaskSeries({ clock, bucketMs: 1000, buckets: 10, windowMs: 1000 })
    s.record(true, 5)
    clock.advance(1000)
    expect(s.last().tasksPerSec).toBe(1)
    clock.advance(10_000) // the same slot again, ten buckets later
    s.record(false)
    clock.advance(1000)
    expect(s.last().tasksPerSec).toBe(1)
    expect(s.last().successRate).toBe(0)
    expect(s.last().p50).toBeUndefined()
    expect(s.columns().tasksPerSec.reduce((a, b) => a + b, 0)).toBe(1)
  })

  it('spreads counts known only over a span evenly across its buckets', () => {
    const clock = new FakeClock(50_000)
    const s = new TaskSeries({ clock, bucketMs: 1000, buckets: 60, windowMs: 1000 })
    clock.advance(10_000)
    // 100 tasks over the last 10 s, as two adverts 10 s apart would say.
    s.addCounts(95, 5, 50_000, 60_000)
    clock.advance(1000)
    const c = s.columns()
    const rates = c.tasksPerSec.slice(-11)
    expect(rates.slice(0, 10).every(r => Math.abs(r - 10) < 1e-9)).toBe(true)
    expect(rates[10]).toBe(0)
    expect(c.successRate.at(-2)).toBeCloseTo(0.95)
    // A span reaching back before the buffer keeps only its in-window share.
    s.addCounts(1000, 0, -1_000_000, 61_000)
    expect(s.columns().tasksPerSec.reduce((a, b) => a + b, 0)).toBeLessThan(100 + 1000)
  })

  it('ignores negative, empty or non-finite counts', () => {
    const clock = new FakeClock(0)
    const s = new TaskSeries({ clock, buckets: 10, windowMs: 1000 })
    s.addCounts(-5, 0, 0, 0)
    s.addCounts(Number.NaN, 0, 0, 0)
    s.addCounts(Number.POSITIVE_INFINITY, 0, 0, 0)
    s.addCounts(0, 0, 0, 0)
    s.record(true, Number.POSITIVE_INFINITY)
    clock.advance(1000)
    expect(s.last().tasksPerSec).toBe(1)
    expect(s.last().p50).toBeUndefined()
  })
})

describe('CounterDeltas', () => {
  it('takes a first advert as a baseline, then reports what grew and over which span', () => {
    const d = new CounterDeltas()
    expect(d.update('a', 100, 2, 1000)).toBeUndefined()
    expect(d.update('a', 100, 2, 2000)).toBeUndefined()
    expect(d.update('a', 130, 3, 32_000)).toEqual({ ok: 30, failed: 1, fromMs: 2000, toMs: 32_000 })
  })

  it('treats totals that went down as a restart (new baseline), never a negative rate', () => {
    const d = new CounterDeltas()
    d.update('a', 500, 0, 0)
    expect(d.update('a', 3, 0, 1000)).toBeUndefined()
    expect(d.update('a', 10, 0, 2000)).toEqual({ ok: 7, failed: 0, fromMs: 1000, toMs: 2000 })
    d.forget('a')
    expect(d.update('a', 20, 0, 3000)).toBeUndefined()
  })

  it('holds at most maxPeers baselines', () => {
    const d = new CounterDeltas(2)
    d.update('a', 1, 0, 0)
    d.update('b', 1, 0, 0)
    d.update('c', 1, 0, 0)
    expect(d.update('a', 5, 0, 1000)).toBeUndefined() // evicted: a baseline again
    expect(d.update('c', 5, 0, 1000)).toEqual({ ok: 4, failed: 0, fromMs: 0, toMs: 1000 })
  })
})

describe('parseMetrics', () => {
  it('reads the relay\'s p2p_ai_agents_* lines and skips anything else', () => {
    const text = 'p2p_ai_agents_connections 3\np2p_ai_agents_discovery_peers 12\n# HELP x\nother_metric 5\np2p_ai_agents_bad abc\np2p_ai_agents_big 1e3\n'
    expect(parseMetrics(text)).toEqual({ connections: 3, discovery_peers: 12, big: 1000 })
    expect(parseMetrics('')).toEqual({})
  })
})

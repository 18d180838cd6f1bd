/**
 * Finished tasks over the last minutes, as a ring buffer of fixed time buckets: how many ended well,
 * how many failed, and a latency histogram per bucket. Memory is fixed by the window (buckets ×
 * histogram bins), not by the task rate, so a worker doing hundreds of tasks a second costs the same
 * as an idle one. Read as chart columns: per completed bucket, the rate, p50/p95 and success rate
 * over a short trailing window, which smooths one-second noise without hiding a change for long.
 */
import { systemClock } from '../clock.js'
import { BINS, binOf, quantile } from './histogram.js'
import type { Clock } from '../clock.js'

export interface TaskSeriesOptions {
  /** Time source; its `now()` is what the chart's time axis shows (use a wall clock for dates). */
  clock?: Clock
  /** Width of one bucket (default 1000 ms). */
  bucketMs?: number
  /** Buckets kept (default 600: ten minutes of one-second buckets). */
  buckets?: number
  /** Trailing window each point summarises (default 5000 ms). */
  windowMs?: number
}

/** Chart columns: one entry per completed bucket, oldest first; null where nothing finished. */
export interface SeriesColumns {
  /** Bucket end, in seconds of the clock's time. */
  t: number[]
  tasksPerSec: number[]
  p50: Array<number | null>
  p95: Array<number | null>
  /** Fraction of finished tasks that succeeded, 0…1. */
  successRate: Array<number | null>
}

export interface SeriesPoint {
  t: number
  tasksPerSec: number
  p50?: number
  p95?: number
  successRate?: number
}

export class TaskSeries {
  readonly bucketMs: number
  readonly buckets: number
  private readonly clock: Clock
  private readonly windowBuckets: number
  /** Which absolute bucket (floor(time / bucketMs)) each slot holds; a slot holding an older one is stale. */
  private readonly stamp: Float64Array
  private readonly ok: Float64Array
  private readonly failed: Float64Array
  private readonly hist: Uint32Array

  constructor (options: TaskSeriesOptions = {}) {
    this.clock = options.clock ?? systemClock
    this.bucketMs = options.bucketMs ?? 1000
    this.buckets = options.buckets ?? 600
    this.windowBuckets = Math.max(1, Math.round((options.windowMs ?? 5000) / this.bucketMs))
    this.stamp = new Float64Array(this.buckets).fill(-1)
    this.ok = new Float64Array(this.buckets)
    this.failed = new Float64Array(this.buckets)
    this.hist = new Uint32Array(this.buckets * BINS)
  }

  /** One task finished now: `ok` or not, and its latency when one was measured. */
  record (ok: boolean, ms?: number): void {
    const slot = this.slot(this.bucketAt(this.clock.now()))
    if (ok) this.ok[slot]++
    else this.failed[slot]++
    if (ms !== undefined && Number.isFinite(ms) && ms >= 0) this.hist[slot * BINS + binOf(ms)]++
  }

  /**
   * Tasks known only as counts over a span (a peer's advert says it finished 40 more since its last
   * one, 30 s ago): spread evenly over the buckets the span covers, so the chart shows a rate rather
   * than a spike at the moment the news arrived. The part of the span outside the window is dropped.
   */
  addCounts (ok: number, failed: number, fromMs: number, toMs: number): void {
    if (!(Number.isFinite(ok) && Number.isFinite(failed) && ok >= 0 && failed >= 0) || ok + failed === 0) return
    const now = this.clock.now()
    const to = Math.min(toMs, now)
    const from = Math.min(fromMs, to)
    const span = to - from
    if (span <= 0) {
      const slot = this.slot(this.bucketAt(to))
      this.ok[slot] += ok
      this.failed[slot] += failed
      return
    }
    const oldest = (this.bucketAt(now) - this.buckets + 1) * this.bucketMs
    for (let b = this.bucketAt(Math.max(from, oldest)); b * this.bucketMs < to; b++) {
      const share = (Math.min(to, (b + 1) * this.bucketMs) - Math.max(from, b * this.bucketMs)) / span
      if (share <= 0) continue
      const slot = this.slot(b)
      this.ok[slot] += ok * share
      this.failed[slot] += failed * share
    }
  }

  /** Every completed bucket in the window, oldest first, each summarising its trailing window. */
  columns (): SeriesColumns {
    const out: SeriesColumns = { t: [], tasksPerSec: [], p50: [], p95: [], successRate: [] }
    const current = this.bucketAt(this.clock.now())
    const merged = new Float64Array(BINS)
    for (let b = current - this.buckets + 1; b < current; b++) {
      const p = this.point(b, merged)
      out.t.push(p.t)
      out.tasksPerSec.push(p.tasksPerSec)
      out.p50.push(p.p50 ?? null)
      out.p95.push(p.p95 ?? null)
      out.successRate.push(p.successRate ?? null)
    }
    return out
  }

  /** The newest completed bucket's point. */
  last (): SeriesPoint {
    return this.point(this.bucketAt(this.clock.now()) - 1, new Float64Array(BINS))
  }

  private point (b: number, merged: Float64Array): SeriesPoint {
    merged.fill(0)
    let ok = 0
    let failed = 0
    let span = 0
    const current = this.bucketAt(this.clock.now())
    for (let w = b - this.windowBuckets + 1; w <= b; w++) {
      // Buckets older than the buffer are unknown, not zero: the window shrinks instead.
      if (w <= current - this.buckets) continue
      span++
      const slot = this.mod(w)
      if (this.stamp[slot] !== w) continue
      ok += this.ok[slot]
      failed += this.failed[slot]
      for (let i = 0; i < BINS; i++) merged[i] += this.hist[slot * BINS + i]
    }
    const total = ok + failed
    return {
      t: ((b + 1) * this.bucketMs) / 1000,
      tasksPerSec: span === 0 ? 0 : total / (span * this.bucketMs / 1000),
      p50: quantile(merged, 0.5),
      p95: quantile(merged, 0.95),
      successRate: total > 0 ? ok / total : undefined
    }
  }

  private bucketAt (ms: number): number {
    return Math.floor(ms / this.bucketMs)
  }

  private mod (b: number): number {
    return ((b % this.buckets) + this.buckets) % this.buckets
  }

  /** The slot of bucket `b`, cleared first if it still holds an older bucket. */
  private slot (b: number): number {
    const slot = this.mod(b)
    if (this.stamp[slot] !== b) {
      this.stamp[slot] = b
      this.ok[slot] = 0
      this.failed[slot] = 0
      this.hist.fill(0, slot * BINS, (slot + 1) * BINS)
    }
    return slot
  }
}

/**
 * A manual clock for core tests: time only moves when the test calls `advance`.
 * Timers fire in due-time order (ties in scheduling order); a timer scheduled while advancing
 * fires in the same `advance` call if it falls due before the target time.
 */
import type { Clock } from '../../src/core/clock.js'

interface Timer {
  id: number
  at: number
  fn: () => void
}

export class FakeClock implements Clock {
  private time: number
  private nextId = 1
  private readonly timers = new Map<number, Timer>()

  constructor (start = 0) {
    this.time = start
  }

  now (): number {
    return this.time
  }

  setTimeout (fn: () => void, ms: number): unknown {
    const id = this.nextId++
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
    this.timers.set(id, { id, at: this.time + delay, fn })
    return id
  }

  clearTimeout (handle: unknown): void {
    if (typeof handle === 'number') this.timers.delete(handle)
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pendingTimers (): number {
    return this.timers.size
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance (ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot advance a clock by ${ms} ms`)
    const target = this.time + ms
    for (;;) {
      const due = this.nextDue(target)
      if (due == null) break
      this.timers.delete(due.id)
      this.time = due.at
      due.fn()
    }
    this.time = target
  }

  private nextDue (target: number): Timer | undefined {
    let best: Timer | undefined
    for (const t of this.timers.values()) {
      if (t.at > target) continue
      if (best == null || t.at < best.at || (t.at === best.at && t.id < best.id)) best = t
    }
    return best
  }
}

/**
 * When a peer publishes its advert: soon after something material changes, never more often than
 * `minIntervalMs`, and otherwise as a slow heartbeat so receivers' tables do not expire it.
 */
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'

export interface PacerOptions {
  clock?: Clock
  /** Smallest gap between two publications (default 1 s). */
  minIntervalMs?: number
  /** Publication interval when nothing changes (default 30 s). */
  heartbeatMs?: number
  /** Spread of the heartbeat, as a fraction (default 0.1: ±10 %), so peers do not publish in lockstep. */
  jitter?: number
  random?: () => number
}

export const DEFAULT_HEARTBEAT_MS = 30_000
export const DEFAULT_MIN_PUBLISH_INTERVAL_MS = 1000

export class PublishPacer {
  /** Returns false when there was nothing to publish yet: that attempt does not count against the rate. */
  private readonly publish: () => boolean | void
  private readonly clock: Clock
  private readonly minIntervalMs: number
  private readonly heartbeatMs: number
  private readonly jitter: number
  private readonly random: () => number
  private lastAt = Number.NEGATIVE_INFINITY
  private timer?: unknown
  private dueAt = Number.POSITIVE_INFINITY
  private running = false

  constructor (publish: () => boolean | void, options: PacerOptions = {}) {
    this.publish = publish
    this.clock = options.clock ?? systemClock
    this.minIntervalMs = options.minIntervalMs ?? DEFAULT_MIN_PUBLISH_INTERVAL_MS
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS
    this.jitter = options.jitter ?? 0.1
    this.random = options.random ?? Math.random
  }

  /** Starts publishing: once as soon as allowed, then on changes and heartbeats. */
  start (): void {
    this.running = true
    this.changed()
  }

  stop (): void {
    this.running = false
    this.cancel()
  }

  /** Something material changed: publish as soon as the minimum interval allows. */
  changed (): void {
    if (!this.running) return
    this.schedule(Math.max(this.clock.now(), this.lastAt + this.minIntervalMs))
  }

  /** The last publication reached nobody (no peer was listening yet): publish again now, whatever the rate. */
  retry (): void {
    if (!this.running) return
    this.schedule(this.clock.now())
  }

  private schedule (at: number): void {
    if (this.timer != null && this.dueAt <= at) return
    this.cancel()
    this.dueAt = at
    this.timer = this.clock.setTimeout(() => { this.fire() }, at - this.clock.now())
  }

  private fire (): void {
    this.timer = undefined
    this.dueAt = Number.POSITIVE_INFINITY
    if (!this.running) return
    const previous = this.lastAt
    this.lastAt = this.clock.now()
    try {
      if (this.publish() === false) this.lastAt = previous
    } finally {
      const spread = this.heartbeatMs * this.jitter * (2 * this.random() - 1)
      this.schedule(this.lastAt + Math.max(this.minIntervalMs, this.heartbeatMs + spread))
    }
  }

  private cancel (): void {
    if (this.timer != null) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.dueAt = Number.POSITIVE_INFINITY
  }
}

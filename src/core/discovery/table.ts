/**
 * The advert table every peer keeps: the newest advert of each peer it heard of, forgotten when
 * the peer says it is leaving, when it has been silent for `ttlMs`, or when the table is full and
 * it is the longest silent. Bounded in entries; each entry's size is bounded by the codec.
 */
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import type { Advert } from './advert.js'
import type { AdvertEnvelope } from './codec.js'

export interface TableEntry {
  peerId: string
  seq: number
  advert: Advert
  /** The signed advert as received: what a sync answer passes on. */
  signed: Uint8Array
  heardAt: number
}

export type GoneReason = 'left' | 'expired' | 'evicted' | 'unreachable'

export interface AdvertEvent { peerId: string, advert: Advert, isNew: boolean }
export interface GoneEvent { peerId: string, reason: GoneReason }

/** Why an advert was not taken: an older or equal sequence number, or sooner than `minIntervalMs` after the last. */
export type AcceptResult = 'accepted' | 'left' | 'stale' | 'too-soon'

export interface AdvertTableOptions {
  clock?: Clock
  /** A peer silent this long is forgotten (default DEFAULT_ADVERT_TTL_MS). */
  ttlMs?: number
  /** Most peers kept (default 10,000); beyond that the longest silent is evicted. */
  maxEntries?: number
  /** Adverts from one peer closer together than this are ignored (a publisher floods); default 250 ms. */
  minIntervalMs?: number
}

export const DEFAULT_ADVERT_TTL_MS = 95_000
const FIRST_BACKOFF_MS = 5_000
const MAX_BACKOFF_MS = 60_000

export class AdvertTable extends EventTarget {
  private readonly entries = new Map<string, TableEntry>()
  /** Last sequence number of peers that left or expired, so a late older copy does not bring them back. */
  private readonly departed = new Map<string, number>()
  /** Peers we could not reach, with when their advert is offered again and the next back-off. */
  private readonly suspended = new Map<string, { until: number, backoffMs: number, timer: unknown }>()
  private readonly clock: Clock
  private readonly ttlMs: number
  private readonly maxEntries: number
  private readonly minIntervalMs: number
  private sweepTimer?: unknown
  /** Back-off for a peer's next suspension, grown while it keeps being unreachable. */
  private readonly nextBackoff = new Map<string, number>()

  constructor (options: AdvertTableOptions = {}) {
    super()
    this.clock = options.clock ?? systemClock
    this.ttlMs = options.ttlMs ?? DEFAULT_ADVERT_TTL_MS
    this.maxEntries = options.maxEntries ?? 10_000
    this.minIntervalMs = options.minIntervalMs ?? 250
  }

  get size (): number {
    return this.entries.size
  }

  /** A peer's entry, unless it is suspended as unreachable. */
  get (peerId: string): TableEntry | undefined {
    return this.suspended.has(peerId) ? undefined : this.entries.get(peerId)
  }

  /** Every entry not suspended as unreachable. */
  * values (): IterableIterator<TableEntry> {
    for (const e of this.entries.values()) if (!this.suspended.has(e.peerId)) yield e
  }

  /** Every entry, suspended ones included: what a sync answer passes on. */
  all (): IterableIterator<TableEntry> {
    return this.entries.values()
  }

  /** Takes a verified advert from `peerId` if it is newer than what we hold. */
  accept (peerId: string, envelope: AdvertEnvelope, signed: Uint8Array): AcceptResult {
    const now = this.clock.now()
    const old = this.entries.get(peerId)
    if (old != null && envelope.seq <= old.seq) return 'stale'
    if (old == null && envelope.seq <= (this.departed.get(peerId) ?? -1)) return 'stale'
    if (envelope.leaving) {
      if (old != null) this.drop(peerId, 'left')
      this.remember(peerId, envelope.seq)
      return 'left'
    }
    if (old != null && now - old.heardAt < this.minIntervalMs) return 'too-soon'
    // News from a suspended peer: it is back now, with a fresh back-off.
    const wasSuspended = this.unsuspend(peerId)
    if (old == null && this.entries.size >= this.maxEntries) this.evictOldest()
    // Re-inserting keeps the map in order of last heard, oldest first.
    this.departed.delete(peerId)
    this.entries.delete(peerId)
    this.entries.set(peerId, { peerId, seq: envelope.seq, advert: envelope.advert, signed, heardAt: now })
    this.armSweep()
    this.dispatchEvent(new CustomEvent<AdvertEvent>('advert', { detail: { peerId, advert: envelope.advert, isNew: old == null || wasSuspended } }))
    return 'accepted'
  }

  /**
   * A peer we could not reach (a dial failed, or it went silent mid-task): 'gone' now, offered
   * again after a back-off (5 s, doubling to a minute while it stays unreachable) or at once when
   * it publishes a newer advert. A loaded machine that failed one dial loses the peer for seconds,
   * not for a heartbeat; a dead one costs a dial per back-off until its advert expires.
   */
  forget (peerId: string): void {
    if (!this.entries.has(peerId) || this.suspended.has(peerId)) return
    const backoffMs = this.nextBackoff.get(peerId) ?? FIRST_BACKOFF_MS
    this.nextBackoff.delete(peerId)
    const timer = this.clock.setTimeout(() => {
      const entry = this.entries.get(peerId)
      this.suspended.delete(peerId)
      if (entry == null) return
      this.nextBackoff.set(peerId, Math.min(backoffMs * 2, MAX_BACKOFF_MS))
      this.dispatchEvent(new CustomEvent<AdvertEvent>('advert', { detail: { peerId, advert: entry.advert, isNew: true } }))
    }, backoffMs)
    this.suspended.set(peerId, { until: this.clock.now() + backoffMs, backoffMs, timer })
    this.dispatchEvent(new CustomEvent<GoneEvent>('gone', { detail: { peerId, reason: 'unreachable' } }))
  }

  /** Lifts a suspension; true if there was one. */
  private unsuspend (peerId: string): boolean {
    const s = this.suspended.get(peerId)
    this.nextBackoff.delete(peerId)
    if (s == null) return false
    this.clock.clearTimeout(s.timer)
    this.suspended.delete(peerId)
    return true
  }

  /** Forgets every entry silent for longer than the TTL. */
  sweep (): void {
    const cutoff = this.clock.now() - this.ttlMs
    for (const e of [...this.entries.values()]) {
      if (e.heardAt > cutoff) break // ordered by last heard
      this.drop(e.peerId, 'expired')
    }
  }

  stop (): void {
    if (this.sweepTimer != null) this.clock.clearTimeout(this.sweepTimer)
    this.sweepTimer = undefined
    for (const id of [...this.suspended.keys()]) this.unsuspend(id)
  }

  private evictOldest (): void {
    const oldest = this.entries.keys().next()
    if (oldest.done !== true) this.drop(oldest.value, 'evicted')
  }

  private remember (peerId: string, seq: number): void {
    this.departed.delete(peerId)
    this.departed.set(peerId, seq)
    if (this.departed.size > this.maxEntries) this.departed.delete(this.departed.keys().next().value!)
  }

  private drop (peerId: string, reason: GoneReason): void {
    const entry = this.entries.get(peerId)
    if (entry != null) this.remember(peerId, entry.seq)
    const wasSuspended = this.unsuspend(peerId)
    this.entries.delete(peerId)
    // A suspended peer already said 'gone'.
    if (wasSuspended) return
    this.dispatchEvent(new CustomEvent<GoneEvent>('gone', { detail: { peerId, reason } }))
  }

  /** One timer at the next expiry, only while there are entries. */
  private armSweep (): void {
    if (this.sweepTimer != null) return
    const first = this.entries.values().next()
    if (first.done === true) return
    const due = first.value.heardAt + this.ttlMs - this.clock.now()
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweepTimer = undefined
      this.sweep()
      this.armSweep()
    }, Math.max(0, due) + 1)
  }
}

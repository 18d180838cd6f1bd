/**
 * What this browser has given to the network since it was first opened here: tasks run (done and
 * failed) and their inference time, per requester, kept in localStorage so it survives reloads and
 * restarts. Fed from the tab's work events; its own jobs ('self') count too, shown apart by the
 * page. This is the one count of work since install: the work log's totals and the jobs page's
 * "given per requester" both read it, so they cannot disagree.
 *
 * Every tab of the browser works and shares one localStorage. Each tab writes only its own share,
 * under its identity slot (ledgerKey), and adds its unsaved increments to what that entry holds
 * when it saves (two tabs on one slot, where the browser has no Web Locks, still add up); the
 * figures shown are the sum of every slot's share. A tab never writes over another tab's counts.
 *
 * Bounded: at most MAX_REQUESTERS requesters are kept per share and in the sum (the least recently
 * served are folded into one "others" line), and the stored text is validated when read back (a
 * damaged share is left out of the sum and started afresh by its tab rather than breaking the page).
 */
import type { WorkEvent } from '../core/work-queue.js'

export const LEDGER_KEY = 'p2p-ai-agents.contribution'
/** Where the tab holding identity slot `slot` keeps its share. */
export const ledgerKey = (slot: number): string => `${LEDGER_KEY}:${slot}`
const isLedgerKey = (key: string): boolean => key.startsWith(`${LEDGER_KEY}:`) && /^\d+$/.test(key.slice(LEDGER_KEY.length + 1))
export const MAX_REQUESTERS = 200
/** Requesters past the cap are added up under this key. */
export const OTHERS = '(others)'
/** Writes to localStorage at most this often (work events arrive by the hundred per second). */
const SAVE_MS = 2000

export interface RequesterShare {
  tasks: number
  inferenceMs: number
  /** ms since the epoch of the last task for it. */
  lastAt: number
}

export interface Ledger {
  /** ms since the epoch this ledger was started. */
  since: number
  /** Tasks done (byRequester splits these). */
  tasks: number
  failed: number
  /** In-worker inference time of the tasks done, ms. */
  inferenceMs: number
  byRequester: Record<string, RequesterShare>
}

/** Where the ledger is kept (localStorage in the page; a Map in tests); key/length find every tab's share. */
export interface LedgerStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  key(index: number): string | null
  readonly length: number
}

const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0

/** Parses a stored ledger, or undefined when it is missing or damaged. */
export function parseLedger (text: string | null): Ledger | undefined {
  if (text == null) return undefined
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const l = v as Record<string, unknown>
  if (!isAmount(l.since) || !isAmount(l.tasks) || !isAmount(l.failed) || !isAmount(l.inferenceMs) || typeof l.byRequester !== 'object' || l.byRequester === null) return undefined
  const entries = Object.entries(l.byRequester as Record<string, unknown>)
  if (entries.length > MAX_REQUESTERS + 1) return undefined
  const byRequester: Record<string, RequesterShare> = {}
  for (const [peer, s] of entries) {
    if (typeof s !== 'object' || s === null) return undefined
    const r = s as Record<string, unknown>
    if (!isAmount(r.tasks) || !isAmount(r.inferenceMs) || !isAmount(r.lastAt)) return undefined
    Object.defineProperty(byRequester, peer, { value: { tasks: r.tasks, inferenceMs: r.inferenceMs, lastAt: r.lastAt }, enumerable: true, writable: true, configurable: true })
  }
  return { since: l.since, tasks: l.tasks, failed: l.failed, inferenceMs: l.inferenceMs, byRequester }
}

const empty = (since: number): Ledger => ({ since, tasks: 0, failed: 0, inferenceMs: 0, byRequester: {} })

/** `peer`'s share in `by`, created empty if missing (own properties only: a peer id like __proto__ is plain data). */
function shareOf (by: Record<string, RequesterShare>, peer: string, at: number): RequesterShare {
  if (Object.hasOwn(by, peer)) return by[peer]
  const share = { tasks: 0, inferenceMs: 0, lastAt: at }
  Object.defineProperty(by, peer, { value: share, enumerable: true, writable: true, configurable: true })
  return share
}

/** Past MAX_REQUESTERS, the least recently served requesters are folded into OTHERS. */
function cap (by: Record<string, RequesterShare>): void {
  const peers = Object.keys(by).filter(p => p !== OTHERS)
  if (peers.length <= MAX_REQUESTERS) return
  peers.sort((a, b) => by[b].lastAt - by[a].lastAt)
  for (const peer of peers.slice(MAX_REQUESTERS)) {
    const folded = by[peer]
    delete by[peer]
    const others = shareOf(by, OTHERS, 0)
    others.tasks += folded.tasks
    others.inferenceMs += folded.inferenceMs
    others.lastAt = Math.max(others.lastAt, folded.lastAt)
  }
}

/** Adds `add` into `into` (changed in place and returned). */
function merge (into: Ledger, add: Ledger): Ledger {
  into.since = Math.min(into.since, add.since)
  into.tasks += add.tasks
  into.failed += add.failed
  into.inferenceMs += add.inferenceMs
  for (const [peer, s] of Object.entries(add.byRequester)) {
    const share = shareOf(into.byRequester, peer, s.lastAt)
    share.tasks += s.tasks
    share.inferenceMs += s.inferenceMs
    share.lastAt = Math.max(share.lastAt, s.lastAt)
  }
  cap(into.byRequester)
  return into
}

export class ContributionLedger extends EventTarget {
  /** This tab's tasks not yet added to its stored share. */
  private pending: Ledger
  private slot?: number
  private saveTimer?: ReturnType<typeof setTimeout>

  constructor (private readonly storage: LedgerStorage | undefined, private readonly now: () => number = Date.now) {
    super()
    this.pending = empty(now())
  }

  /** The tab's identity slot, once known: its share is kept under it (work before that waits in memory). */
  bindSlot (slot: number): void {
    this.slot = slot
    if (this.pending.tasks + this.pending.failed > 0) this.saveTimer ??= setTimeout(() => { this.save() }, SAVE_MS)
  }

  /** A task this tab finished, done or failed (other states are ignored). */
  record (e: WorkEvent): void {
    if (e.state !== 'done' && e.state !== 'failed') return
    const l = this.pending
    if (e.state === 'failed') {
      l.failed++
    } else {
      const ms = e.result?.timings.inferenceMs
      const inferenceMs = isAmount(ms) ? ms : 0
      const at = this.now()
      const known = Object.hasOwn(l.byRequester, e.requester)
      l.tasks++
      l.inferenceMs += inferenceMs
      const share = shareOf(l.byRequester, e.requester, at)
      share.tasks++
      share.inferenceMs += inferenceMs
      share.lastAt = at
      if (!known) cap(l.byRequester)
    }
    this.dispatchEvent(new Event('change'))
    this.saveTimer ??= setTimeout(() => { this.save() }, SAVE_MS)
  }

  /** The browser's figures: every tab's stored share and this tab's unsaved tasks. */
  get value (): Ledger {
    const sum = merge(empty(this.pending.since), this.pending)
    for (const share of this.shares()) merge(sum, share)
    return sum
  }

  /** Adds this tab's unsaved tasks to its stored share now (also done on its own a moment after each task). */
  save (): void {
    clearTimeout(this.saveTimer)
    this.saveTimer = undefined
    if (this.slot === undefined || this.storage == null || this.pending.tasks + this.pending.failed === 0) return
    try {
      const key = ledgerKey(this.slot)
      // Read just before the write: another tab on this slot (no Web Locks) may have added to it.
      const stored = parseLedger(this.storage.getItem(key)) ?? empty(this.pending.since)
      this.storage.setItem(key, JSON.stringify(merge(stored, this.pending)))
      this.pending = empty(this.now())
    } catch {
      // Storage full or refused: the tasks stay pending, in memory, and are tried again at the next save.
    }
  }

  /** Every slot's stored share that reads back whole. */
  private shares (): Ledger[] {
    const found: Ledger[] = []
    try {
      const storage = this.storage
      if (storage == null) return found
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i)
        const share = key != null && isLedgerKey(key) ? parseLedger(storage.getItem(key)) : undefined
        if (share != null) found.push(share)
      }
    } catch {
      // Storage refused (private mode): this tab's own tasks are all there is to show.
    }
    return found
  }
}

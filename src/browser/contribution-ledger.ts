/**
 * What this browser has given to the network since it was first opened here: tasks run and their
 * inference time, per requester, kept in localStorage so it survives reloads and restarts.
 * Fed from the tab's work events (a task done for a requester); its own jobs ('self') count too,
 * shown apart by the page.
 *
 * Bounded: at most MAX_REQUESTERS requesters are kept (the least recently served are folded into
 * one "others" line), and the stored text is validated when read back (a damaged entry starts the
 * ledger afresh rather than breaking the page).
 */
import type { WorkEvent } from '../core/work-queue.js'

export const LEDGER_KEY = 'p2p-ai-agents.contribution'
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
  tasks: number
  inferenceMs: number
  byRequester: Record<string, RequesterShare>
}

/** Where the ledger is kept (localStorage in the page; a Map in tests). */
export interface LedgerStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
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
  if (!isAmount(l.since) || !isAmount(l.tasks) || !isAmount(l.inferenceMs) || typeof l.byRequester !== 'object' || l.byRequester === null) return undefined
  const entries = Object.entries(l.byRequester as Record<string, unknown>)
  if (entries.length > MAX_REQUESTERS + 1) return undefined
  const byRequester: Record<string, RequesterShare> = {}
  for (const [peer, s] of entries) {
    if (typeof s !== 'object' || s === null) return undefined
    const r = s as Record<string, unknown>
    if (!isAmount(r.tasks) || !isAmount(r.inferenceMs) || !isAmount(r.lastAt)) return undefined
    Object.defineProperty(byRequester, peer, { value: { tasks: r.tasks, inferenceMs: r.inferenceMs, lastAt: r.lastAt }, enumerable: true, writable: true, configurable: true })
  }
  return { since: l.since, tasks: l.tasks, inferenceMs: l.inferenceMs, byRequester }
}

export class ContributionLedger extends EventTarget {
  private ledger: Ledger
  private saveTimer?: ReturnType<typeof setTimeout>

  constructor (private readonly storage: LedgerStorage | undefined, private readonly now: () => number = Date.now) {
    super()
    let stored: Ledger | undefined
    try {
      stored = parseLedger(storage?.getItem(LEDGER_KEY) ?? null)
    } catch {
      stored = undefined // storage refused (private mode): count from now, in memory
    }
    this.ledger = stored ?? { since: now(), tasks: 0, inferenceMs: 0, byRequester: {} }
  }

  /** A task this tab finished for a requester (other states are ignored). */
  record (e: WorkEvent): void {
    if (e.state !== 'done') return
    const ms = e.result?.timings.inferenceMs
    const inferenceMs = isAmount(ms) ? ms : 0
    const at = this.now()
    const l = this.ledger
    l.tasks++
    l.inferenceMs += inferenceMs
    let share = Object.hasOwn(l.byRequester, e.requester) ? l.byRequester[e.requester] : undefined
    if (share == null) {
      this.makeRoom()
      share = { tasks: 0, inferenceMs: 0, lastAt: at }
      Object.defineProperty(l.byRequester, e.requester, { value: share, enumerable: true, writable: true, configurable: true })
    }
    share.tasks++
    share.inferenceMs += inferenceMs
    share.lastAt = at
    this.dispatchEvent(new Event('change'))
    this.saveTimer ??= setTimeout(() => { this.save() }, SAVE_MS)
  }

  get value (): Ledger {
    return structuredClone(this.ledger)
  }

  /** Writes now (also done on its own a moment after each task). */
  save (): void {
    clearTimeout(this.saveTimer)
    this.saveTimer = undefined
    try {
      this.storage?.setItem(LEDGER_KEY, JSON.stringify(this.ledger))
    } catch {
      // Storage full or refused: the figures stay in memory for this session.
    }
  }

  /** At the cap, the least recently served requester is folded into OTHERS. */
  private makeRoom (): void {
    const by = this.ledger.byRequester
    const peers = Object.keys(by).filter(p => p !== OTHERS)
    if (peers.length < MAX_REQUESTERS) return
    const oldest = peers.reduce((a, b) => by[a].lastAt <= by[b].lastAt ? a : b)
    const folded = by[oldest]
    delete by[oldest]
    const others = Object.hasOwn(by, OTHERS) ? by[OTHERS] : (by[OTHERS] = { tasks: 0, inferenceMs: 0, lastAt: 0 })
    others.tasks += folded.tasks
    others.inferenceMs += folded.inferenceMs
    others.lastAt = Math.max(others.lastAt, folded.lastAt)
  }
}

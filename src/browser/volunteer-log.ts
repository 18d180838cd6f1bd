/**
 * What the page keeps across reloads of a volunteer's own view: the recent digit results and the
 * work this tab ran, each bounded (oldest dropped first). Each tab of a browser keeps its own rows,
 * under its identity slot (slotKey), so a reloaded tab shows its own, never another tab's. The
 * totals since install, past the rows' cap, are the contribution ledger's (contribution-ledger.ts).
 * localStorage, read leniently: a damaged or foreign entry is skipped, never thrown.
 */

/** Digit results kept (the page shows the newest five). */
export const MAX_KEPT_RESULTS = 20
/** Work-log rows kept; older ones leave the table but stay counted in the contribution ledger. */
export const MAX_KEPT_SERVED = 500

export const RESULTS_KEY = 'p2p-ai-agents:results'
export const SERVED_KEY = 'p2p-ai-agents:work-log'
/** Where the tab holding identity slot `slot` keeps the rows of `key` (RESULTS_KEY, SERVED_KEY). */
export const slotKey = (key: string, slot: number): string => `${key}:${slot}`

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>

function read (storage: Storage | undefined, key: string): unknown {
  try {
    return JSON.parse(storage?.getItem(key) ?? 'null') as unknown
  } catch {
    return null
  }
}

function write (storage: Storage | undefined, key: string, value: unknown): boolean {
  try {
    storage?.setItem(key, JSON.stringify(value))
    return storage != null
  } catch {
    // Quota or storage refused: the view still works, it is just not kept.
    return false
  }
}

/** Rows newest first, at most `max`, those `valid` accepts. */
export function loadRows<T> (storage: Storage | undefined, key: string, max: number, valid: (row: unknown) => row is T): T[] {
  const rows = read(storage, key)
  return Array.isArray(rows) ? rows.filter(valid).slice(0, max) : []
}

export function saveRows<T> (storage: Storage | undefined, key: string, rows: readonly T[], max: number): boolean {
  return write(storage, key, rows.slice(0, max))
}

/** What the tab in identity slot `slot` kept (a reloaded tab gets its slot back), newest first. */
export function loadKept (storage: Storage | undefined, slot: number): { results: ResultRow[], served: ServedRow[] } {
  return {
    results: loadRows(storage, slotKey(RESULTS_KEY, slot), MAX_KEPT_RESULTS, isResultRow),
    served: loadRows(storage, slotKey(SERVED_KEY, slot), MAX_KEPT_SERVED, isServedRow)
  }
}

/** Keeps the tab's finished results and work log, newest first, under its identity slot; false where not kept. */
export function saveKept (storage: Storage | undefined, slot: number, rows: { results: readonly unknown[], served: readonly unknown[] }): boolean {
  const results = saveRows(storage, slotKey(RESULTS_KEY, slot), rows.results, MAX_KEPT_RESULTS)
  return saveRows(storage, slotKey(SERVED_KEY, slot), rows.served, MAX_KEPT_SERVED) && results
}

const isObject = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v)
const str = (v: unknown): boolean => typeof v === 'string'
const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v)
/** Timings as the page renders them: every field it formats is a finite number. */
const timings = (v: unknown, fields: readonly string[]): boolean => v === undefined || (isObject(v) && fields.every(f => num(v[f])))

/** A work-log row as the page stores it (the fields checked; the page's ServedTask has the rest). */
export interface ServedRow { taskId: string, requester: string, model: string, state: string }
/** A kept digit result (the fields checked; the page's Submission has the rest). */
export interface ResultRow { taskId: string, target: string, status: 'done' | 'failed' }

/** A work-log row as the page stores it. */
export function isServedRow (v: unknown): v is ServedRow {
  return isObject(v) && str(v.taskId) && str(v.requester) && str(v.model) && ['queued', 'running', 'done', 'failed'].includes(v.state as string) &&
    timings(v.timings, ['inferenceMs']) && (v.error === undefined || str(v.error))
}

/**
 * A finished digit result as the page stores it (running ones are not kept: their answer can no
 * longer come), with every field the result card renders of the right type.
 */
export function isResultRow (v: unknown): v is ResultRow {
  if (!isObject(v) || !str(v.taskId) || !str(v.target)) return false
  if (v.status === 'failed') return isObject(v.error) && str(v.error.code) && str(v.error.message) && (v.error.peer === undefined || str(v.error.peer))
  return v.status === 'done' && num(v.prediction) && Array.isArray(v.probs) && v.probs.every(num) && str(v.worker) &&
    timings(v.timings, ['networkMs', 'queueMs', 'loadMs', 'inferenceMs', 'roundTripMs'])
}

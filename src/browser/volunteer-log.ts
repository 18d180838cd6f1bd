/**
 * What the page keeps across reloads of a volunteer's own view: the recent digit results and the
 * work this tab ran, each bounded (oldest dropped first), with running totals since install that
 * count every task, including rows past the cap. localStorage, read leniently: a damaged or
 * foreign entry is skipped, never thrown.
 */

/** Digit results kept (the page shows the newest five). */
export const MAX_KEPT_RESULTS = 20
/** Work-log rows kept; older ones leave the table but stay counted in the totals. */
export const MAX_KEPT_SERVED = 500

export const RESULTS_KEY = 'p2p-ai-agents:results'
export const SERVED_KEY = 'p2p-ai-agents:work-log'
export const TOTALS_KEY = 'p2p-ai-agents:work-totals'

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>

export interface WorkTotals {
  done: number
  failed: number
  /** Sum of in-worker inference time of the tasks done, ms. */
  inferenceMs: number
  /** Wall-clock ms since the epoch of the first task counted. */
  since?: number
}

export const EMPTY_TOTALS: Readonly<WorkTotals> = Object.freeze({ done: 0, failed: 0, inferenceMs: 0 })

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

const count = (v: unknown): number => typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0

export function loadTotals (storage: Storage | undefined): WorkTotals {
  const t = read(storage, TOTALS_KEY)
  if (t == null || typeof t !== 'object') return { ...EMPTY_TOTALS }
  const o = t as Record<string, unknown>
  return { done: count(o.done), failed: count(o.failed), inferenceMs: count(o.inferenceMs), since: typeof o.since === 'number' && Number.isFinite(o.since) ? o.since : undefined }
}

export function saveTotals (storage: Storage | undefined, totals: WorkTotals): boolean {
  return write(storage, TOTALS_KEY, totals)
}

/** Totals after one task ended (`state` 'done' or 'failed'); other states change nothing. */
export function countTask (totals: WorkTotals, state: string, inferenceMs: number | undefined, now: number): WorkTotals {
  if (state !== 'done' && state !== 'failed') return totals
  return {
    done: totals.done + (state === 'done' ? 1 : 0),
    failed: totals.failed + (state === 'failed' ? 1 : 0),
    inferenceMs: totals.inferenceMs + (state === 'done' ? count(inferenceMs) : 0),
    since: totals.since ?? now
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v)
const str = (v: unknown): boolean => typeof v === 'string'
const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v)
/** Timings as the page renders them: every field it formats is a finite number. */
const timings = (v: unknown, fields: readonly string[]): boolean => v === undefined || (isObject(v) && fields.every(f => num(v[f])))

/** A work-log row as the page stores it. */
export function isServedRow (v: unknown): v is { taskId: string, requester: string, model: string, state: string } {
  return isObject(v) && str(v.taskId) && str(v.requester) && str(v.model) && ['queued', 'running', 'done', 'failed'].includes(v.state as string) &&
    timings(v.timings, ['inferenceMs']) && (v.error === undefined || str(v.error))
}

/**
 * A finished digit result as the page stores it (running ones are not kept: their answer can no
 * longer come), with every field the result card renders of the right type.
 */
export function isResultRow (v: unknown): v is { taskId: string, target: string, status: 'done' | 'failed' } {
  if (!isObject(v) || !str(v.taskId) || !str(v.target)) return false
  if (v.status === 'failed') return isObject(v.error) && str(v.error.code) && str(v.error.message) && (v.error.peer === undefined || str(v.error.peer))
  return v.status === 'done' && num(v.prediction) && Array.isArray(v.probs) && v.probs.every(num) && str(v.worker) &&
    timings(v.timings, ['networkMs', 'queueMs', 'loadMs', 'inferenceMs', 'roundTripMs'])
}

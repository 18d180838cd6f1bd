/**
 * What the page keeps about a job beside its JobMeta (src/core/job-store.ts): whether its user
 * paused it, what kind it is, who worked on it and how much inference it used over all its runs,
 * and for a job over the user's own model, the model's name and how to read its inputs back.
 * Stored in IndexedDB next to the job (src/browser/idb-job-store.ts, store 'tabjobs').
 */

export type TabJobKind = 'digits' | 'custom'

export interface CustomJobInfo {
  /** The .onnx file's name. */
  modelName: string
  /** Where the inputs came from, in words ("inputs.jsonl, 200 lines"). */
  source: string
  /** Outputs asked for (empty: all the model declares). */
  outputNames: string[]
  /** Relative tolerance when replicas are compared. */
  tolerance: number
}

export interface TabJobRecord {
  jobId: string
  kind: TabJobKind
  /**
   * Paused by its user: nothing is dispatched, and a reloaded tab does not resume it until the
   * user does. Only meaningful while the job's state is not terminal.
   */
  paused: boolean
  /** Share of decided tasks recomputed on this tab (kept for resumes). */
  spotCheck: number
  /** Results accepted per peer over every run (replicas included; 'self' is this tab). */
  workers: Record<string, number>
  /** Inference time of accepted results over every run, ms (replicas included). */
  inferenceMs: number
  custom?: CustomJobInfo
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0

/** What is wrong with `value` as a TabJobRecord, or undefined when nothing is. */
export function tabJobProblem (value: unknown): string | undefined {
  if (!isRecord(value)) return 'job record is not an object'
  if (typeof value.jobId !== 'string') return 'job record has no job id'
  const where = `job record ${value.jobId}`
  if (value.kind !== 'digits' && value.kind !== 'custom') return `${where}: unknown kind ${JSON.stringify(value.kind)}`
  if (typeof value.paused !== 'boolean') return `${where}: paused is not a boolean`
  if (!isAmount(value.spotCheck) || value.spotCheck > 1) return `${where}: spotCheck is not a share`
  if (!isRecord(value.workers) || !Object.values(value.workers).every(isAmount)) return `${where}: workers is not a map of counts`
  if (!isAmount(value.inferenceMs)) return `${where}: inferenceMs is not a non-negative number`
  if (value.kind === 'custom') {
    const c = value.custom
    if (!isRecord(c)) return `${where}: a custom job has no model details`
    if (typeof c.modelName !== 'string' || typeof c.source !== 'string') return `${where}: custom details are not text`
    if (!Array.isArray(c.outputNames) || !c.outputNames.every(n => typeof n === 'string')) return `${where}: outputNames is not a list of names`
    if (!isAmount(c.tolerance)) return `${where}: tolerance is not a non-negative number`
  }
  return undefined
}

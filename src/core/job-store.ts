/**
 * Batch jobs: their state machine, what is persisted about them, and the store interface that the
 * browser (IndexedDB, src/browser/idb-job-store.ts) and the CLI (files, src/node/file-job-store.ts)
 * implement. MemoryJobStore here is the reference implementation; the others mirror its semantics:
 *
 *   - Everything is copied on the way in and out: callers never share objects with the store.
 *     Metas and results are normalised to their declared fields (unknown properties and
 *     `undefined` optional fields are dropped), so every store round-trips the same objects.
 *   - putJob validates the meta (TypeError / RangeError when malformed) and replaces any meta
 *     stored under that jobId. It does not enforce the state machine (call nextState, or
 *     transitionJob, to move a job between states) with one exception: the first end stands. A
 *     stored meta in a terminal state is never replaced by one in another state (JobStateError
 *     'invalid-transition'; the same terminal state may be written again), and the check and the
 *     write are one atomic step against every other writer the store knows of (IndexedDB: one
 *     readwrite transaction, other tabs included; files: other processes too, see
 *     node/file-job-store.ts). So a cancel written by another process or tab between a runner's
 *     read and its write is never overwritten: the runner's write is refused and it stops
 *     (net/job-runner.ts).
 *   - Job ids are 1–128 characters of [A-Za-z0-9._-] starting with a letter or digit (they name
 *     directories in the file store). An id that breaks the rule is never stored: putJob throws,
 *     getJob gives undefined, getResults [], deleteJob does nothing.
 *   - putResults needs the job's meta first (else JobStateError 'unknown-job'), checks every result
 *     (index a safe integer in [0, taskCount), tensors' byte lengths matching dtype × dims) before
 *     writing any of them, and is idempotent per index: a repeated index overwrites, the last one
 *     in the batch winning.
 *   - getResults is sorted by index; getJob / getResults of an unknown job give undefined / [].
 *   - listJobs is newest first: createdAt descending, ties by jobId ascending.
 *   - deleteResults removes results (a worker convicted of lying voted for them: they are computed
 *     again); unknown indices and unknown jobs are ignored.
 *   - appendAudit appends lines to the job's audit log (core/audit.ts) in order; each line is one
 *     line of text (no newline). getAudit gives them back in order; [] for an unknown job;
 *     lastAudit the last one (undefined when there is none).
 *   - deleteJob removes the meta, all results and the audit log; deleting an unknown job does nothing.
 *   - putReputation replaces the whole record set (it does not merge); getReputation gives {} when
 *     nothing was stored.
 *   - A store whose persisted data cannot be read back throws JobStateError 'corrupt-store'.
 */
import { DTYPE_BYTES, elementCount, isDType } from './tensor.js'
import { parseReceipt } from './receipt.js'
import type { Receipt } from './receipt.js'
import type { WireTensor } from './tensor.js'

export type JobState = 'queued' | 'running' | 'verifying' | 'done' | 'failed' | 'cancelled'

export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'verifying', 'done', 'failed', 'cancelled']

/**
 * Allowed state changes:
 *
 *   queued    → running | failed | cancelled
 *   running   → running | verifying | failed | cancelled
 *   verifying → verifying | running | done | failed | cancelled
 *   done, failed, cancelled: terminal
 *
 * `verifying` is the phase after every task has a result, while replicas and cross-checks are
 * settled; a job with nothing to verify passes through it at once, so every `done` job has been
 * through it. A disagreement found while verifying re-opens the job (verifying → running).
 * The active states may be re-entered (running → running, verifying → verifying) so a job resumed
 * after a reload or a crash can be put back into the state it was in. `failed` (an unrecoverable
 * error) and `cancelled` (its requester stopped it for good; decided results stay) are reachable
 * from every non-terminal state. Nothing leaves a terminal state: a retry is a new job.
 */
export const JOB_TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  queued: ['running', 'failed', 'cancelled'],
  running: ['running', 'verifying', 'failed', 'cancelled'],
  verifying: ['verifying', 'running', 'done', 'failed', 'cancelled'],
  done: [],
  failed: [],
  cancelled: []
}

export type JobStateErrorCode = 'invalid-transition' | 'unknown-job' | 'corrupt-store'

export class JobStateError extends Error {
  readonly code: JobStateErrorCode

  constructor (code: JobStateErrorCode, message: string) {
    super(message)
    this.name = 'JobStateError'
    this.code = code
  }
}

export function isJobState (value: unknown): value is JobState {
  return typeof value === 'string' && (JOB_STATES as readonly string[]).includes(value)
}

export function isTerminalState (state: JobState): boolean {
  return JOB_TRANSITIONS[state].length === 0
}

/** Returns `to` when `from → to` is allowed; throws JobStateError 'invalid-transition' otherwise. */
export function nextState (from: JobState, to: JobState): JobState {
  if (!isJobState(from) || !isJobState(to)) {
    throw new JobStateError('invalid-transition', `unknown job state in ${String(from)} → ${String(to)}`)
  }
  if (!JOB_TRANSITIONS[from].includes(to)) {
    const allowed = JOB_TRANSITIONS[from]
    throw new JobStateError('invalid-transition',
      `a ${from} job cannot become ${to} (${allowed.length === 0 ? `${from} is final` : `allowed: ${allowed.join(', ')}`})`)
  }
  return to
}

export interface JobModel {
  sha256: string
  size: number
  name: string
}

export interface JobMeta {
  jobId: string
  modelId: string
  model: JobModel
  datasetId: string
  taskCount: number
  replicas: number
  adaptive: boolean
  state: JobState
  createdAt: number
  updatedAt: number
  error?: string
  stats?: Record<string, number>
}

export interface StoredResult {
  index: number
  outputs: WireTensor[]
  /** Peer ids whose outputs agreed on this result. */
  agreedBy: string[]
  crossChecked: boolean
  /** The signed receipt of the worker whose outputs these are (absent when the requester computed them). */
  receipt?: Receipt
}

export interface ReputationRecord {
  agreed: number
  disagreed: number
  lastSeen: number
  /** Agreements since the last disagreement (src/core/reputation.ts); kept when present. */
  streak?: number
}

export type ReputationRecords = Record<string, ReputationRecord>

/** Where a job's task inputs come from (pre-processing happens here, on the requester). */
export interface JobSource {
  task(index: number): { inputs: WireTensor[], outputNames: string[] }
}

export interface JobStore {
  putJob(meta: JobMeta): Promise<void>
  getJob(jobId: string): Promise<JobMeta | undefined>
  /** Newest first. */
  listJobs(): Promise<JobMeta[]>
  /** Called in batches; idempotent per index (a repeated index overwrites). */
  putResults(jobId: string, results: StoredResult[]): Promise<void>
  /** Sorted by index. */
  getResults(jobId: string): Promise<StoredResult[]>
  deleteResults(jobId: string, indices: number[]): Promise<void>
  appendAudit(jobId: string, lines: string[]): Promise<void>
  getAudit(jobId: string): Promise<string[]>
  /** The log's last line (to continue its chain) without reading the whole log. */
  lastAudit(jobId: string): Promise<string | undefined>
  deleteJob(jobId: string): Promise<void>
  getReputation(): Promise<ReputationRecords>
  putReputation(records: ReputationRecords): Promise<void>
}

/**
 * Reads the job, checks the transition and stores it with the new state (plus `patch`) and
 * `updatedAt = now`. The read and the write are separate steps, but a job that ended between
 * them stays ended (putJob refuses: see the module comment). Throws JobStateError 'unknown-job'
 * or 'invalid-transition'.
 */
export async function transitionJob (
  store: JobStore, jobId: string, to: JobState,
  patch: { error?: string, stats?: Record<string, number> } = {}, now: number = Date.now()
): Promise<JobMeta> {
  const meta = await store.getJob(jobId)
  if (meta == null) throw new JobStateError('unknown-job', `no job ${jobId}`)
  const next: JobMeta = { ...meta, ...patch, state: nextState(meta.state, to), updatedAt: now }
  await store.putJob(next)
  return next
}

/**
 * Throws JobStateError 'invalid-transition' when `next` may not replace `stored` (the meta stored
 * under its id, if any): a terminal state is never replaced by another state (the first end stands).
 */
export function checkJobReplace (stored: JobMeta | undefined, next: JobMeta): void {
  if (stored == null || !isTerminalState(stored.state) || stored.state === next.state) return
  throw new JobStateError('invalid-transition', `job ${next.jobId} has ended (${stored.state}); it cannot become ${next.state}`)
}

// --- Validation and normalisation, shared by every store --------------------------------------------

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const SHA256_HEX = /^[0-9a-f]{64}$/

/** Whether `jobId` may be stored (see the module comment). */
export function isValidJobId (jobId: unknown): jobId is string {
  return typeof jobId === 'string' && JOB_ID.test(jobId)
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isCount (v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0
}

function isFiniteNumber (v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

/** What is wrong with `value` as a JobMeta, or undefined when nothing is. */
export function jobMetaProblem (value: unknown): string | undefined {
  if (!isRecord(value)) return 'job meta is not an object'
  const m = value
  if (!isValidJobId(m.jobId)) return `invalid job id ${JSON.stringify(m.jobId)}`
  const where = `job ${m.jobId}`
  if (typeof m.modelId !== 'string') return `${where}: modelId is not a string`
  if (!isRecord(m.model)) return `${where}: model is not an object`
  if (typeof m.model.sha256 !== 'string' || !SHA256_HEX.test(m.model.sha256)) return `${where}: model.sha256 is not 64 lowercase hex characters`
  if (!isCount(m.model.size)) return `${where}: model.size is not a non-negative integer`
  if (typeof m.model.name !== 'string') return `${where}: model.name is not a string`
  if (typeof m.datasetId !== 'string') return `${where}: datasetId is not a string`
  if (!isCount(m.taskCount)) return `${where}: taskCount is not a non-negative integer`
  if (!isCount(m.replicas) || m.replicas < 1) return `${where}: replicas is not a positive integer`
  if (typeof m.adaptive !== 'boolean') return `${where}: adaptive is not a boolean`
  if (!isJobState(m.state)) return `${where}: unknown state ${JSON.stringify(m.state)}`
  if (!isFiniteNumber(m.createdAt)) return `${where}: createdAt is not a finite number`
  if (!isFiniteNumber(m.updatedAt)) return `${where}: updatedAt is not a finite number`
  if (m.error !== undefined && typeof m.error !== 'string') return `${where}: error is not a string`
  if (m.stats !== undefined) {
    if (!isRecord(m.stats)) return `${where}: stats is not an object`
    for (const [k, v] of Object.entries(m.stats)) {
      if (!isFiniteNumber(v)) return `${where}: stats.${k} is not a finite number`
    }
  }
  return undefined
}

/** A fresh copy of a valid meta holding only JobMeta's fields (undefined optional fields omitted). */
export function normalizeJobMeta (m: JobMeta): JobMeta {
  const out: JobMeta = {
    jobId: m.jobId,
    modelId: m.modelId,
    model: { sha256: m.model.sha256, size: m.model.size, name: m.model.name },
    datasetId: m.datasetId,
    taskCount: m.taskCount,
    replicas: m.replicas,
    adaptive: m.adaptive,
    state: m.state,
    createdAt: m.createdAt,
    updatedAt: m.updatedAt
  }
  if (m.error !== undefined) out.error = m.error
  if (m.stats !== undefined) out.stats = Object.fromEntries(Object.entries(m.stats))
  return out
}

/** Validates (TypeError) and normalises a meta on its way into a store. */
export function checkJobMeta (meta: JobMeta): JobMeta {
  const problem = jobMetaProblem(meta)
  if (problem != null) throw new TypeError(problem)
  return normalizeJobMeta(meta)
}

/** What is wrong with `value` as a StoredResult (its tensors' data must already be bytes), or undefined when nothing is. */
export function storedResultProblem (value: unknown): string | undefined {
  if (!isRecord(value)) return 'result is not an object'
  const r = value
  if (!isCount(r.index)) return `result index ${JSON.stringify(r.index)} is not a non-negative integer`
  const where = `result ${r.index}`
  if (!Array.isArray(r.outputs)) return `${where}: outputs is not an array`
  for (const t of r.outputs as unknown[]) {
    if (!isRecord(t)) return `${where}: an output is not an object`
    if (typeof t.name !== 'string') return `${where}: an output name is not a string`
    if (typeof t.dtype !== 'string' || !isDType(t.dtype)) return `${where}: output "${t.name}" has unknown dtype ${JSON.stringify(t.dtype)}`
    if (!Array.isArray(t.dims) || !t.dims.every(isCount)) return `${where}: output "${t.name}" has invalid dims`
    if (!(t.data instanceof Uint8Array)) return `${where}: output "${t.name}" data is not a Uint8Array`
    const expected = elementCount(t.dims as number[]) * DTYPE_BYTES[t.dtype]
    if (t.data.byteLength !== expected) {
      return `${where}: output "${t.name}" has ${t.data.byteLength} bytes but ${t.dtype}[${(t.dims as number[]).join(',')}] needs ${expected}`
    }
  }
  if (!Array.isArray(r.agreedBy) || !r.agreedBy.every(p => typeof p === 'string')) return `${where}: agreedBy is not an array of strings`
  if (typeof r.crossChecked !== 'boolean') return `${where}: crossChecked is not a boolean`
  if (r.receipt !== undefined) {
    try {
      parseReceipt(r.receipt)
    } catch (err) {
      return `${where}: ${(err as Error).message}`
    }
  }
  return undefined
}

/** A fresh copy of a valid result: tensor bytes copied into their own tight buffers. */
export function normalizeStoredResult (r: StoredResult): StoredResult {
  return {
    index: r.index,
    outputs: r.outputs.map(t => ({ name: t.name, dtype: t.dtype, dims: [...t.dims], data: new Uint8Array(t.data) })),
    agreedBy: [...r.agreedBy],
    crossChecked: r.crossChecked,
    ...(r.receipt !== undefined ? { receipt: parseReceipt(r.receipt) } : {})
  }
}

/**
 * Validates a batch for a job of `taskCount` tasks (TypeError when malformed, RangeError for an
 * index not below taskCount) and normalises it: nothing is written unless the whole batch passes.
 */
export function checkStoredResults (results: StoredResult[], taskCount: number): StoredResult[] {
  if (!Array.isArray(results)) throw new TypeError('results is not an array')
  return results.map(r => {
    const problem = storedResultProblem(r)
    if (problem != null) throw new TypeError(problem)
    if (r.index >= taskCount) throw new RangeError(`result index ${r.index} is out of range: the job has ${taskCount} tasks`)
    return normalizeStoredResult(r)
  })
}

/** What is wrong with `value` as reputation records, or undefined when nothing is. */
export function reputationProblem (value: unknown): string | undefined {
  if (!isRecord(value)) return 'reputation is not an object'
  for (const [peer, r] of Object.entries(value)) {
    if (!isRecord(r)) return `reputation of ${peer} is not an object`
    // Counts may be fractional: a reputation may decay them over time.
    if (!isFiniteNumber(r.agreed) || r.agreed < 0 || !isFiniteNumber(r.disagreed) || r.disagreed < 0) {
      return `reputation of ${peer}: agreed and disagreed must be finite non-negative numbers`
    }
    if (!isFiniteNumber(r.lastSeen)) return `reputation of ${peer}: lastSeen is not a finite number`
    if (r.streak !== undefined && (!isFiniteNumber(r.streak) || r.streak < 0)) return `reputation of ${peer}: streak is not a finite non-negative number`
  }
  return undefined
}

/** A fresh copy holding only ReputationRecord's fields (an undefined streak omitted). */
export function normalizeReputation (records: ReputationRecords): ReputationRecords {
  // fromEntries defines own properties, so even a peer id like "__proto__" stays plain data.
  return Object.fromEntries(Object.entries(records).map(([peer, r]) => {
    const out: ReputationRecord = { agreed: r.agreed, disagreed: r.disagreed, lastSeen: r.lastSeen }
    if (r.streak !== undefined) out.streak = r.streak
    return [peer, out]
  }))
}

/** Validates (TypeError) and normalises reputation records on their way into a store. */
export function checkReputation (records: ReputationRecords): ReputationRecords {
  const problem = reputationProblem(records)
  if (problem != null) throw new TypeError(problem)
  return normalizeReputation(records)
}

/** Newest first: createdAt descending, ties by jobId ascending. */
/** Audit lines are single lines of text (JSON objects, see core/audit.ts). */
export function checkAuditLines (lines: string[]): string[] {
  for (const line of lines) {
    if (typeof line !== 'string' || line.length === 0 || line.includes('\n') || line.includes('\r')) throw new TypeError('an audit line must be a non-empty single line of text')
  }
  return [...lines]
}

export function compareJobsNewestFirst (a: JobMeta, b: JobMeta): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt
  return a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0
}

// --- In memory ------------------------------------------------------------------------------------

/** The reference JobStore: everything in maps, lost with the process. */
export class MemoryJobStore implements JobStore {
  private readonly jobs = new Map<string, JobMeta>()
  private readonly results = new Map<string, Map<number, StoredResult>>()
  private readonly audit = new Map<string, string[]>()
  private reputation: ReputationRecords = {}

  async putJob (meta: JobMeta): Promise<void> {
    const m = checkJobMeta(meta)
    checkJobReplace(this.jobs.get(m.jobId), m)
    this.jobs.set(m.jobId, m)
  }

  async getJob (jobId: string): Promise<JobMeta | undefined> {
    const m = this.jobs.get(jobId)
    return m == null ? undefined : normalizeJobMeta(m)
  }

  async listJobs (): Promise<JobMeta[]> {
    return [...this.jobs.values()].sort(compareJobsNewestFirst).map(normalizeJobMeta)
  }

  async putResults (jobId: string, results: StoredResult[]): Promise<void> {
    const meta = this.jobs.get(jobId)
    if (meta == null) throw new JobStateError('unknown-job', `no job ${jobId}`)
    const batch = checkStoredResults(results, meta.taskCount)
    let stored = this.results.get(jobId)
    if (stored == null) this.results.set(jobId, stored = new Map())
    for (const r of batch) stored.set(r.index, r)
  }

  async getResults (jobId: string): Promise<StoredResult[]> {
    const stored = this.results.get(jobId)
    if (stored == null) return []
    return [...stored.values()].sort((a, b) => a.index - b.index).map(normalizeStoredResult)
  }

  async deleteResults (jobId: string, indices: number[]): Promise<void> {
    const stored = this.results.get(jobId)
    for (const i of indices) stored?.delete(i)
  }

  async appendAudit (jobId: string, lines: string[]): Promise<void> {
    if (!this.jobs.has(jobId)) throw new JobStateError('unknown-job', `no job ${jobId}`)
    const checked = checkAuditLines(lines)
    let log = this.audit.get(jobId)
    if (log == null) this.audit.set(jobId, log = [])
    log.push(...checked)
  }

  async getAudit (jobId: string): Promise<string[]> {
    return [...(this.audit.get(jobId) ?? [])]
  }

  async lastAudit (jobId: string): Promise<string | undefined> {
    return this.audit.get(jobId)?.at(-1)
  }

  async deleteJob (jobId: string): Promise<void> {
    this.jobs.delete(jobId)
    this.results.delete(jobId)
    this.audit.delete(jobId)
  }

  async getReputation (): Promise<ReputationRecords> {
    return normalizeReputation(this.reputation)
  }

  async putReputation (records: ReputationRecords): Promise<void> {
    this.reputation = checkReputation(records)
  }
}

/**
 * Runs task requests on onnxruntime (web or node: both share onnxruntime-common's API).
 * Sessions are cached by model sha256, and model bytes are hashed before a session is created,
 * so a peer never loads bytes other than the ones the requester named.
 *
 * The cache is bounded by a budget of model bytes: past it, the least recently used sessions
 * that are not running are released (a session costs a few times its model's bytes, and without
 * a bound every model a requester ever sent would stay in memory for good).
 *
 * Batches (executeMany): tasks of one model whose inputs differ only in their first dim are
 * stacked along it into one session.run, and each output is cut back into each task's rows, when
 * every input and output of the model has a symbolic first dim (a free batch dimension). A model
 * can still mix rows (e.g. subtract the batch mean) under a free first dim, so a session's first
 * stacked run with two different input rows is checked against a run of one task alone; a model
 * whose rows depend on each other is never stacked again. Until that check has passed, a batch of
 * identical rows (which cannot show a model mixing rows) runs one task at a time, never both ways.
 * A batch's outputs are bounded (`maxBatchOutputBytes`): each session learns its output bytes per
 * row from a run (the first task of its first batch runs alone for that), a stacked run takes only
 * as many rows as fit what the call may still hold, and once the call's outputs reach the bound the
 * tasks left are not run but answered NotRunInBatch (the caller runs them alone, in calls of their
 * own): small inputs must not make one call hold many frames' worth. Anything a stacked run cannot do
 * (an error, an output whose first dim is not the row count) falls back to one run per task, so a
 * bad task fails alone.
 */
import { TaskError, toTaskError } from '../core/errors.js'
import { sha256Hex } from '../core/hash.js'
import { relativeComparator } from '../core/compare.js'
import { toTypedArray } from '../core/tensor.js'
import { batchKey } from '../core/work-queue.js'
import { DEFAULT_LIMITS } from '../core/limits.js'
import type { InferenceSession, Tensor } from 'onnxruntime-common'
import type { ModelRef, TaskRequest } from '../core/task-types.js'
import type { BatchOutcome, ExecutionResult } from '../core/work-queue.js'
import type { DTypeName, WireTensor } from '../core/tensor.js'

export interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> }
  Tensor: new (type: DTypeName, data: ArrayBufferView, dims: readonly number[]) => Tensor
}

/** Gets a model's bytes by reference (`from`: the requester, which has it); throws if this peer cannot get it. */
export type ModelFetcher = (ref: ModelRef, from?: string) => Promise<Uint8Array>

/** Model bytes whose sessions a runner keeps by default (the session running is kept even if it alone is larger). */
export const DEFAULT_SESSION_BUDGET_BYTES = 256 * 1024 * 1024
/**
 * Sessions a runner keeps by default, whatever their bytes: each holds its own onnxruntime state
 * (prepacked weights, activation arena), several times a small model's bytes.
 */
export const DEFAULT_MAX_SESSIONS = 16
/**
 * What a tab's inference Web Worker keeps: the built-ins (digits, OCR detection + recognition,
 * 16 MB) and a model or two of the user's. Smaller than a Node process's, because a tab is a
 * volunteer's and its WASM heap never gives memory back: the most it ever held stays resident.
 */
export const TAB_SESSION_BUDGET = { bytes: 64 * 1024 * 1024, maxSessions: 4 }

export interface OrtRunnerOptions {
  backend: string
  threads: number
  sessionOptions?: InferenceSession.SessionOptions
  /** Sessions whose model bytes add up past this are released, least recently used first (default DEFAULT_SESSION_BUDGET_BYTES). */
  sessionBudgetBytes?: number
  /** Sessions kept at most, least recently used released first (default DEFAULT_MAX_SESSIONS). */
  maxSessions?: number
  /**
   * The fetcher hands only bytes already checked against ref.sha256 (a tab's page verified them
   * before handing them to its Web Worker): they are not hashed again here.
   */
  prevalidated?: boolean
  /**
   * Most output bytes one executeMany call holds (default the frame limit, what one task's reply
   * may carry): past it, the tasks left are answered NotRunInBatch. A call may pass it by the
   * outputs of its last run.
   */
  maxBatchOutputBytes?: number
}

/** A task of a batch not run because the call's outputs reached their bound (see the header): run it alone. */
export class NotRunInBatch extends TaskError {
  constructor () {
    super('inference-failed', 'not run in this batch: the outputs of the tasks before it reached what one call may hold; run it alone')
    this.name = 'NotRunInBatch'
  }
}

interface CachedSession {
  session: Promise<InferenceSession>
  /** Model bytes: the size the task claimed until the bytes arrive. */
  bytes: number
  lastUsed: number
  /** Runs (and loads) using it now: never released under them. */
  users: number
  /** Dropped from the cache while in use: released once its last user is done. */
  dropped: boolean
  /** Whether stacked runs give each task what a run of its own gives: unknown until checked once. */
  stacks?: boolean
  /** Largest output bytes per input row seen, by output names asked: what bounds a stacked run. */
  rowOutputBytes: Map<string, number>
}

/** What an executeMany call may still hold in outputs, bytes (see the header). */
interface OutputBudget { left: number }

function outputBytes (outputs: readonly WireTensor[]): number {
  return outputs.reduce((n, t) => n + t.data.byteLength, 0)
}

/** How close a stacked run's rows must be to a run of one task alone: what a requester accepts between honest workers. */
const sameRows = relativeComparator()

/** A model's bytes from `fetchModel`, its failures as `model-unavailable` (a TaskError passes unchanged). */
async function fetchModelBytes (ref: ModelRef, fetchModel: ModelFetcher, from?: string): Promise<Uint8Array> {
  try {
    return await fetchModel(ref, from)
  } catch (err) {
    if (err instanceof TaskError) throw err
    throw new TaskError('model-unavailable', `model ${ref.name || ref.sha256} is not available here: ${(err as Error).message}`)
  }
}

/** Fetches a model and checks it hashes to what the requester asked for. */
export async function fetchVerifiedModel (ref: ModelRef, fetchModel: ModelFetcher, from?: string): Promise<Uint8Array> {
  const bytes = await fetchModelBytes(ref, fetchModel, from)
  const actual = await sha256Hex(bytes)
  if (actual !== ref.sha256) {
    throw new TaskError('model-hash-mismatch', `model bytes hash to ${actual}, but the task asked for ${ref.sha256}`)
  }
  return bytes
}

export class OrtRunner {
  readonly backend: string
  readonly threads: number
  private readonly ort: OrtModule
  private readonly fetchModel: ModelFetcher
  private readonly sessionOptions: InferenceSession.SessionOptions
  private readonly budget: number
  private readonly maxSessions: number
  private readonly prevalidated: boolean
  private readonly maxBatchOutputBytes: number
  private readonly sessions = new Map<string, CachedSession>()
  private uses = 0

  constructor (ort: OrtModule, fetchModel: ModelFetcher, options: OrtRunnerOptions) {
    this.ort = ort
    this.fetchModel = fetchModel
    this.backend = options.backend
    this.threads = options.threads
    this.sessionOptions = options.sessionOptions ?? {}
    this.budget = options.sessionBudgetBytes ?? DEFAULT_SESSION_BUDGET_BYTES
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS
    this.prevalidated = options.prevalidated ?? false
    this.maxBatchOutputBytes = options.maxBatchOutputBytes ?? DEFAULT_LIMITS.maxFrameBytes
  }

  /** sha256 of every model with a session ready (or being created). */
  get cachedModels (): string[] {
    return [...this.sessions.keys()]
  }

  /** Model bytes of the sessions cached now. */
  get cachedBytes (): number {
    let sum = 0
    for (const s of this.sessions.values()) sum += s.bytes
    return sum
  }

  /**
   * Creates a model's session ahead of its first task and, given sample inputs, runs it once:
   * onnxruntime's first run of a session is several times slower than the next ones.
   */
  async preload (ref: ModelRef, warmup?: WireTensor[]): Promise<void> {
    const entry = this.use(ref, warmup)
    try {
      await entry.session
    } finally {
      this.done(entry)
    }
  }

  async execute (request: TaskRequest, requester?: string): Promise<ExecutionResult> {
    const entry = this.use(request.model, undefined, requester)
    try {
      return await this.run(entry, request)
    } finally {
      this.done(entry)
    }
  }

  /**
   * Runs several tasks in one call (see the header): stacked where their model and inputs allow,
   * else one after the other; one outcome per request, in order, each task's alone. Within the
   * output bound (see the header): the tasks past it are answered NotRunInBatch.
   */
  async executeMany (requests: TaskRequest[], requester?: string): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = new Array(requests.length)
    const budget: OutputBudget = { left: this.maxBatchOutputBytes }
    const groups = new Map<string, number[]>()
    requests.forEach((r, i) => {
      const key = batchKey(r) ?? `alone:${i}`
      groups.set(key, [...groups.get(key) ?? [], i])
    })
    for (const indices of groups.values()) {
      if (budget.left <= 0) {
        for (const at of indices) outcomes[at] = new NotRunInBatch()
        continue
      }
      const group = indices.map(i => requests[i])
      const entry = this.use(group[0].model, undefined, requester)
      try {
        const results = await this.runGroup(entry, group, budget)
        indices.forEach((at, j) => { outcomes[at] = results[j] })
      } finally {
        this.done(entry)
      }
    }
    return outcomes
  }

  /** Frees a model's session (e.g. on a backend that lost the per-model measurement); a running one once it is done. */
  async release (sha256: string): Promise<void> {
    const entry = this.sessions.get(sha256)
    if (entry == null) return
    this.sessions.delete(sha256)
    entry.dropped = true
    if (entry.users === 0) await this.free(entry)
  }

  private async run (entry: CachedSession, request: TaskRequest): Promise<ExecutionResult> {
    const loadStart = performance.now()
    const session = await entry.session
    const loadMs = performance.now() - loadStart
    const { outputs, inferenceMs } = await this.infer(session, request.inputs, request.outputNames)
    learnRowBytes(entry, request.outputNames, outputs, request.inputs[0]?.dims[0] ?? 0)
    return { outputs, loadMs, inferenceMs, backend: this.backend, threads: this.threads }
  }

  /** One session.run of these inputs, checked against the model's inputs and outputs first. */
  private async infer (session: InferenceSession, inputs: WireTensor[], outputNames: string[]): Promise<{ outputs: WireTensor[], inferenceMs: number }> {
    const feeds: Record<string, Tensor> = {}
    for (const input of inputs) {
      if (!session.inputNames.includes(input.name)) {
        throw new TaskError('bad-request', `model has no input "${input.name}" (inputs: ${session.inputNames.join(', ')})`)
      }
      feeds[input.name] = new this.ort.Tensor(input.dtype, toTypedArray(input), input.dims)
    }
    const missing = session.inputNames.filter(n => feeds[n] == null)
    if (missing.length > 0) throw new TaskError('bad-request', `missing input(s): ${missing.join(', ')}`)
    const unknown = outputNames.filter(n => !session.outputNames.includes(n))
    if (unknown.length > 0) throw new TaskError('bad-request', `model has no output(s) ${unknown.join(', ')}`)

    const inferStart = performance.now()
    let results: InferenceSession.OnnxValueMapType
    try {
      results = outputNames.length > 0
        ? await session.run(feeds, outputNames)
        : await session.run(feeds)
    } catch (err) {
      throw new TaskError('inference-failed', `onnxruntime: ${(err as Error).message}`)
    }
    const inferenceMs = performance.now() - inferStart
    return { outputs: Object.entries(results).map(([name, value]) => toWire(name, value as Tensor)), inferenceMs }
  }

  /** Tasks sharing a batchKey: stacked runs (within the output bound) when the session allows, else (or on any failure of one) a run each. */
  private async runGroup (entry: CachedSession, requests: TaskRequest[], budget: OutputBudget): Promise<BatchOutcome[]> {
    const each = async (tasks: TaskRequest[]): Promise<BatchOutcome[]> => {
      const outcomes: BatchOutcome[] = []
      for (const r of tasks) {
        if (budget.left <= 0) {
          outcomes.push(new NotRunInBatch())
          continue
        }
        const outcome = await this.run(entry, r).catch((err: unknown) => toTaskError(err, 'inference-failed'))
        if (!(outcome instanceof Error)) budget.left -= outputBytes(outcome.outputs)
        outcomes.push(outcome)
      }
      return outcomes
    }
    if (requests.length < 2 || entry.stacks === false) return await each(requests)
    const loadStart = performance.now()
    let session: InferenceSession
    try {
      session = await entry.session
    } catch (err) {
      // A model that cannot load fails every task the same way.
      const e = toTaskError(err, 'inference-failed')
      return requests.map(() => e)
    }
    const loadMs = performance.now() - loadStart
    if (!hasFreeBatchDim(session)) return await each(requests)

    const outcomes: BatchOutcome[] = []
    let rest = requests
    while (rest.length > 0) {
      if (budget.left <= 0) {
        outcomes.push(...rest.map(() => new NotRunInBatch()))
        break
      }
      const part = rest.slice(0, this.fitting(entry, rest, budget.left))
      rest = rest.slice(part.length)
      outcomes.push(...(part.length < 2 ? await each(part) : await this.stacked(entry, session, part, loadMs, each, budget)))
    }
    return outcomes
  }

  /** How many of `requests` (at least one) one stacked run takes, its outputs within `left` bytes: one alone while the session's output bytes per row are unknown. */
  private fitting (entry: CachedSession, requests: TaskRequest[], left: number): number {
    const rowBytes = entry.rowOutputBytes.get(requests[0].outputNames.join('\0'))
    if (rowBytes == null) return 1
    let n = 0
    let rows = 0
    while (n < requests.length && (n === 0 || (rows + requests[n].inputs[0].dims[0]) * rowBytes <= left)) rows += requests[n++].inputs[0].dims[0]
    return n
  }

  /** One stacked run of tasks (two or more), checked against runs of each alone until the session has passed that check. */
  private async stacked (entry: CachedSession, session: InferenceSession, requests: TaskRequest[], loadMs: number, each: (tasks: TaskRequest[]) => Promise<BatchOutcome[]>, budget: OutputBudget): Promise<BatchOutcome[]> {
    // An earlier part of the batch may have shown the model mixing rows.
    if (entry.stacks === false) return await each(requests)
    const rows = requests.map(r => r.inputs[0].dims[0])
    const total = rows.reduce((a, b) => a + b, 0)
    const inputs = stackInputs(requests, total)
    // Identical rows prove nothing (a batch mean is the row itself), and an unchecked stacked run
    // would need a run of each task beside it anyway: run each alone, once, instead of both.
    if (entry.stacks == null && !distinctRows(inputs, total)) return await each(requests)
    let stacked: { outputs: WireTensor[], inferenceMs: number }
    try {
      stacked = await this.infer(session, inputs, requests[0].outputNames)
    } catch {
      return await each(requests)
    }
    const split = splitOutputs(stacked.outputs, rows, total)
    if (split == null) return await each(requests)
    learnRowBytes(entry, requests[0].outputNames, stacked.outputs, total)

    if (entry.stacks == null) {
      // Until a stacked run with rows that differ has matched, each task also runs alone: a model
      // whose rows depend on each other (its results would differ from any other worker's) is
      // never stacked again.
      const alone = await each(requests)
      // A task failing alone (its deadline, a worker under pressure) says nothing about the model: the check waits for another batch.
      if (alone.some(r => r instanceof Error)) return alone
      entry.stacks = alone.every((r, i) => sameRows((r as ExecutionResult).outputs, split[i]))
      if (!entry.stacks) return alone
    } else {
      budget.left -= outputBytes(stacked.outputs)
    }
    return split.map((outputs, i) => ({
      outputs,
      loadMs,
      // The run's time, shared by rows: what the task cost.
      inferenceMs: stacked.inferenceMs * rows[i] / total,
      backend: this.backend,
      threads: this.threads
    }))
  }

  /** The cached session for a model, marked in use; a warm-up run happens before it is handed out (runs must not overlap on WebGPU). */
  private use (ref: ModelRef, warmup?: WireTensor[], from?: string): CachedSession {
    let entry = this.sessions.get(ref.sha256)
    if (entry == null) {
      const created = { bytes: ref.size, lastUsed: 0, users: 0, dropped: false, rowOutputBytes: new Map() } as CachedSession
      created.session = this.load(created, ref, warmup, from)
      // A failed load is not cached: the next task may succeed (e.g. the model became available).
      created.session.catch(() => { if (this.sessions.get(ref.sha256) === created) this.sessions.delete(ref.sha256) })
      this.sessions.set(ref.sha256, created)
      entry = created
    }
    entry.users++
    entry.lastUsed = ++this.uses
    return entry
  }

  private async load (entry: CachedSession, ref: ModelRef, warmup?: WireTensor[], from?: string): Promise<InferenceSession> {
    const bytes = this.prevalidated ? await fetchModelBytes(ref, this.fetchModel, from) : await fetchVerifiedModel(ref, this.fetchModel, from)
    entry.bytes = bytes.byteLength
    let session: InferenceSession
    try {
      session = await this.ort.InferenceSession.create(bytes, this.sessionOptions)
    } catch (err) {
      throw new TaskError('inference-failed', `onnxruntime could not load the model: ${(err as Error).message}`)
    }
    if (warmup != null) {
      await session.run(Object.fromEntries(warmup.map(t => [t.name, new this.ort.Tensor(t.dtype, toTypedArray(t), t.dims)])))
        .catch(() => {}) // a failed warm-up only means the first task is slower
    }
    return session
  }

  /** Ends one use of a session, then keeps the cache within its budget. */
  private done (entry: CachedSession): void {
    entry.users--
    if (entry.dropped && entry.users === 0) void this.free(entry)
    this.trim()
  }

  /**
   * Releases idle sessions, least recently used first, until the cached model bytes fit the
   * budget and the sessions the count; the most recently used one stays even if it alone is
   * larger (its next task would only load it again).
   */
  private trim (): void {
    let total = this.cachedBytes
    const fits = (): boolean => total <= this.budget && this.sessions.size <= this.maxSessions
    if (fits()) return
    const idle = [...this.sessions].filter(([, e]) => e.users === 0 && e.lastUsed !== this.uses).sort(([, a], [, b]) => a.lastUsed - b.lastUsed)
    for (const [sha, entry] of idle) {
      if (fits()) return
      this.sessions.delete(sha)
      total -= entry.bytes
      void this.free(entry)
    }
  }

  private async free (entry: CachedSession): Promise<void> {
    const session = await entry.session.catch(() => undefined)
    await session?.release().catch(() => {})
  }
}

/** Records a run's output bytes per input row (the largest seen) for these output names. */
function learnRowBytes (entry: CachedSession, outputNames: string[], outputs: WireTensor[], rows: number): void {
  if (!(rows > 0)) return
  const key = outputNames.join('\0')
  const perRow = Math.ceil(outputs.reduce((n, o) => n + o.data.byteLength, 0) / rows)
  entry.rowOutputBytes.set(key, Math.max(entry.rowOutputBytes.get(key) ?? 0, perRow))
}

/** Every input and output of the model has a symbolic first dim (onnxruntime names it; a fixed size is a number). */
function hasFreeBatchDim (session: InferenceSession): boolean {
  const all = [...session.inputMetadata ?? [], ...session.outputMetadata ?? []]
  return all.length > 0 && all.length === session.inputNames.length + session.outputNames.length &&
    all.every(m => m.isTensor && m.shape.length > 0 && typeof m.shape[0] === 'string')
}

/** Each input of the tasks (same names, dtypes and dims past the first: their batchKey) concatenated along the first dim. */
function stackInputs (requests: TaskRequest[], total: number): WireTensor[] {
  return requests[0].inputs.map(first => {
    const parts = requests.map(r => r.inputs.find(t => t.name === first.name)!.data)
    const data = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
    let at = 0
    for (const p of parts) { data.set(p, at); at += p.byteLength }
    return { name: first.name, dtype: first.dtype, dims: [total, ...first.dims.slice(1)], data }
  })
}

/** Each task's rows of every output (own buffers), or undefined if an output is not one row per input row. */
function splitOutputs (outputs: WireTensor[], rows: number[], total: number): WireTensor[][] | undefined {
  if (outputs.some(o => o.dims.length === 0 || o.dims[0] !== total || o.data.byteLength % total !== 0)) return undefined
  let row = 0
  return rows.map(n => {
    const from = row
    row += n
    return outputs.map(o => {
      const rowBytes = o.data.byteLength / total
      return { name: o.name, dtype: o.dtype, dims: [n, ...o.dims.slice(1)], data: o.data.slice(from * rowBytes, row * rowBytes) }
    })
  })
}

/** Whether some stacked row differs from the first (identical rows cannot show a model mixing rows). */
function distinctRows (inputs: WireTensor[], total: number): boolean {
  return inputs.some(t => {
    const rowBytes = t.data.byteLength / total
    for (let i = rowBytes; i < t.data.byteLength; i++) if (t.data[i] !== t.data[i % rowBytes]) return true
    return false
  })
}

function toWire (name: string, t: Tensor): WireTensor {
  if (t.type === 'string' || !ArrayBuffer.isView(t.data)) {
    throw new TaskError('inference-failed', `output "${name}" has type ${t.type}, which the protocol cannot carry`)
  }
  const data = t.data as ArrayBufferView
  return {
    name,
    dtype: t.type as DTypeName,
    dims: [...t.dims],
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  }
}

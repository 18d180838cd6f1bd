/**
 * Worker-side admission: at most `slots` tasks run at once and at most `maxQueued` wait, shared
 * fairly among the requesters that have work here, and waiting tasks are served round-robin
 * across requesters. Anything beyond that is answered `busy` at once rather than queued without
 * bound.
 *
 * Fair shares: while there is room anyone is admitted (a lone requester may use the whole
 * worker). Once every place (slots + queue) is taken, a requester holding less than its share
 * (places ÷ requesters with work here, the newcomer included) is still admitted, and the newest
 * waiting task of whoever holds the most above its share is answered `busy` to make room. So no
 * requester can make another's first tasks `busy`, and the memory held stays bounded.
 *
 * Deadlines: a task's deadline (its `timeoutMs`, at most `maxTimeoutMs`) covers waiting and
 * running. A running task past it frees its slot at once and its executor is told to stop
 * (AbortSignal): the slot never stays held by work nobody will accept.
 *
 * Batches: when the executor can run several tasks in one call (`executeMany`: one session.run
 * over stacked inputs where the model has a free batch dimension, and one message to the
 * inference process either way), a slot that frees takes the next task round-robin as before plus
 * the waiting tasks of the same requester that look the same (`batchKey`: same model, output
 * names, input names, dtypes and dims past the first), up to `batch.maxTasks` tasks and
 * `batch.maxInputBytes` of inputs. Only what already waits is taken: a batch never waits for more
 * tasks. Tasks of different requesters are never put in one run, so no requester's inputs can
 * reach another's outputs through a model that mixes rows. Each task of a batch keeps its own
 * outcome, timings and deadline: one past its deadline fails alone, and the run is told to stop
 * (its slot freed) only once every task in it has.
 */
import { TaskError, toTaskError } from './errors.js'
import { systemClock } from './clock.js'
import type { Clock } from './clock.js'
import type { TaskRequest, TaskResult } from './task-types.js'
import type { WireTensor } from './tensor.js'

/**
 * The requester name of this peer's own tasks: its own jobs' tasks and the spot checks it
 * recomputes (the job runner's LOCAL_PEER). A volunteer's pause means "no work for others": these
 * still run, or a paused tab would skip its own spot checks (no verdict) and stall its own jobs.
 * A remote requester is named by its peer id, which is never this word.
 */
export const OWN_REQUESTER = 'self'

/** Largest deadline a task may ask for; longer ones are clamped to it (a slot is never held for longer). */
export const MAX_TIMEOUT_MS = 10 * 60_000
/**
 * Deadlines asked below this are raised to it: a deadline stops the running work, which on a Node
 * worker means replacing an inference process, and a requester must not make every task do that.
 */
export const MIN_TIMEOUT_MS = 1000

/** Most tasks one executor call takes by default (see WorkQueueOptions.batch). */
export const DEFAULT_BATCH_TASKS = 16
/**
 * Most input bytes one batch stacks by default. Stacking pays for small, quick tasks (digits: ~4×
 * less time per task at 8 and more on a Node worker) and not for big ones (OCR recognition lines,
 * 184 KB each, ran no faster stacked): scripts/bench-stacking.ts.
 */
export const DEFAULT_BATCH_INPUT_BYTES = 256 * 1024

export interface ExecutionResult {
  outputs: WireTensor[]
  loadMs: number
  inferenceMs: number
  backend: string
  threads: number
}

/** One task's outcome in a batch: its result, or why it alone failed. */
export type BatchOutcome = ExecutionResult | TaskError

/** Runs one task's model; the browser binds it to a Web Worker, Node to onnxruntime-node. */
export interface Executor {
  /**
   * `requester` is the peer that sent the task: the first place to fetch a missing model from.
   * `signal` aborts when the task's deadline passes: stop the work (its slot is already given to
   * the next task) and reject with `signal.reason`.
   */
  execute(request: TaskRequest, requester: string, signal?: AbortSignal): Promise<ExecutionResult>
  /**
   * Runs tasks of one requester that share a `batchKey` in one call (stacked into one run where
   * the model allows it); resolves with one outcome per request, in order: a task that fails
   * does not fail the others. `signal` aborts once every task's deadline has passed. Rejects
   * only when no task could be run at all (every task then fails with that error).
   */
  executeMany?(requests: TaskRequest[], requester: string, signal?: AbortSignal): Promise<BatchOutcome[]>
}

/**
 * What tasks must share to be stacked into one run: model, output names, and per input its name,
 * dtype and dims past the first; undefined when a task cannot be stacked at all (a scalar input,
 * inputs whose first dims differ, or a repeated input name).
 */
export function batchKey (request: TaskRequest): string | undefined {
  const inputs = [...request.inputs].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  const rows = inputs[0]?.dims[0]
  if (rows == null) return undefined
  for (let i = 0; i < inputs.length; i++) {
    if (inputs[i].dims.length === 0 || inputs[i].dims[0] !== rows) return undefined
    if (i > 0 && inputs[i].name === inputs[i - 1].name) return undefined
  }
  return JSON.stringify([request.model.sha256, request.outputNames, inputs.map(t => [t.name, t.dtype, t.dims.slice(1)])])
}

/** Stacking on (the default) or off; see WorkQueueOptions.batch. */
export interface BatchOptions {
  /** Most tasks in one executor call (default DEFAULT_BATCH_TASKS; 1 turns batching off). */
  maxTasks?: number
  /** Most input bytes in one executor call; a task bigger than this runs alone (default DEFAULT_BATCH_INPUT_BYTES). */
  maxInputBytes?: number
}

export type WorkState = 'queued' | 'running' | 'done' | 'failed'

export interface WorkEvent {
  taskId: string
  jobId: string
  requester: string
  /** Model name for display, and its sha256. */
  model: string
  sha256: string
  state: WorkState
  error?: TaskError
  result?: TaskResult
  /** Wall-clock ms since the epoch the task started running (on 'running', and on 'done'/'failed' of a task that ran). */
  startedAt?: number
  /** Wall-clock ms since the epoch the task ended (on 'done', and on 'failed' of a task that ran). */
  endedAt?: number
}

/** A result as the queue hands it back: with when it ran by the worker's wall clock (what a receipt states). */
export interface WorkResult extends TaskResult {
  /** Wall-clock ms since the epoch. */
  startedAt: number
  endedAt: number
}

export interface WorkQueueOptions {
  slots?: number
  maxQueued?: number
  /** Deadline of a task that asks for none (0). */
  defaultTimeoutMs?: number
  /** Deadlines asked above this are clamped to it (default MAX_TIMEOUT_MS). */
  maxTimeoutMs?: number
  clock?: Clock
  /**
   * Several waiting tasks per executor call when the executor has `executeMany`: on unless
   * `false` (or `maxTasks: 1`). See the header.
   */
  batch?: BatchOptions | false
  /** Wall clock for `startedAt`/`endedAt` (default Date.now). */
  wallClock?: () => number
  onEvent?: (event: WorkEvent) => void
}

interface Job {
  request: TaskRequest
  requester: string
  receivedAt: number
  deadline: unknown
  resolve: (r: WorkResult) => void
  reject: (e: TaskError) => void
  settled: boolean
  /** Its batchKey, when batching is on (undefined: runs alone). */
  key?: string
  /** Its input bytes. */
  bytes: number
  /** Set while it holds a slot (shared by every task of its batch). */
  run?: Run
}

/** One executor call: a slot, held until every task in it has finished or timed out. */
interface Run {
  controller: AbortController
  startedAt: number
  wallStartedAt: number
  /** Tasks of the run still holding it. */
  live: number
}

export class WorkQueue {
  private readonly executor: Executor
  private readonly clock: Clock
  private readonly wallClock: () => number
  private readonly maxQueued: number
  private readonly defaultTimeoutMs: number
  private readonly maxTimeoutMs: number
  private readonly onEvent: (event: WorkEvent) => void
  private readonly maxBatchTasks: number
  private readonly maxBatchBytes: number
  /** Waiting jobs per requester; Map order is the round-robin order. */
  private readonly waiting = new Map<string, Job[]>()
  /** Running jobs per requester. */
  private readonly runningBy = new Map<string, number>()
  private queuedCount = 0
  private runningCount = 0
  /** Executor calls in progress (each holds a slot; a batch is one). */
  private activeRuns = 0
  slots: number
  /** A paused worker finishes what it runs and answers new tasks from others with `busy` (its own still run). */
  paused = false

  constructor (executor: Executor, options: WorkQueueOptions = {}) {
    this.executor = executor
    this.clock = options.clock ?? systemClock
    this.wallClock = options.wallClock ?? Date.now
    this.slots = options.slots ?? 1
    this.maxQueued = options.maxQueued ?? 32
    this.maxTimeoutMs = options.maxTimeoutMs ?? MAX_TIMEOUT_MS
    this.defaultTimeoutMs = Math.min(options.defaultTimeoutMs ?? 60_000, this.maxTimeoutMs)
    this.onEvent = options.onEvent ?? (() => {})
    const batch = options.batch === false ? { maxTasks: 1 } : options.batch ?? {}
    // A batch is taken from the waiting tasks, and workers advertise a batch's worth queued: never more than may wait.
    this.maxBatchTasks = executor.executeMany == null ? 1 : Math.max(1, Math.min(Math.max(1, this.maxQueued), Math.floor(batch.maxTasks ?? DEFAULT_BATCH_TASKS)))
    this.maxBatchBytes = batch.maxInputBytes ?? DEFAULT_BATCH_INPUT_BYTES
  }

  /** Most tasks one slot runs at once (1 unless batching is on and the executor can batch). */
  get batchTasks (): number {
    return this.maxBatchTasks
  }

  get running (): number {
    return this.runningCount
  }

  get queued (): number {
    return this.queuedCount
  }

  /** Admits a task or throws `busy`; resolves with its result once run. */
  async submit (request: TaskRequest, requester: string): Promise<WorkResult> {
    if (this.paused && requester !== OWN_REQUESTER) throw new TaskError('busy', 'this worker is paused by its volunteer')
    this.admit(requester)
    const asked = request.timeoutMs > 0 ? request.timeoutMs : this.defaultTimeoutMs
    const timeoutMs = Math.max(MIN_TIMEOUT_MS, Math.min(asked, this.maxTimeoutMs))
    const capped = asked > timeoutMs
      ? ` (asked ${asked} ms; this worker allows at most ${this.maxTimeoutMs} ms)`
      : asked < timeoutMs ? ` (asked ${asked} ms; this worker allows no less than ${MIN_TIMEOUT_MS} ms)` : ''
    return await new Promise<WorkResult>((resolve, reject) => {
      const bytes = request.inputs.reduce((n, t) => n + t.data.byteLength, 0)
      const key = this.maxBatchTasks > 1 && bytes <= this.maxBatchBytes ? batchKey(request) : undefined
      const job: Job = { request, requester, receivedAt: this.clock.now(), deadline: undefined, resolve, reject, settled: false, key, bytes }
      job.deadline = this.clock.setTimeout(() => {
        this.dequeue(job)
        const err = new TaskError('timeout', `task did not finish within ${timeoutMs} ms on the worker${capped}`)
        // The slot is free for the next task now; the executor is told to stop what it runs.
        const startedAt = job.run?.wallStartedAt
        this.releaseSlot(job)?.abort(err)
        this.finish(job, err, startedAt)
        this.pump()
      }, timeoutMs)
      const list = this.waiting.get(requester) ?? []
      list.push(job)
      this.waiting.set(requester, list)
      this.queuedCount++
      this.emit(job, 'queued')
      this.pump()
    })
  }

  /** Drops a task that has not started yet; returns whether it was found waiting. */
  cancel (taskId: string, requester: string): boolean {
    const job = this.waiting.get(requester)?.find(j => j.request.taskId === taskId)
    if (job == null) return false
    this.dequeue(job)
    this.finish(job, new TaskError('timeout', 'cancelled by the requester'))
    return true
  }

  /** Tasks a requester has here, waiting or running. */
  private held (requester: string): number {
    return (this.waiting.get(requester)?.length ?? 0) + (this.runningBy.get(requester) ?? 0)
  }

  /** Throws `busy` unless `requester` may add a task; makes room by dropping another's excess if it must. */
  private admit (requester: string): void {
    const places = this.slots + this.maxQueued
    if (this.runningCount + this.queuedCount < places) return
    const active = new Set([...this.waiting.keys(), ...this.runningBy.keys(), requester])
    const share = Math.max(1, Math.floor(places / active.size))
    const full = `worker queue is full (${this.queuedCount} waiting, ${this.runningCount} running)`
    if (this.held(requester) >= share) {
      throw new TaskError('busy', `${full}; ${active.size} requesters share it, ${share} place(s) each`)
    }
    // Whoever holds the most above its share gives up its newest waiting task.
    let victim: Job[] | undefined
    let most = share
    for (const [other, list] of this.waiting) {
      const n = this.held(other)
      if (other !== requester && n > most) { most = n; victim = list }
    }
    if (victim == null) throw new TaskError('busy', full)
    const job = victim[victim.length - 1]
    this.dequeue(job)
    this.finish(job, new TaskError('busy', `dropped from a full worker queue to make room for another requester (${share} place(s) each)`))
  }

  private dequeue (job: Job): void {
    const list = this.waiting.get(job.requester)
    const i = list?.indexOf(job) ?? -1
    if (list == null || i < 0) return
    list.splice(i, 1)
    this.queuedCount--
    if (list.length === 0) this.waiting.delete(job.requester)
  }

  private next (): Job | undefined {
    for (const [requester, list] of this.waiting) {
      const job = list.shift()!
      this.queuedCount--
      // Move this requester to the back so the next slot goes to someone else.
      this.waiting.delete(requester)
      if (list.length > 0) this.waiting.set(requester, list)
      return job
    }
    return undefined
  }

  private pump (): void {
    while (this.activeRuns < this.slots) {
      const job = this.next()
      if (job == null) return
      void this.start([job, ...this.companions(job)])
    }
  }

  /** Waiting tasks of `first`'s requester that can share its run, oldest first, taken out of the queue. */
  private companions (first: Job): Job[] {
    const list = first.key == null ? undefined : this.waiting.get(first.requester)
    if (list == null) return []
    const taken: Job[] = []
    let bytes = first.bytes
    for (let i = 0; i < list.length && taken.length + 1 < this.maxBatchTasks; i++) {
      const job = list[i]
      if (job.key !== first.key || bytes + job.bytes > this.maxBatchBytes) continue
      bytes += job.bytes
      taken.push(job)
    }
    for (const job of taken) this.dequeue(job)
    return taken
  }

  /** Gives a running job's place back (once); returns its run's abort controller if that freed the run's slot. */
  private releaseSlot (job: Job): AbortController | undefined {
    const run = job.run
    if (run == null) return undefined
    job.run = undefined
    this.runningCount--
    const n = (this.runningBy.get(job.requester) ?? 1) - 1
    if (n > 0) this.runningBy.set(job.requester, n)
    else this.runningBy.delete(job.requester)
    if (--run.live > 0) return undefined
    this.activeRuns--
    return run.controller
  }

  private async start (jobs: Job[]): Promise<void> {
    const run: Run = { controller: new AbortController(), startedAt: this.clock.now(), wallStartedAt: this.wallClock(), live: jobs.length }
    this.activeRuns++
    for (const job of jobs) {
      job.run = run
      this.runningCount++
      this.runningBy.set(job.requester, (this.runningBy.get(job.requester) ?? 0) + 1)
      this.emit(job, 'running', { startedAt: run.wallStartedAt })
    }
    const { signal } = run.controller
    try {
      const outcomes = jobs.length === 1
        ? [await this.executor.execute(jobs[0].request, jobs[0].requester, signal)]
        : await this.executor.executeMany!(jobs.map(j => j.request), jobs[0].requester, signal)
      if (outcomes.length !== jobs.length) throw new TaskError('inference-failed', `the executor answered ${outcomes.length} outcomes for ${jobs.length} tasks`)
      const now = this.clock.now()
      const endedAt = this.wallClock()
      jobs.forEach((job, i) => {
        const r = outcomes[i]
        if (r instanceof Error) {
          this.finish(job, toTaskError(r, 'inference-failed'), run.wallStartedAt)
          return
        }
        this.finish(job, {
          outputs: r.outputs,
          backend: r.backend,
          threads: r.threads,
          timings: { queueMs: run.startedAt - job.receivedAt, loadMs: r.loadMs, inferenceMs: r.inferenceMs, totalMs: now - job.receivedAt },
          startedAt: run.wallStartedAt,
          endedAt
        }, run.wallStartedAt)
      })
    } catch (err) {
      const e = toTaskError(err, 'inference-failed')
      for (const job of jobs) this.finish(job, e, run.wallStartedAt)
    } finally {
      // Tasks past their deadline gave their place back already; the slot frees with the last.
      let freed = false
      for (const job of jobs) if (this.releaseSlot(job) != null) freed = true
      if (freed) this.pump()
    }
  }

  private finish (job: Job, outcome: WorkResult | TaskError, startedAt?: number): void {
    if (job.settled) return
    job.settled = true
    this.clock.clearTimeout(job.deadline)
    if (outcome instanceof TaskError) {
      job.reject(outcome)
      this.emit(job, 'failed', { error: outcome, ...(startedAt != null ? { startedAt, endedAt: this.wallClock() } : {}) })
    } else {
      job.resolve(outcome)
      this.emit(job, 'done', { result: outcome, startedAt: outcome.startedAt, endedAt: outcome.endedAt })
    }
  }

  private emit (job: Job, state: WorkState, extra: Partial<WorkEvent> = {}): void {
    const { taskId, jobId, model } = job.request
    this.onEvent({ taskId, jobId, requester: job.requester, model: model.name || model.sha256.slice(0, 12), sha256: model.sha256, state, ...extra })
  }
}

/**
 * Worker-side admission: at most `slots` tasks run at once, at most `maxQueued` wait, and
 * waiting tasks are served round-robin across requesters so one requester cannot starve others.
 * Anything beyond that is answered `busy` at once rather than queued without bound.
 */
import { TaskError, toTaskError } from './errors.js'
import { systemClock } from './clock.js'
import type { Clock } from './clock.js'
import type { TaskRequest, TaskResult } from './task-types.js'
import type { WireTensor } from './tensor.js'

export interface ExecutionResult {
  outputs: WireTensor[]
  loadMs: number
  inferenceMs: number
  backend: string
  threads: number
}

/** Runs one task's model; the browser binds it to a Web Worker, Node to onnxruntime-node. */
export interface Executor {
  /** `requester` is the peer that sent the task: the first place to fetch a missing model from. */
  execute(request: TaskRequest, requester: string): Promise<ExecutionResult>
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
}

export interface WorkQueueOptions {
  slots?: number
  maxQueued?: number
  defaultTimeoutMs?: number
  clock?: Clock
  onEvent?: (event: WorkEvent) => void
}

interface Job {
  request: TaskRequest
  requester: string
  receivedAt: number
  deadline: unknown
  resolve: (r: TaskResult) => void
  reject: (e: TaskError) => void
  settled: boolean
}

export class WorkQueue {
  private readonly executor: Executor
  private readonly clock: Clock
  private readonly maxQueued: number
  private readonly defaultTimeoutMs: number
  private readonly onEvent: (event: WorkEvent) => void
  /** Waiting jobs per requester; Map order is the round-robin order. */
  private readonly waiting = new Map<string, Job[]>()
  private queuedCount = 0
  private runningCount = 0
  slots: number
  /** A paused worker finishes what it runs and answers new tasks with `busy`. */
  paused = false

  constructor (executor: Executor, options: WorkQueueOptions = {}) {
    this.executor = executor
    this.clock = options.clock ?? systemClock
    this.slots = options.slots ?? 1
    this.maxQueued = options.maxQueued ?? 32
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000
    this.onEvent = options.onEvent ?? (() => {})
  }

  get running (): number {
    return this.runningCount
  }

  get queued (): number {
    return this.queuedCount
  }

  /** Admits a task or throws `busy`; resolves with its result once run. */
  async submit (request: TaskRequest, requester: string): Promise<TaskResult> {
    if (this.paused) throw new TaskError('busy', 'this worker is paused by its volunteer')
    // A free slot always admits (the task starts at once); only a full worker with a full queue is busy.
    if (this.runningCount >= this.slots && this.queuedCount >= this.maxQueued) {
      throw new TaskError('busy', `worker queue is full (${this.queuedCount} waiting, ${this.runningCount} running)`)
    }
    const timeoutMs = request.timeoutMs > 0 ? request.timeoutMs : this.defaultTimeoutMs
    return await new Promise<TaskResult>((resolve, reject) => {
      const job: Job = { request, requester, receivedAt: this.clock.now(), deadline: undefined, resolve, reject, settled: false }
      job.deadline = this.clock.setTimeout(() => {
        this.dequeue(job)
        this.finish(job, new TaskError('timeout', `task did not finish within ${timeoutMs} ms on the worker`))
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
    while (this.runningCount < this.slots) {
      const job = this.next()
      if (job == null) return
      void this.start(job)
    }
  }

  private async start (job: Job): Promise<void> {
    this.runningCount++
    const startedAt = this.clock.now()
    this.emit(job, 'running')
    try {
      const r = await this.executor.execute(job.request, job.requester)
      const now = this.clock.now()
      this.finish(job, {
        outputs: r.outputs,
        backend: r.backend,
        threads: r.threads,
        timings: { queueMs: startedAt - job.receivedAt, loadMs: r.loadMs, inferenceMs: r.inferenceMs, totalMs: now - job.receivedAt }
      })
    } catch (err) {
      this.finish(job, toTaskError(err, 'inference-failed'))
    } finally {
      this.runningCount--
      this.pump()
    }
  }

  private finish (job: Job, outcome: TaskResult | TaskError): void {
    if (job.settled) return
    job.settled = true
    this.clock.clearTimeout(job.deadline)
    if (outcome instanceof TaskError) {
      job.reject(outcome)
      this.emit(job, 'failed', { error: outcome })
    } else {
      job.resolve(outcome)
      this.emit(job, 'done', { result: outcome })
    }
  }

  private emit (job: Job, state: WorkState, extra: Partial<WorkEvent> = {}): void {
    const { taskId, jobId, model } = job.request
    this.onEvent({ taskId, jobId, requester: job.requester, model: model.name || model.sha256.slice(0, 12), sha256: model.sha256, state, ...extra })
  }
}

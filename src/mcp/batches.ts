/**
 * The batch jobs an agent starts through the MCP server: how many run at once (each holds its
 * inputs in memory), the reason each failed task gave (the store keeps only results), and jobs
 * from an earlier session, which continue when the agent asks about them. Results are read from
 * the job store a page at a time, in input order, as far as they are decided.
 */
import { RequesterError, isTerminalState } from '../index.js'
import { failureText } from '../node/requester-job.js'
import { tensorToJson } from '../models/tensor-output.js'
import { MAX_PAGE_CHARS, MAX_RUNNING_BATCHES } from './limits.js'
import { resultJson } from './outputs.js'
import type { Job, JobMeta, JobState, Requester, SubmitOptions, TaskInputs } from '../index.js'
import type { ResultJson } from './outputs.js'

interface Tracked {
  job: Job
  /** Why each failed task failed, by index (heard while the job ran in this process). */
  failures: Map<number, string>
}

export interface OpenJob extends Tracked {
  /** Set when a job from an earlier session could not continue yet. */
  note?: string
}

export interface JobStatus {
  job_id: string
  state: JobState
  /** Whether it is running in this server now. */
  running: boolean
  model: string
  total: number
  done: number
  failed: number
  in_flight: number
  tasks_per_sec: number
  /** null while no rate is known. */
  eta_seconds: number | null
  /** Workers that returned results in this run. */
  workers: number
  /** Present while the job cannot progress: why, in words ("needs 3 different workers, 1 available"), and since when (ms since 1970). */
  blocked?: { code: string, message: string, since_ms: number }
  error?: string
  note?: string
}

export interface ResultsPage {
  job_id: string
  state: JobState
  total: number
  results: ResultJson[]
  /** Where the next page starts. */
  next_offset: number
  /** Every result up to the end of the job has been handed out. */
  complete: boolean
}

/** Finished jobs whose failure reasons are kept, oldest forgotten first. */
const KEEP_FINISHED = 256

// A job in a terminal state is over for good; any other that is not running was stopped and can continue.
const isOver = isTerminalState

export class Batches {
  private readonly tracked = new Map<string, Tracked>()
  private readonly resuming = new Map<string, Promise<OpenJob>>()
  private running = 0

  constructor (private readonly requester: Requester) {}

  /** Starts a batch kept in the job store; RequesterError 'busy' when MAX_RUNNING_BATCHES are running. */
  async start (model: string, inputs: Iterable<TaskInputs> | AsyncIterable<TaskInputs>, options: SubmitOptions): Promise<Job> {
    this.reserve()
    try {
      const job = await this.requester.submit(model, inputs, options)
      this.track(job)
      return job
    } catch (err) {
      this.running--
      throw err
    }
  }

  /** A job by id: running here, finished, or from an earlier session (continued now when there is room). */
  async open (jobId: string): Promise<OpenJob> {
    const known = this.tracked.get(jobId)
    if (known != null) return known
    const pending = this.resuming.get(jobId)
    if (pending != null) return await pending
    const job = await this.requester.job(jobId)
    if (isOver(job.meta.state)) return { job, failures: new Map() }
    // One resume per job however many calls ask at once: two would run it twice.
    const resume = this.resume(job).finally(() => { this.resuming.delete(jobId) })
    this.resuming.set(jobId, resume)
    return await resume
  }

  status (open: OpenJob): JobStatus {
    const { job, note } = open
    const meta = job.meta
    const p = job.progress
    return {
      job_id: job.id,
      state: meta.state,
      running: !job.finished,
      model: meta.model.name,
      total: p.total,
      done: p.done,
      failed: p.failed,
      in_flight: p.inFlight,
      tasks_per_sec: Math.round(p.tasksPerSec * 10) / 10,
      eta_seconds: Number.isFinite(p.etaSeconds) ? Math.round(p.etaSeconds) : null,
      workers: Object.keys(p.perPeer).length,
      ...(p.blocked != null ? { blocked: { code: p.blocked.code, message: p.blocked.message, since_ms: p.blocked.sinceMs } } : {}),
      ...(meta.error != null ? { error: meta.error } : {}),
      ...(note != null ? { note } : {})
    }
  }

  /**
   * Results from `offset` in input order, up to `limit` and MAX_PAGE_CHARS of JSON, stopping at
   * the first task not decided yet. A failed task is { index, error }.
   */
  async page (open: OpenJob, offset: number, limit: number): Promise<ResultsPage> {
    const { job, failures } = open
    const meta: JobMeta = job.meta
    const total = meta.taskCount
    const over = job.finished && isOver(meta.state)
    const stored = new Map((await job.storedResults()).filter(r => r.index >= offset && r.index < offset + limit).map(r => [r.index, r]))
    const results: ResultJson[] = []
    let chars = 0
    for (let i = offset; i < Math.min(total, offset + limit); i++) {
      const r = stored.get(i)
      const failure = failures.get(i)
      let item: ResultJson
      if (r != null) item = resultJson({ index: i, outputs: r.outputs.map(tensorToJson), agreedBy: r.agreedBy })
      else if (failure != null) item = { index: i, error: failure }
      else if (over) item = { index: i, error: meta.error ?? 'not decided' }
      else break
      chars += JSON.stringify(item).length
      if (chars > MAX_PAGE_CHARS && results.length > 0) break
      results.push(item)
    }
    const next = offset + results.length
    return { job_id: job.id, state: meta.state, total, results, next_offset: next, complete: next >= total && over }
  }

  /** Stops a job for good (it ends cancelled); its decided results stay. */
  async cancel (jobId: string): Promise<JobMeta> {
    const job = this.tracked.get(jobId)?.job ?? await this.requester.job(jobId)
    return await job.cancel()
  }

  private reserve (): void {
    if (this.running >= MAX_RUNNING_BATCHES) {
      throw new RequesterError('busy', `${this.running} batches are running, at most ${MAX_RUNNING_BATCHES} at once: wait for one to end (job_status with wait_seconds) or cancel one`)
    }
    this.running++
  }

  private async resume (stopped: Job): Promise<OpenJob> {
    try {
      this.reserve()
    } catch (err) {
      return { job: stopped, failures: new Map(), note: `not running: ${(err as Error).message}; it continues when asked about again` }
    }
    try {
      const job = await this.requester.resume(stopped.id)
      return this.track(job)
    } catch (err) {
      this.running--
      throw err
    }
  }

  /** Follows a running job (its slot is given back when it ends). */
  private track (job: Job): Tracked {
    const tracked: Tracked = { job, failures: new Map() }
    const onFailed = (e: Event): void => {
      const detail = (e as CustomEvent<Parameters<typeof failureText>[0] & { task: number }>).detail
      tracked.failures.set(detail.task, failureText(detail))
    }
    job.addEventListener('task-failed', onFailed)
    this.tracked.set(job.id, tracked)
    job.done.finally(() => {
      job.removeEventListener('task-failed', onFailed)
      this.running--
      this.forgetOldest()
    }).catch(() => {})
    return tracked
  }

  private forgetOldest (): void {
    const finished = [...this.tracked.values()].filter(t => t.job.finished)
    for (const t of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.tracked.delete(t.job.id)
  }
}

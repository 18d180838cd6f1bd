/**
 * The gateway's jobs: started through the library's submit() (kept in <data>/jobs with their
 * inputs), resumed when the gateway starts again, cancelled on request, and described as the
 * JSON GET /v1/jobs/:id answers.
 */
import { Job, RequesterError, isTerminalState } from '../index.js'
import { GatewayError } from './errors.js'
import { MAX_RUNNING_JOBS } from './limits.js'
import type { DatasetInputs, JobMeta, Requester, SubmitOptions, TaskInputs } from '../index.js'
import type { Static } from 'typebox'
import type { JobStatus } from './schemas.js'

export type JobStatusValue = Static<typeof JobStatus>
type Contribution = Array<{ peerId: string, results: number }>

export const isFinished = (meta: JobMeta): boolean => isTerminalState(meta.state)

/** Finished jobs whose workers are remembered (counting them reads every result). */
const CONTRIBUTIONS_KEPT = 256

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits

function byResults (counts: Record<string, number>): Contribution {
  return Object.entries(counts).map(([peerId, results]) => ({ peerId, results })).sort((a, b) => b.results - a.results)
}

export class JobDesk {
  /** Jobs this gateway started or resumed, until their run ends. */
  private readonly running = new Map<string, Job>()
  /** Submissions between the running-jobs check and their start. */
  private reserved = 0
  private readonly resumeErrors = new Map<string, string>()
  /** Unfinished jobs found at start beyond MAX_RUNNING_JOBS, resumed one by one as running jobs end. */
  private readonly waiting: string[] = []
  /** Cancels under way: a stream that sees the run end waits for the cancel to settle the state. */
  readonly cancelling = new Map<string, Promise<JobMeta>>()
  private readonly contributions = new Map<string, Contribution>()

  constructor (private readonly net: Requester, private readonly log: (line: string) => void) {}

  /** Resumes every stored job that did not finish; a job that cannot be resumed says why in its status. */
  async resumeAll (): Promise<number> {
    let resumed = 0
    for (const meta of await this.net.jobs()) {
      if (isFinished(meta)) continue
      // Each running job holds its inputs in memory: the rest wait their turn (resumed as running ones end).
      if (resumed >= MAX_RUNNING_JOBS) {
        this.waiting.push(meta.jobId)
        continue
      }
      try {
        this.track(await this.net.resume(meta.jobId))
        resumed++
      } catch (err) {
        // Only the library's own words reach clients; anything else (a store's file paths) stays in the log.
        const message = `not resumed: ${err instanceof RequesterError ? err.message : 'its saved request could not be read'}`
        this.resumeErrors.set(meta.jobId, message)
        this.log(`job ${meta.jobId} not resumed: ${(err as Error).message}`)
      }
    }
    return resumed
  }

  async submit (model: string, inputs: TaskInputs[] | DatasetInputs, options: SubmitOptions): Promise<Job> {
    if (this.running.size + this.reserved >= MAX_RUNNING_JOBS) {
      throw new GatewayError('busy', 429, `${MAX_RUNNING_JOBS} jobs are running in this gateway, the most it runs at once; start this one when one has ended`)
    }
    this.reserved++
    try {
      const job = await this.net.submit(model, inputs, options)
      this.track(job)
      return job
    } finally {
      this.reserved--
    }
  }

  /** The running job, or as kept in the store; RequesterError 'unknown-job'. */
  async get (id: string): Promise<Job> {
    return this.running.get(id) ?? await this.net.job(id)
  }

  isRunning (job: Job): boolean {
    return this.running.get(job.id) === job && !job.finished
  }

  /** Stops a job for good (decided results stay); RequesterError 'conflict' when it already ended. */
  async cancel (id: string): Promise<Job> {
    const job = await this.get(id)
    if (isFinished(job.meta) || this.cancelling.has(id)) throw new RequesterError('conflict', `job ${id} is already ${this.cancelling.has(id) ? 'being cancelled' : job.meta.state}`)
    const cancel = job.cancel()
    this.cancelling.set(id, cancel)
    try {
      await cancel
    } finally {
      this.cancelling.delete(id)
    }
    return await this.net.job(id)
  }

  async status (job: Job): Promise<JobStatusValue> {
    return { ...this.describe(job), workers: await this.workersOf(job) }
  }

  /** The newest `limit` jobs, without their workers (GET /v1/jobs/:id has them). */
  async list (limit: number): Promise<JobStatusValue[]> {
    const metas = (await this.net.jobs()).slice(0, limit)
    return metas.map(meta => this.describe(this.running.get(meta.jobId) ?? new Job(this.net.store, meta)))
  }

  describe (job: Job): JobStatusValue {
    const m = job.meta
    const p = job.progress
    const error = m.error ?? (isFinished(m) ? undefined : this.resumeErrors.get(m.jobId))
    return {
      id: m.jobId,
      state: m.state,
      running: this.isRunning(job),
      label: m.datasetId,
      model: { sha256: m.model.sha256, name: m.model.name },
      replicas: m.replicas,
      createdAt: m.createdAt,
      updatedAt: m.updatedAt,
      progress: {
        total: m.taskCount,
        done: p.done,
        failed: p.failed,
        inFlight: p.inFlight,
        crossChecked: p.crossChecked,
        disagreements: p.disagreements,
        tasksPerSec: round(p.tasksPerSec),
        etaSeconds: Number.isFinite(p.etaSeconds) ? round(p.etaSeconds, 1) : null,
        spotChecks: { done: p.spotChecks.done, mismatches: p.spotChecks.mismatches },
        inferenceMs: Math.round(p.inferenceMs),
        ...(p.blocked != null ? { blocked: { ...p.blocked } } : {})
      },
      ...(error != null ? { error } : {})
    }
  }

  private track (job: Job): void {
    this.running.set(job.id, job)
    this.resumeErrors.delete(job.id)
    job.done.finally(() => {
      if (this.running.get(job.id) === job) this.running.delete(job.id)
      this.resumeNext()
    }).catch(() => {})
  }

  private resumeNext (): void {
    const id = this.waiting.shift()
    if (id == null || this.running.size + this.reserved >= MAX_RUNNING_JOBS) {
      if (id != null) this.waiting.unshift(id)
      return
    }
    this.net.resume(id).then(job => { this.track(job) }, (err: unknown) => {
      this.resumeErrors.set(id, `not resumed: ${err instanceof RequesterError ? err.message : 'its saved request could not be read'}`)
      this.log(`job ${id} not resumed: ${(err as Error).message}`)
      this.resumeNext()
    })
  }

  /** A running job's workers from its progress; a stopped one's from the results it stored (kept once it finished). */
  private async workersOf (job: Job): Promise<Contribution> {
    if (this.isRunning(job)) return byResults(job.progress.perPeer)
    const kept = this.contributions.get(job.id)
    if (kept != null) return kept
    const counts: Record<string, number> = {}
    for (const r of await job.storedResults()) for (const peer of r.agreedBy) counts[peer] = (counts[peer] ?? 0) + 1
    const found = byResults(counts)
    if (isFinished(job.meta)) {
      if (this.contributions.size >= CONTRIBUTIONS_KEPT) this.contributions.delete(this.contributions.keys().next().value!)
      this.contributions.set(job.id, found)
    }
    return found
  }
}

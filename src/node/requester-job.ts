/**
 * A job as the library hands it out: its progress, its results in input order as they are decided
 * (streamed while it runs, read from the store once it is over), and cancel / stop. Wraps one run
 * of a JobRunner, or a job kept in the store that is not running.
 */
import { JobStateError, isTerminalState, transitionJob } from '../core/job-store.js'
import { tensorToJson } from '../models/tensor-output.js'
import { RequesterError } from './requester-errors.js'
import type { TensorJson } from '../models/tensor-output.js'
import type { JobMeta, JobStore, StoredResult } from '../core/job-store.js'
import type { TaskFailure } from '../core/scheduler.js'
import type { JobProgress, JobRunner, TaskFailedEvent } from '../net/job-runner.js'
import type { JobBlocked } from '../core/job-blocked.js'

/** One task's outcome: its agreed outputs, or why it has none. */
export interface TaskOutput {
  index: number
  outputs?: TensorJson[]
  /** Peer ids whose outputs agreed ('self': recomputed by this requester). */
  agreedBy?: string[]
  /** Checked by more than one worker. */
  crossChecked?: boolean
  error?: string
}

const FAILURES: Record<TaskFailure, string> = {
  'max-attempts': 'failed after repeated attempts',
  'no-majority': 'the workers did not agree on a result',
  unverifiable: 'could not be verified: no worker left that may run it'
}

export function failureText (e: Pick<TaskFailedEvent, 'reason' | 'lastError'>): string {
  return e.lastError != null ? `${FAILURES[e.reason]} (last error: ${e.lastError})` : FAILURES[e.reason]
}

function throwIfCancelled (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new RequesterError('cancelled', 'cancelled')
}

/**
 * Gives up on a job that has been blocked (JobProgress.blocked) for `ms`: `poke()` on every
 * progress event re-reads the reason and re-arms one timer, due when the current block (counted
 * from its sinceMs, Date.now() time) reaches `ms`; at that moment, if still blocked, `giveUp`
 * is called once with the reason.
 */
export class GiveUpWatch {
  private timer?: ReturnType<typeof setTimeout>
  private fired = false

  constructor (private readonly ms: number, private readonly read: () => JobBlocked | undefined, private readonly giveUp: (blocked: JobBlocked) => void) {}

  poke (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const blocked = this.read()
    if (this.fired || blocked == null) return
    const left = blocked.sinceMs + this.ms - Date.now()
    if (left <= 0) {
      this.fired = true
      this.giveUp(blocked)
      return
    }
    this.timer = setTimeout(() => { this.poke() }, left)
  }

  dispose (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.fired = true
  }
}

/** The error a give-up wait ends with: the reason in words, and how long it waited. */
export function stalledError (blocked: JobBlocked, ms: number): RequesterError {
  return new RequesterError('stalled', `${blocked.message} (no progress for ${Math.round(ms / 1000)} s)`)
}

/** A decided result, or a task that failed: what results() holds until the task's turn comes. */
type Outcome = StoredResult | { index: number, error: string }

/** As JSON tensors, made only when yielded (a buffer of raw results is several times smaller). */
function output (r: Outcome): TaskOutput {
  if ('error' in r) return r
  return { index: r.index, outputs: r.outputs.map(tensorToJson), agreedBy: r.agreedBy, crossChecked: r.crossChecked }
}

/**
 * Events: 'progress' (Event), 'result' (CustomEvent<StoredResult>), 'task-failed'
 * (CustomEvent<TaskFailedEvent>), 'revoke' (CustomEvent<number[]>), 'end' (Event).
 */
export class Job extends EventTarget {
  readonly id: string
  /** Resolves when this run ends (done, failed, cancelled or stopped); never rejects. */
  readonly done: Promise<JobMeta>
  private stored: JobMeta
  private ended = false
  private readonly runner?: JobRunner
  private readonly store: JobStore
  private gaveUp?: RequesterError

  /** `run` is the runner's run() already started (absent: a stored job that is not running). */
  constructor (store: JobStore, meta: JobMeta, runner?: JobRunner, run?: Promise<JobMeta>) {
    super()
    this.id = meta.jobId
    this.store = store
    this.stored = meta
    this.runner = runner
    if (runner == null || run == null) {
      this.ended = true
      this.done = Promise.resolve(meta)
      return
    }
    for (const type of ['progress', 'result', 'task-failed', 'revoke']) {
      runner.addEventListener(type, (e) => { this.dispatchEvent(e instanceof CustomEvent ? new CustomEvent(type, { detail: e.detail }) : new Event(type)) })
    }
    this.done = run.then(meta => meta, (err: unknown) => ({ ...runner.meta, error: `the job stopped: ${(err as Error).message}` })).then(meta => {
      this.stored = meta
      this.ended = true
      this.dispatchEvent(new Event('end'))
      return meta
    })
  }

  get meta (): JobMeta {
    return this.ended ? this.stored : this.runner?.meta ?? this.stored
  }

  /** The hash that pins this run's audit log so far (absent for a job that is not running here). */
  get auditHead (): string | undefined {
    return this.runner?.auditHead
  }

  /**
   * Stops this run (resumable, as stop() does) once the job has been unable to progress for `ms`
   * (JobProgress.blocked). The run then ends with `stalled` set, and results() throws it.
   */
  giveUpAfter (ms: number): void {
    const runner = this.runner
    if (runner == null || this.ended) return
    const watch = new GiveUpWatch(ms, () => runner.blockedNow, (blocked) => {
      this.gaveUp = stalledError(blocked, ms)
      this.stop().catch(() => {}) // done reports the end
    })
    const poke = (): void => { watch.poke() }
    this.addEventListener('progress', poke)
    this.done.finally(() => {
      this.removeEventListener('progress', poke)
      watch.dispose()
    }).catch(() => {})
    watch.poke()
  }

  /** Why the job cannot progress now (progress.blocked, without building the rest of progress). */
  get blocked (): JobBlocked | undefined {
    return this.ended ? undefined : this.runner?.blockedNow
  }

  /** Set when giveUpAfter() stopped this run: RequesterError 'stalled' with the reason. */
  get stalled (): RequesterError | undefined {
    return this.gaveUp
  }

  /** Whether this run is over (the job may still be resumable when it was stopped). */
  get finished (): boolean {
    return this.ended
  }

  get progress (): JobProgress {
    if (this.runner != null) return this.runner.progress
    const m = this.stored
    const done = m.stats?.done ?? (m.state === 'done' ? m.taskCount : 0)
    return { jobId: m.jobId, state: m.state, total: m.taskCount, done, failed: m.stats?.failed ?? 0, inFlight: 0, crossChecked: m.stats?.crossChecked ?? 0, disagreements: m.stats?.disagreements ?? 0, restored: done, perPeer: {}, tasksPerSec: 0, etaSeconds: Number.POSITIVE_INFINITY, elapsedMs: 0, spotChecks: { done: 0, mismatches: 0, pending: 0 }, convicted: [], inferenceMs: m.stats?.inferenceMs ?? 0, perPeerInferenceMs: {} }
  }

  /** The results so far, in input order (a snapshot; see results() to follow a running job). */
  async storedResults (): Promise<StoredResult[]> {
    return await this.store.getResults(this.id)
  }

  /**
   * Every task's outcome in input order, each as soon as it and all before it are decided. A task
   * that failed gives { index, error }. Once the job is over, what it stored. A result yielded and
   * later revoked (a spot check convicted a worker that voted for it) is decided again: the store
   * and the export then hold the new one ('revoke' events say which).
   */
  async * results (options: { signal?: AbortSignal } = {}): AsyncGenerator<TaskOutput> {
    const { signal } = options
    const total = this.meta.taskCount
    const buffer = new Map<number, Outcome>()
    let next = 0
    let wake: (() => void) | undefined
    const notify = (): void => { const w = wake; wake = undefined; w?.() }
    const onResult = (e: Event): void => {
      const r = (e as CustomEvent<StoredResult>).detail
      if (r.index < next) return
      buffer.set(r.index, r)
      if (r.index === next) notify()
    }
    const onFailed = (e: Event): void => {
      const f = (e as CustomEvent<TaskFailedEvent>).detail
      if (f.task < next) return
      buffer.set(f.task, { index: f.task, error: failureText(f) })
      if (f.task === next) notify()
    }
    const onRevoke = (e: Event): void => { for (const t of (e as CustomEvent<number[]>).detail) if (t >= next) buffer.delete(t) }
    this.addEventListener('result', onResult)
    this.addEventListener('task-failed', onFailed)
    this.addEventListener('revoke', onRevoke)
    this.addEventListener('end', notify)
    signal?.addEventListener('abort', notify)
    try {
      // Decided but not yet written, taken before the store is read: between the two, nothing decided is missed.
      const unflushed = this.runner?.unflushed() ?? []
      for (const r of unflushed) if (!buffer.has(r.index)) buffer.set(r.index, r)
      for (const r of await this.store.getResults(this.id)) if (!buffer.has(r.index)) buffer.set(r.index, r)
      while (next < total) {
        throwIfCancelled(signal)
        const item = buffer.get(next)
        if (item != null) {
          buffer.delete(next++)
          yield output(item)
          continue
        }
        if (this.ended) {
          const meta = this.meta
          if (!isTerminalState(meta.state) && this.gaveUp != null) throw this.gaveUp
          if (!isTerminalState(meta.state)) throw new RequesterError('cancelled', `job ${this.id} was stopped before it finished${meta.error != null ? ` (${meta.error})` : ''}; resume it for the rest`)
          // Everything decided is in the store by now; what is not there failed.
          for (const r of await this.store.getResults(this.id)) if (r.index >= next) buffer.set(r.index, r)
          for (; next < total; next++) {
            throwIfCancelled(signal)
            yield output(buffer.get(next) ?? { index: next, error: meta.error ?? 'not decided' })
            buffer.delete(next)
          }
          return
        }
        await new Promise<void>(resolve => { wake = resolve })
      }
    } finally {
      this.removeEventListener('result', onResult)
      this.removeEventListener('task-failed', onFailed)
      this.removeEventListener('revoke', onRevoke)
      this.removeEventListener('end', notify)
      signal?.removeEventListener('abort', notify)
    }
  }

  /** Stops dispatching and saves what is decided; the job stays resumable. */
  async stop (): Promise<JobMeta> {
    await this.runner?.stop()
    return await this.done
  }

  /** Stops the job for good: it ends `cancelled` (its error "cancelled"); decided results stay. */
  async cancel (): Promise<JobMeta> {
    if (isTerminalState(this.meta.state)) throw new RequesterError('conflict', `job ${this.id} is already ${this.meta.state}`)
    await this.stop()
    const current = await this.store.getJob(this.id)
    if (current == null || isTerminalState(current.state)) return current ?? this.meta
    try {
      this.stored = await transitionJob(this.store, this.id, 'cancelled', { error: 'cancelled' })
    } catch (err) {
      // Ended meanwhile (another cancel, or the job's own end): what the store says stands.
      if (!(err instanceof JobStateError)) throw err
      this.stored = await this.store.getJob(this.id) ?? this.stored
      return this.stored
    }
    this.dispatchEvent(new Event('progress'))
    return this.stored
  }
}

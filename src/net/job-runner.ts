/**
 * Runs one batch job over the network: binds the pure Scheduler to capability adverts (who can
 * work, with how many credits), the task protocol (dispatch), and a JobStore (every decided task
 * is persisted in batches, so a restarted requester resumes without recomputing anything).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { Scheduler, compareWorkers } from '../core/scheduler.js'
import { nextState } from '../core/job-store.js'
import { toTaskError } from '../core/errors.js'
import { systemClock } from '../core/clock.js'
import { canRun, hasModel } from '../core/discovery/advert.js'
import type { Assignment, Decision } from '../core/scheduler.js'
import type { JobMeta, JobSource, JobState, JobStore, StoredResult } from '../core/job-store.js'
import type { OutputComparator } from '../core/compare.js'
import type { Reputation } from '../core/reputation.js'
import type { Clock } from '../core/clock.js'
import type { TaskRequest, TaskResult } from '../core/task-types.js'
import type { Advert } from '../core/discovery/advert.js'
import type { AdvertEvent, AdvertTable, GoneEvent } from '../core/discovery/table.js'
import type { TaskProtocol } from './task-service.js'

/** The requester's own worker, when it contributes to its own job. */
export interface LocalWorker {
  slots: number
  run(request: TaskRequest): Promise<TaskResult>
}

export const LOCAL_PEER = 'self'

export interface JobRunnerOptions {
  meta: JobMeta
  source: JobSource
  tasks: TaskProtocol
  /** Who can work: the discovery table. */
  adverts: AdvertTable
  /**
   * Workers used at once (default: no limit). A requester that may hold only so many direct
   * connections keeps the rest as standbys, taken on when an active worker leaves.
   */
  maxWorkers?: number
  store: JobStore
  compare: OutputComparator
  reputation: Reputation
  local?: LocalWorker
  clock?: Clock
  taskTimeoutMs?: number
  /** Decided results are written to the store at least this often. */
  flushMs?: number
}

export interface JobProgress {
  jobId: string
  state: JobState
  total: number
  done: number
  failed: number
  inFlight: number
  crossChecked: number
  disagreements: number
  /** Tasks already decided when this run started (restored from the store). */
  restored: number
  /** Results accepted per peer in this run (its contribution), replicas included. */
  perPeer: Record<string, number>
  tasksPerSec: number
  etaSeconds: number
  elapsedMs: number
}

const RATE_WINDOW_MS = 5000

export class JobRunner extends EventTarget {
  meta: JobMeta
  private readonly o: JobRunnerOptions
  private readonly clock: Clock
  private scheduler!: Scheduler
  private readonly live = new Map<number, Assignment>()
  private readonly perPeer: Record<string, number> = {}
  private pendingWrites: StoredResult[] = []
  private flushTimer?: ReturnType<typeof setTimeout>
  private readonly decidedAt: number[] = []
  private startedAt = 0
  private restored = 0
  private stopped = false
  /** Set once every worker known at the start is registered: dispatching earlier would hand the first tasks to whoever was registered first, not to the best placed. */
  private started = false
  private finish?: () => void
  private readonly listeners: Array<() => void> = []
  /** Workers given to the scheduler, and those waiting for room (see maxWorkers). */
  private readonly active = new Set<string>()
  private readonly standby = new Map<string, Advert>()

  constructor (options: JobRunnerOptions) {
    super()
    this.o = options
    this.meta = options.meta
    this.clock = options.clock ?? systemClock
  }

  /** Runs (or resumes) the job; resolves with its final metadata (state done or failed). */
  async run (): Promise<JobMeta> {
    const previous = await this.o.store.getResults(this.meta.jobId)
    this.restored = previous.length
    this.scheduler = new Scheduler({
      taskCount: this.meta.taskCount,
      replicas: this.meta.replicas,
      adaptive: this.meta.adaptive,
      compare: this.o.compare,
      reputation: this.o.reputation,
      clock: this.clock,
      taskTimeoutMs: this.o.taskTimeoutMs,
      done: previous.map(r => r.index)
    })
    this.scheduler.onDecision = (d) => { this.onDecision(d) }
    this.scheduler.onChange = () => { this.pump() }
    this.startedAt = this.clock.now()
    await this.setState(this.scheduler.finished ? this.meta.state : 'running')

    const { adverts } = this.o
    const onAdvert = (evt: Event): void => {
      const { peerId, advert } = (evt as CustomEvent<AdvertEvent>).detail
      this.setWorker(peerId, advert)
    }
    const onGone = (evt: Event): void => { this.removeWorker((evt as CustomEvent<GoneEvent>).detail.peerId) }
    adverts.addEventListener('advert', onAdvert)
    adverts.addEventListener('gone', onGone)
    this.listeners.push(() => { adverts.removeEventListener('advert', onAdvert) }, () => { adverts.removeEventListener('gone', onGone) })
    // Best placed first (the model already there, then measured speed), so a capped job takes those.
    const known = [...adverts.values()].sort((a, b) => compareWorkers(this.placement(a.advert), this.placement(b.advert)))
    for (const e of known) this.setWorker(e.peerId, e.advert)
    if (this.o.local != null) this.scheduler.setWorker({ peerId: LOCAL_PEER, slots: this.o.local.slots, eligible: true, hasModel: true })

    const finished = new Promise<void>(resolve => { this.finish = resolve })
    this.started = true
    this.pump()
    this.checkFinished()
    await finished
    return this.meta
  }

  /** Stops dispatching, writes what is decided, and leaves the job resumable. */
  async stop (): Promise<void> {
    this.stopped = true
    this.detach()
    await this.flush()
    this.finish?.()
  }

  get progress (): JobProgress {
    const p = this.scheduler?.progress
    const now = this.clock.now()
    while (this.decidedAt.length > 0 && now - this.decidedAt[0] > RATE_WINDOW_MS) this.decidedAt.shift()
    const windowMs = Math.min(RATE_WINDOW_MS, Math.max(1, now - this.startedAt))
    const tasksPerSec = this.decidedAt.length / (windowMs / 1000)
    const failed = this.scheduler?.failedTasks().length ?? 0
    const done = p?.done ?? 0
    const remaining = this.meta.taskCount - done - failed
    return {
      jobId: this.meta.jobId,
      state: this.meta.state,
      total: this.meta.taskCount,
      done,
      failed,
      inFlight: p?.inFlight ?? 0,
      crossChecked: p?.crossChecked ?? 0,
      disagreements: p?.disagreements ?? 0,
      restored: this.restored,
      perPeer: { ...this.perPeer },
      tasksPerSec,
      etaSeconds: tasksPerSec > 0 ? remaining / tasksPerSec : Number.POSITIVE_INFINITY,
      elapsedMs: now - this.startedAt
    }
  }

  /** What the scheduler's ordering reads from an advert, for this job's model. */
  private placement (advert: Advert): { hasModel: boolean, msPerTask?: number } {
    const sha = this.meta.model.sha256
    return { hasModel: hasModel(advert, sha), msPerTask: advert.speeds[sha] }
  }

  private setWorker (peerId: string, advert: Advert): void {
    if (!advert.worker) return
    if (!this.active.has(peerId) && this.active.size >= (this.o.maxWorkers ?? Infinity)) {
      this.standby.set(peerId, advert)
      return
    }
    this.active.add(peerId)
    const sha = this.meta.model.sha256
    this.scheduler.setWorker({
      peerId,
      slots: Math.max(1, advert.slots),
      eligible: canRun(advert, sha, this.meta.model.size),
      msPerTask: advert.speeds[sha],
      hasModel: hasModel(advert, sha)
    })
    this.pump()
  }

  private removeWorker (peerId: string): void {
    this.standby.delete(peerId)
    if (!this.active.delete(peerId)) return
    for (const [id, a] of this.live) if (a.peerId === peerId) this.live.delete(id)
    this.scheduler.removeWorker(peerId)
    // Room for a standby: the best placed one takes it.
    const next = [...this.standby].sort(([, a], [, b]) => compareWorkers(this.placement(a), this.placement(b)))[0]
    if (next != null) {
      this.standby.delete(next[0])
      this.setWorker(next[0], next[1])
    }
    this.pump()
  }

  private pump (): void {
    if (this.stopped || !this.started) return
    for (const a of this.scheduler.assign()) void this.dispatch(a)
    this.changed()
  }

  private async dispatch (a: Assignment): Promise<void> {
    this.live.set(a.id, a)
    const { inputs, outputNames } = this.o.source.task(a.taskIndex)
    const request: TaskRequest = {
      taskId: `${this.meta.jobId}/${a.taskIndex}/${a.id}`,
      jobId: this.meta.jobId,
      model: this.meta.model,
      inputs,
      timeoutMs: this.o.taskTimeoutMs ?? 60_000,
      outputNames
    }
    let result: TaskResult | undefined
    let error: ReturnType<typeof toTaskError> | undefined
    try {
      result = a.peerId === LOCAL_PEER
        ? await this.o.local!.run(request)
        : (await this.o.tasks.run(peerIdFromString(a.peerId), request)).result
    } catch (err) {
      error = toTaskError(err)
    }
    // An assignment whose worker was removed meanwhile was already re-queued: drop its outcome.
    if (!this.live.delete(a.id) || this.stopped) return
    if (result != null) {
      this.perPeer[a.peerId] = (this.perPeer[a.peerId] ?? 0) + 1
      this.scheduler.succeeded(a, result.outputs)
    } else {
      this.scheduler.failed(a, error!.code)
      // Gone for good (no direct connection left): stop giving it work; a new connection brings a
      // fresh advert and so brings it back. A hiccup on a live connection only costs a retry.
      if (a.peerId !== LOCAL_PEER && (error!.code === 'peer-gone' || error!.code === 'no-peer') && !this.o.tasks.hasDirect(peerIdFromString(a.peerId))) {
        this.removeWorker(a.peerId)
      }
    }
    this.pump()
    this.checkFinished()
  }

  private onDecision (d: Decision): void {
    this.decidedAt.push(this.clock.now())
    this.pendingWrites.push({ index: d.taskIndex, outputs: d.outputs, agreedBy: d.agreedBy, crossChecked: d.crossChecked })
    this.flushTimer ??= setTimeout(() => { void this.flush() }, this.o.flushMs ?? 250)
  }

  private async flush (): Promise<void> {
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    const batch = this.pendingWrites
    this.pendingWrites = []
    if (batch.length > 0) await this.o.store.putResults(this.meta.jobId, batch)
    await this.o.store.putReputation(this.o.reputation.toJSON())
    await this.saveMeta()
  }

  private async saveMeta (): Promise<void> {
    const p = this.progress
    this.meta = { ...this.meta, updatedAt: Date.now(), stats: { done: p.done, failed: p.failed, crossChecked: p.crossChecked, disagreements: p.disagreements } }
    await this.o.store.putJob(this.meta)
  }

  private async setState (state: JobState): Promise<void> {
    if (state === this.meta.state) return
    this.meta = { ...this.meta, state: nextState(this.meta.state, state), updatedAt: Date.now() }
    await this.o.store.putJob(this.meta)
    this.changed()
  }

  private checkFinished (): void {
    if (this.stopped) return
    const p = this.scheduler.progress
    if (this.scheduler.finished) {
      this.stopped = true
      this.detach()
      const failed = this.scheduler.failedTasks().length
      void (async () => {
        await this.flush()
        if (this.meta.state === 'running') await this.setState('verifying')
        if (failed > 0) this.meta = { ...this.meta, error: `${failed} task(s) failed after repeated attempts` }
        await this.setState(failed > 0 ? 'failed' : 'done')
        this.finish?.()
      })()
    } else if (p.pending === 0 && this.meta.state === 'running') {
      void this.setState('verifying')
    } else if (p.pending > 0 && this.meta.state === 'verifying') {
      void this.setState('running')
    }
  }

  private detach (): void {
    for (const off of this.listeners.splice(0)) off()
  }

  private changed (): void {
    this.dispatchEvent(new Event('progress'))
  }
}

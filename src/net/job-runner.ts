/**
 * Runs one batch job over the network: binds the pure Scheduler to capability adverts (who can
 * work, with how many credits), the task protocol (dispatch), and a JobStore (every decided task
 * is persisted in batches, so a restarted requester resumes without recomputing anything).
 *
 * Verification around the scheduler's votes: every result is checked against the model's declared
 * outputs before it counts; workers are told apart by where their direct connection comes from
 * (core/diversity.ts); and a fraction of decided tasks is recomputed by the requester itself (spot
 * checks): a mismatch convicts every worker that vouched for the result, which discards all their
 * votes in the job and recomputes what they decided.
 *
 * Every step is written to the job's hash-chained audit log (core/audit.ts) in the store:
 * assignments, results with their signed receipts, decisions, disagreements, malformed results,
 * re-queues, spot checks, exclusions and convictions.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { Scheduler, compareWorkers } from '../core/scheduler.js'
import { JobStateError, isTerminalState, nextState } from '../core/job-store.js'
import { toTaskError } from '../core/errors.js'
import { systemClock } from '../core/clock.js'
import { canRun, hasModel } from '../core/discovery/advert.js'
import { outputProblem } from '../core/output-check.js'
import { diversityGroups } from '../core/diversity.js'
import { AuditLog } from '../core/audit.js'
import { BlockedTracker, blockedReason, needFor } from '../core/job-blocked.js'
import { tensorsSha256 } from '../core/receipt.js'
import type { AuditEntry } from '../core/audit.js'
import type { BlockedWorker, JobBlocked } from '../core/job-blocked.js'
import type { Receipt } from '../core/receipt.js'
import type { Assignment, Decision, TaskFailure } from '../core/scheduler.js'
import type { JobMeta, JobSource, JobState, JobStore, StoredResult } from '../core/job-store.js'
import type { OutputComparator } from '../core/compare.js'
import type { Reputation } from '../core/reputation.js'
import type { Clock } from '../core/clock.js'
import type { TaskRequest, TaskResult } from '../core/task-types.js'
import type { Advert } from '../core/discovery/advert.js'
import type { DeclaredModel } from '../core/output-check.js'
import type { DiversityMode, PeerEndpoint } from '../core/diversity.js'
import type { WireTensor } from '../core/tensor.js'
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
  /** The model's declared interface: a result that does not fit it is a lie, never a vote. */
  declared?: DeclaredModel
  /** Recompute this fraction of decided tasks on the requester itself (its own onnxruntime). */
  spotCheck?: SpotCheck
  /** How workers are told apart (core/diversity.ts; default 'standard'). */
  diversity?: DiversityMode
  /** Where a worker's direct connection comes from (remote IP, relay), once there is one. */
  endpoint?: (peerId: string) => Promise<PeerEndpoint | undefined>
  /** Injectable for tests (seeded); default Math.random. */
  random?: () => number
  /** This requester's peer id, named in the audit log (receipts name it too). */
  requester?: string
  /**
   * A job with tasks left, nothing in flight and no worker that may take them for this long is
   * given up (its remaining tasks fail as unverifiable) rather than waiting forever (default 90 s:
   * longer than the longest back-off a failing worker gets). Infinity: never given up, the job
   * waits for more workers (the page does: its user may open another tab); `progress.blocked`
   * says why it waits either way.
   */
  stallMs?: number
  /**
   * Why this requester cannot reach the network now (no relay holds its reservation), in words;
   * undefined when it can. Read whenever the runner reconsiders whether the job is blocked.
   */
  connectivity?: () => string | undefined
}

/** The verification a requester adds to a job's replicas, and its connectivity (the options its platform supplies). */
export type JobVerification = Pick<JobRunnerOptions, 'spotCheck' | 'diversity' | 'endpoint' | 'connectivity'>

export interface SpotCheck {
  /** 0..1: the share of decided tasks recomputed. */
  fraction: number
  /** Runs a task on this machine; throws when it cannot (then that check is skipped). */
  recompute: (request: TaskRequest) => Promise<WireTensor[]>
}

export interface SpotCheckCounts {
  /** Recomputations finished (matching or not). */
  done: number
  /** Of those, how many caught a wrong result. */
  mismatches: number
  /** Waiting or running. */
  pending: number
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
  spotChecks: SpotCheckCounts
  /** Workers this job caught lying (spot check) and stopped trusting. */
  convicted: string[]
  /** Why the job cannot progress now (see core/job-blocked.ts); absent while it can. */
  blocked?: JobBlocked
  /** Inference time of every accepted result in this run (replicas included), ms: the compute this job used. */
  inferenceMs: number
  /** The same per peer ('self': this requester's own worker). */
  perPeerInferenceMs: Record<string, number>
}

const RATE_WINDOW_MS = 5000
/**
 * Decisions waiting for a spot check at most, by count and by output bytes: past either, no new
 * task is dispatched until checks catch up (so the share checked holds however fast workers answer).
 */
const MAX_SPOT_QUEUE = 256
const MAX_SPOT_QUEUE_BYTES = 64 * 1024 * 1024
/** Most slots credited to one worker, whatever its advert says. */
const MAX_WORKER_SLOTS = 64
/**
 * How often a running job reconsiders whether it is blocked when nothing else happens (its
 * connectivity and the scheduler's stuck verdict change without an event).
 */
const BLOCKED_CHECK_MS = 1000
const BLOCKED_THROTTLE_MS = 100
/** Longest remote-supplied text kept in the audit log. */
const MAX_REASON = 300

function clip (text: string): string {
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}…` : text
}

/** A task given up for good (its attempts used up, or nobody left who may verify it). */
export interface TaskFailedEvent {
  task: number
  reason: TaskFailure
  /** The last error a worker gave for it, in its words (clipped). */
  lastError?: string
}

/**
 * Events: 'progress' (Event) on any change (progress.blocked appearing, changing or clearing included); 'result' (CustomEvent<StoredResult>) when a task is
 * decided; 'revoke' (CustomEvent<number[]>) when decided tasks are re-opened because a worker
 * that voted for them was convicted (they are decided again later); 'task-failed'
 * (CustomEvent<TaskFailedEvent>). Listeners must not throw.
 */
export class JobRunner extends EventTarget {
  meta: JobMeta
  private readonly o: JobRunnerOptions
  private readonly clock: Clock
  private scheduler!: Scheduler
  private readonly live = new Map<number, Assignment>()
  private readonly perPeer: Record<string, number> = {}
  private readonly perPeerInferenceMs: Record<string, number> = {}
  private inferenceMs = 0
  /** meta.stats.inferenceMs when this run started (a resumed job adds to it). */
  private priorInferenceMs = 0
  private readonly blocked = new BlockedTracker(() => Date.now())
  private blockedTimer?: ReturnType<typeof setTimeout>
  private blockedCheckedAt = Number.NEGATIVE_INFINITY
  private pendingWrites: StoredResult[] = []
  private flushTimer?: ReturnType<typeof setTimeout>
  private readonly decidedAt: number[] = []
  private startedAt = 0
  private restored = 0
  private stopped = false
  /** Set once every worker known at the start is registered: dispatching earlier would hand the first tasks to whoever was registered first, not to the best placed. */
  private started = false
  /** Resolves when the run ends for any reason (stop() included, even during run()'s opening reads): run() returns then. */
  private readonly finished: Promise<void>
  private finish!: () => void
  private readonly listeners: Array<() => void> = []
  /** Workers given to the scheduler, and those waiting for room (see maxWorkers). */
  private readonly active = new Set<string>()
  private readonly standby = new Map<string, Advert>()
  /** Each active worker's latest advert, to re-register it when its groups become known. */
  private readonly advertOf = new Map<string, Advert>()
  /** Diversity groups learnt per worker; kept when it leaves, so a worker that comes back is placed at once. */
  private readonly groups = new Map<string, string[]>()
  /** Workers whose endpoint has been looked up once a connection existed. */
  private readonly located = new Set<string>()
  private revokedWrites: number[] = []
  private readonly spotQueue: Decision[] = []
  private spotRunning = false
  private readonly spot: SpotCheckCounts = { done: 0, mismatches: 0, pending: 0 }
  private spotBytes = 0
  /** The end of the job in progress (its last writes), which stop() waits for. */
  private ending?: Promise<void>
  private readonly random: () => number
  private stallTimer?: ReturnType<typeof setTimeout>
  /** Why the job gave up on tasks it could not verify, if it did. */
  private unverified?: string
  private audit?: AuditLog
  private auditLines: string[] = []
  /** The last worker error per task not yet decided (only tasks that failed somewhere). */
  private readonly lastErrors = new Map<number, string>()
  /** The flush in progress (flushes are chained). */
  private flushing: Promise<void> = Promise.resolve()
  /** Batches of results taken by a flush and not yet in the store. */
  private readonly writing = new Set<StoredResult[]>()

  constructor (options: JobRunnerOptions) {
    super()
    this.o = options
    this.meta = options.meta
    this.clock = options.clock ?? systemClock
    this.random = options.random ?? Math.random
    this.finished = new Promise<void>(resolve => { this.finish = resolve })
  }

  /** Why the job cannot progress now (progress.blocked without the rest of progress). */
  get blockedNow (): JobBlocked | undefined {
    return this.blocked.current
  }

  /** The audit log's head (hash of its last line): publish it to pin the whole log. */
  get auditHead (): string | undefined {
    return this.audit?.head
  }

  /**
   * Runs (or resumes) the job; resolves with its metadata when the run ends: done or failed, the
   * state another process or tab ended it in (cancelled), or the state it had when stop() came.
   */
  async run (): Promise<JobMeta> {
    // stop() may come during any of the awaits before the job is under way: the run ends there,
    // before it writes a state or listens to adverts.
    const previous = await this.o.store.getResults(this.meta.jobId)
    if (this.stopped) return this.meta
    this.restored = previous.length
    this.priorInferenceMs = this.meta.stats?.inferenceMs ?? 0
    const last = await this.o.store.lastAudit(this.meta.jobId)
    if (this.stopped) return this.meta
    this.audit = new AuditLog({ jobId: this.meta.jobId, after: last, sink: line => { this.auditLines.push(line) } })
    const { model } = this.meta
    this.log(last == null
      ? { type: 'job-start', jobId: this.meta.jobId, requester: this.o.requester ?? '', model: { sha256: model.sha256, name: model.name, size: model.size }, tasks: this.meta.taskCount, replicas: this.meta.replicas }
      : { type: 'job-resume', restored: previous.length })
    this.scheduler = new Scheduler({
      taskCount: this.meta.taskCount,
      replicas: this.meta.replicas,
      adaptive: this.meta.adaptive,
      compare: this.o.compare,
      reputation: this.o.reputation,
      clock: this.clock,
      taskTimeoutMs: this.o.taskTimeoutMs,
      // With their voters, so a worker convicted now also loses what it decided before a restart.
      done: previous.map(r => ({ index: r.index, agreedBy: r.agreedBy, crossChecked: r.crossChecked }))
    })
    this.scheduler.onDecision = (d) => { this.onDecision(d) }
    this.scheduler.onRevoke = (tasks) => { this.onRevoke(tasks) }
    this.scheduler.onDisagreement = (task, workers) => { this.log({ type: 'disagreement', task, workers }) }
    this.scheduler.onExclude = (worker, reason) => { this.log({ type: 'exclusion', worker, reason }) }
    this.scheduler.onMalformed = (a, reason) => { this.log({ type: 'malformed', task: a.taskIndex, worker: a.peerId, reason: clip(reason) }) }
    this.scheduler.onFailed = (task, reason) => {
      this.log({ type: 'task-failed', task, reason })
      const lastError = this.lastErrors.get(task)
      this.lastErrors.delete(task)
      this.dispatchEvent(new CustomEvent<TaskFailedEvent>('task-failed', { detail: { task, reason, lastError } }))
    }
    this.scheduler.onChange = () => { this.pump() }
    this.startedAt = this.clock.now()
    await this.setState(this.scheduler.finished ? this.meta.state : 'running')
    if (this.stopped) return this.meta

    const { adverts } = this.o
    const onAdvert = (evt: Event): void => {
      const { peerId, advert } = (evt as CustomEvent<AdvertEvent>).detail
      this.setWorker(peerId, advert)
    }
    const onGone = (evt: Event): void => { this.removeWorker((evt as CustomEvent<GoneEvent>).detail.peerId) }
    adverts.addEventListener('advert', onAdvert)
    adverts.addEventListener('gone', onGone)
    this.listeners.push(() => { adverts.removeEventListener('advert', onAdvert) }, () => { adverts.removeEventListener('gone', onGone) })
    // Best placed first (the model already there), so a capped job takes those.
    const known = [...adverts.values()].sort((a, b) => compareWorkers(this.placement(a.advert), this.placement(b.advert)))
    for (const e of known) this.setWorker(e.peerId, e.advert)
    if (this.o.local != null) this.scheduler.setWorker({ peerId: LOCAL_PEER, slots: this.o.local.slots, eligible: true, hasModel: true })

    this.started = true
    this.pump()
    this.watchBlocked()
    this.checkFinished()
    await this.finished
    return this.meta
  }

  /** Stops dispatching, writes what is decided, and leaves the job resumable. */
  async stop (): Promise<void> {
    if (this.ending != null) {
      await this.ending
      return
    }
    this.stopped = true
    this.detach()
    // Before run() has read the store (no scheduler yet) this run has nothing to write, and a
    // meta written now would carry empty stats over the job's own.
    if (this.scheduler != null) await this.flush()
    this.finish()
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
      elapsedMs: now - this.startedAt,
      spotChecks: { ...this.spot, pending: this.spotQueue.length + (this.spotRunning ? 1 : 0) },
      convicted: this.scheduler?.convictedWorkers ?? [],
      ...(this.blocked.current != null ? { blocked: { ...this.blocked.current } } : {}),
      inferenceMs: this.inferenceMs,
      perPeerInferenceMs: { ...this.perPeerInferenceMs }
    }
  }

  /**
   * Reconsiders whether the job can progress, from what the scheduler was given: the workers
   * present (paused, able to run the model, excluded), their diversity groups, the scheduler's
   * stuck verdict and this requester's connectivity. Returns whether `progress.blocked` changed.
   */
  private checkBlocked (force = false): boolean {
    if (this.scheduler == null || !this.started) return false
    if (this.stopped) return this.blocked.update(undefined)
    // Every dispatch and result passes here: at full speed, look at most every BLOCKED_THROTTLE_MS (the periodic check catches the rest).
    const now = Date.now()
    if (!force && now - this.blockedCheckedAt < BLOCKED_THROTTLE_MS) return false
    this.blockedCheckedAt = now
    const sha = this.meta.model.sha256
    const excluded = new Set(this.scheduler.excludedWorkers)
    const workers: BlockedWorker[] = []
    let anyTrusted = false
    for (const peerId of this.active) {
      const advert = this.advertOf.get(peerId)
      if (advert == null) continue
      const capable = canRun({ ...advert, paused: false }, sha, this.meta.model.size)
      workers.push({ peerId, paused: advert.paused, capable, excluded: excluded.has(peerId), groups: this.groups.get(peerId) })
      if (!advert.paused && capable && this.o.reputation.trusted(peerId)) anyTrusted = true
    }
    if (this.o.local != null) {
      workers.push({ peerId: LOCAL_PEER, paused: false, capable: true, excluded: false })
      if (this.o.reputation.trusted(LOCAL_PEER)) anyTrusted = true
    }
    const reason = blockedReason({
      finished: this.scheduler.finished,
      need: needFor(this.meta.replicas, this.meta.adaptive, anyTrusted),
      workers,
      stuck: this.stalled(),
      connectivity: this.o.connectivity?.()
    })
    return this.blocked.update(reason)
  }

  /**
   * Re-checks now and then while the job runs: connectivity and time-based changes have no event
   * of their own, and neither does a cancel from another process (submit --cancel writes the
   * store): a job idle for want of workers, which writes nothing, must still see it.
   */
  private watchBlocked (): void {
    clearTimeout(this.blockedTimer)
    this.blockedTimer = undefined
    if (this.stopped) return
    this.blockedTimer = setTimeout(() => {
      this.blockedTimer = undefined
      if (this.checkBlocked(true)) this.dispatchEvent(new Event('progress'))
      this.o.store.getJob(this.meta.jobId).then(stored => {
        // stop() writes what is decided; its save then takes the stored (final) meta as this run's.
        if (stored != null && isTerminalState(stored.state) && !isTerminalState(this.meta.state) && !this.stopped) this.stop().catch(() => { this.finish() })
      }).catch(() => {}) // an unreadable store is reported by the next write
      this.watchBlocked()
    }, BLOCKED_CHECK_MS)
  }

  /** What the scheduler's ordering reads from an advert, for this job's model (its speed figure is a claim: not used). */
  private placement (advert: Advert): { hasModel: boolean } {
    return { hasModel: hasModel(advert, this.meta.model.sha256) }
  }

  private setWorker (peerId: string, advert: Advert): void {
    if (!advert.worker) return
    if (!this.active.has(peerId) && this.active.size >= (this.o.maxWorkers ?? Infinity)) {
      this.standby.set(peerId, advert)
      return
    }
    this.active.add(peerId)
    this.advertOf.set(peerId, advert)
    this.register(peerId)
    this.locate(peerId)
    this.blockedCheckedAt = Number.NEGATIVE_INFINITY // who may work changed: look again at once
    this.pump()
  }

  private register (peerId: string): void {
    const advert = this.advertOf.get(peerId)
    if (advert == null) return
    const sha = this.meta.model.sha256
    const groups = this.groups.get(peerId)
    this.scheduler.setWorker({
      peerId,
      slots: Math.min(MAX_WORKER_SLOTS, Math.max(1, advert.slots)),
      eligible: canRun(advert, sha, this.meta.model.size),
      hasModel: hasModel(advert, sha),
      groups,
      placed: groups != null || !this.placing
    })
  }

  /** Workers must be placed (their connection's address known) before they count as independent. */
  private get placing (): boolean {
    return this.o.endpoint != null && (this.o.diversity ?? 'standard') !== 'lan'
  }

  /**
   * Learns a worker's diversity groups from its direct connection, once it has one (the first
   * dispatch dials it); until then the scheduler treats it as unplaced. No connection yet, or a
   * failed lookup: tried again after its next result.
   */
  private locate (peerId: string): void {
    const endpoint = this.o.endpoint
    if (endpoint == null || peerId === LOCAL_PEER || this.located.has(peerId) || this.groups.has(peerId)) return
    if (!this.o.tasks.hasDirect(peerIdFromString(peerId))) return
    this.located.add(peerId)
    endpoint(peerId).then(e => {
      this.located.delete(peerId)
      if (e == null || this.stopped || !this.active.has(peerId)) return
      this.groups.set(peerId, diversityGroups(e, this.o.diversity))
      this.register(peerId)
      // Placed, its votes may now decide tasks (the scheduler reconsiders them): the last one ends
      // the job here, with no result left to come that would check.
      this.checkFinished()
    }).catch(() => { this.located.delete(peerId) })
  }

  private removeWorker (peerId: string): void {
    this.standby.delete(peerId)
    this.located.delete(peerId)
    if (!this.active.delete(peerId)) return
    this.advertOf.delete(peerId)
    for (const [id, a] of this.live) if (a.peerId === peerId) this.live.delete(id)
    this.scheduler.removeWorker(peerId)
    // Room for a standby: the best placed one takes it.
    const next = [...this.standby].sort(([, a], [, b]) => compareWorkers(this.placement(a), this.placement(b)))[0]
    if (next != null) {
      this.standby.delete(next[0])
      this.setWorker(next[0], next[1])
    }
    this.blockedCheckedAt = Number.NEGATIVE_INFINITY
    this.pump()
  }

  private pump (): void {
    if (this.stopped || !this.started) return
    // Spot checks behind: hold dispatch back until this machine catches up.
    if (this.spotQueue.length >= MAX_SPOT_QUEUE || this.spotBytes >= MAX_SPOT_QUEUE_BYTES) {
      this.changed()
      return
    }
    for (const a of this.scheduler.assign()) this.dispatch(a).catch((err: unknown) => { this.broken(err) })
    this.watchStall()
    this.changed()
  }

  /** Free workers, nothing running, and still nothing to hand out (see Scheduler.stuck). */
  private stalled (): boolean {
    return !this.stopped && this.scheduler.stuck && !this.spotRunning && this.spotQueue.length === 0
  }

  /** Arms the stall timer while workers sit free with nothing they may take; any dispatch disarms it. */
  private watchStall (): void {
    if (!this.stalled()) {
      clearTimeout(this.stallTimer)
      this.stallTimer = undefined
      return
    }
    const stallMs = this.o.stallMs ?? 90_000
    // Infinity: the job waits for workers however long it takes (setTimeout would fire at once).
    if (!Number.isFinite(stallMs)) return
    this.stallTimer ??= setTimeout(() => {
      this.stallTimer = undefined
      this.pump()
      if (!this.stalled()) return
      const n = this.scheduler.abandon()
      const excluded = this.scheduler.excludedWorkers.length
      this.unverified = `${n} task(s) could not be verified: no worker left that may run them (each needs ${this.meta.replicas} agreeing independent result(s)${excluded > 0 ? `; ${excluded} worker(s) excluded for wrong results` : ''})`
      this.checkFinished()
    }, stallMs)
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
    this.log({ type: 'assign', task: a.taskIndex, worker: a.peerId, taskId: request.taskId })
    let result: TaskResult | undefined
    let receipt: Receipt | undefined
    let error: ReturnType<typeof toTaskError> | undefined
    try {
      if (a.peerId === LOCAL_PEER) {
        result = await this.o.local!.run(request)
      } else {
        // The task protocol has checked the receipt's signature before handing the result over.
        const outcome = await this.o.tasks.run(peerIdFromString(a.peerId), request)
        result = outcome.result
        receipt = outcome.receipt
      }
    } catch (err) {
      error = toTaskError(err)
    }
    // An assignment whose worker was removed meanwhile was already re-queued: drop its outcome.
    if (!this.live.delete(a.id) || this.stopped) return
    if (result != null) {
      this.perPeer[a.peerId] = (this.perPeer[a.peerId] ?? 0) + 1
      if (receipt != null) this.log({ type: 'result', task: a.taskIndex, worker: a.peerId, receipt })
      const problem = this.o.declared == null ? undefined : outputProblem(this.o.declared, request.inputs, request.outputNames, result.outputs)
      if (problem != null) {
        this.lastErrors.set(a.taskIndex, clip(`malformed result: ${problem}`))
        this.scheduler.malformed(a, problem)
      } else {
        const ms = countedInferenceMs(result.timings?.inferenceMs, request.timeoutMs)
        this.inferenceMs += ms
        if (ms > 0) this.perPeerInferenceMs[a.peerId] = (this.perPeerInferenceMs[a.peerId] ?? 0) + ms
        this.scheduler.succeeded(a, result.outputs, receipt)
      }
      this.locate(a.peerId)
    } else {
      const reason = clip(`${error!.code}: ${error!.message}`)
      this.lastErrors.set(a.taskIndex, reason)
      this.log({ type: 'requeue', task: a.taskIndex, worker: a.peerId, reason })
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
    this.lastErrors.delete(d.taskIndex)
    const receipt = d.proof as Receipt | undefined
    const agreedBy = d.byRequester === true ? [LOCAL_PEER] : d.agreedBy
    const result: StoredResult = { index: d.taskIndex, outputs: d.outputs, agreedBy, crossChecked: d.crossChecked, receipt }
    this.pendingWrites.push(result)
    this.dispatchEvent(new CustomEvent<StoredResult>('result', { detail: result }))
    // The winning outputs are the receipt's worker's own, whose digest the task protocol checked: no second hash per task.
    this.log({ type: 'decided', task: d.taskIndex, workers: agreedBy, outputsSha256: receipt?.outputsSha256 ?? tensorsSha256(d.outputs) })
    this.scheduleFlush()
    const check = this.o.spotCheck
    // The requester's own results need no check; every other decision is a candidate.
    if (check != null && d.byRequester !== true && !d.agreedBy.includes(LOCAL_PEER) && this.random() < check.fraction) {
      this.spotQueue.push(d)
      this.spotBytes += outputBytes(d.outputs)
      this.runSpotChecks().catch((err: unknown) => { this.broken(err) })
    }
  }

  /** Decided tasks that a convicted worker voted for: their stored results go, they are decided again. */
  private onRevoke (tasks: number[]): void {
    const revoked = new Set(tasks)
    this.pendingWrites = this.pendingWrites.filter(r => !revoked.has(r.index))
    this.revokedWrites.push(...tasks)
    this.dispatchEvent(new CustomEvent<number[]>('revoke', { detail: tasks }))
    this.scheduleFlush()
    this.checkFinished()
  }

  /** One recomputation at a time: the requester's own machine is not a worker pool. */
  private async runSpotChecks (): Promise<void> {
    if (this.spotRunning) return
    this.spotRunning = true
    try {
      for (let d = this.spotQueue.shift(); d != null && !this.stopped; d = this.spotQueue.shift()) {
        this.spotBytes -= outputBytes(d.outputs)
        await this.spotCheck(d, this.o.spotCheck!)
        // A slot freed in the backlog: dispatch may resume.
        this.pump()
      }
    } finally {
      this.spotRunning = false
      this.spotQueue.length = 0
      this.spotBytes = 0
      this.pump()
      this.checkFinished()
    }
  }

  private async spotCheck (d: Decision, check: SpotCheck): Promise<void> {
    // A task re-opened meanwhile (its voter convicted by another check) is decided afresh.
    if (this.scheduler.taskState(d.taskIndex) !== 'done') return
    const { inputs, outputNames } = this.o.source.task(d.taskIndex)
    let mine: WireTensor[]
    try {
      mine = await check.recompute({ taskId: `${this.meta.jobId}/${d.taskIndex}/check`, jobId: this.meta.jobId, model: this.meta.model, inputs, timeoutMs: 0, outputNames })
    } catch {
      return // this machine could not run it: no verdict either way
    }
    if (this.stopped) return
    this.spot.done++
    const match = this.o.compare(mine, d.outputs)
    for (const worker of d.agreedBy) this.log({ type: 'spot-check', task: d.taskIndex, worker, match })
    if (match) return
    this.spot.mismatches++
    for (const worker of d.agreedBy) {
      const discarded = this.scheduler.convict(worker)
      this.log({ type: 'conviction', worker, reason: `its result for task ${d.taskIndex} differs from the requester's own computation`, discarded })
    }
    this.scheduler.settle(d.taskIndex, mine)
  }

  private scheduleFlush (): void {
    this.flushTimer ??= setTimeout(() => { this.flush().catch((err: unknown) => { this.broken(err) }) }, this.o.flushMs ?? 250)
  }

  /**
   * Writes what is pending. Everything is taken at once and flushes run one after another: a
   * revocation and the decision that replaces it must reach the store in the order they happened.
   */
  private async flush (): Promise<void> {
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    const lines = this.auditLines
    const revoked = this.revokedWrites
    const batch = this.pendingWrites
    this.auditLines = []
    this.revokedWrites = []
    this.pendingWrites = []
    const { store } = this.o
    const jobId = this.meta.jobId
    const write = async (): Promise<void> => {
      // The log first: a result on disk is always explained by the log before it. If the store
      // refuses lines, nothing more is logged in this run (later lines would chain onto lines that
      // were never written); a resumed run continues the chain from the store's last line.
      if (lines.length > 0) {
        try {
          await store.appendAudit(jobId, lines)
        } catch (err) {
          this.audit = undefined
          this.auditLines = []
          throw err
        }
      }
      if (revoked.length > 0) await store.deleteResults(jobId, revoked)
      if (batch.length > 0) await store.putResults(jobId, batch)
      await store.putReputation(this.o.reputation.toJSON())
      await this.saveMeta()
    }
    this.writing.add(batch)
    const run = this.flushing.then(write, write).finally(() => { this.writing.delete(batch) })
    this.flushing = run.catch(() => {})
    await run
  }

  /**
   * Results decided and not yet in the store (waiting for a flush, or being written). With what
   * the store holds, read after this, they are every result decided so far: a reader that starts
   * mid-job (Job.results()) misses none of the last moments' decisions.
   */
  unflushed (): StoredResult[] {
    return [...[...this.writing].flat(), ...this.pendingWrites]
  }

  private async saveMeta (): Promise<void> {
    const p = this.progress
    await this.putMeta({ ...this.meta, updatedAt: Date.now(), stats: { ...this.meta.stats, done: p.done, failed: p.failed, crossChecked: p.crossChecked, disagreements: p.disagreements, inferenceMs: Math.round(this.priorInferenceMs + p.inferenceMs) } })
  }

  private async setState (state: JobState): Promise<void> {
    if (state === this.meta.state) return
    await this.putMeta({ ...this.meta, state: nextState(this.meta.state, state), updatedAt: Date.now() })
    this.changed()
  }

  /**
   * Makes `meta` this run's and writes it. The store refuses it when the job ended elsewhere
   * meanwhile (cancelled from another process or tab: submit --cancel, the jobs page), atomically
   * with its check (core/job-store.ts): that end stands, this run takes it as its own and stops
   * (what it decided is written: results and the log go before the meta).
   */
  private async putMeta (meta: JobMeta): Promise<void> {
    this.meta = meta
    try {
      await this.o.store.putJob(meta)
    } catch (err) {
      if (!(err instanceof JobStateError) || err.code !== 'invalid-transition') throw err
      const stored = await this.o.store.getJob(meta.jobId)
      if (stored == null || !isTerminalState(stored.state)) throw err
      this.meta = stored
      if (this.stopped) return // stop() or the job's own end is under way: it finishes
      this.stopped = true
      this.detach()
      this.changed()
      this.finish()
    }
  }

  private checkFinished (): void {
    if (this.stopped) return
    const p = this.scheduler.progress
    // A spot check still to come may convict a worker and re-open tasks: the job is not over yet.
    if (this.scheduler.finished && !this.spotRunning && this.spotQueue.length === 0) {
      this.stopped = true
      this.detach()
      const failed = this.scheduler.failedTasks().length
      this.log({ type: 'job-end', state: failed > 0 ? 'failed' : 'done', done: p.done, failed })
      this.ending = (async () => {
        await this.flush()
        // Any of these writes may find the job cancelled elsewhere (see putMeta): that end stands.
        if (this.meta.state === 'running') await this.setState('verifying')
        if (!isTerminalState(this.meta.state)) {
          if (failed > 0) this.meta = { ...this.meta, error: this.unverified ?? `${failed} task(s) failed after repeated attempts` }
          await this.setState(failed > 0 ? 'failed' : 'done')
        }
        this.finish()
      })().catch((err: unknown) => {
        // The store failed at the very end: the job stays resumable; say why rather than hang.
        this.meta = { ...this.meta, error: `could not save the job's end: ${(err as Error).message}` }
        this.finish()
      })
    } else if (p.pending === 0 && this.meta.state === 'running') {
      this.setState('verifying').catch((err: unknown) => { this.broken(err) })
    } else if (p.pending > 0 && this.meta.state === 'verifying') {
      this.setState('running').catch((err: unknown) => { this.broken(err) })
    }
  }

  /**
   * Something this runner did itself threw (the store refused a write, a bug): the job stops,
   * resumable, with the reason, rather than leaving an unhandled rejection or a half-run job.
   */
  private broken (err: unknown): void {
    if (this.stopped) return
    this.meta = { ...this.meta, error: `the job stopped: ${(err as Error)?.message ?? String(err)}` }
    this.stop().catch(() => { this.finish() })
  }

  private log (entry: AuditEntry): void {
    this.audit?.append(entry)
    this.scheduleFlush()
  }

  private detach (): void {
    this.scheduler?.dispose()
    clearTimeout(this.stallTimer)
    this.stallTimer = undefined
    clearTimeout(this.blockedTimer)
    this.blockedTimer = undefined
    this.blocked.update(undefined)
    for (const off of this.listeners.splice(0)) off()
  }

  private changed (): void {
    this.checkBlocked()
    this.dispatchEvent(new Event('progress'))
  }
}

/**
 * The inference time a result counts for in a job's use (and so its cloud cost figure): the
 * worker's own figure, which it alone measures, taken only when it is a real duration within the
 * task's deadline (plus a second of clock slack); anything else (negative, NaN, a day) counts 0.
 */
export function countedInferenceMs (ms: unknown, timeoutMs: number): number {
  return typeof ms === 'number' && ms > 0 && ms < timeoutMs + 1000 ? ms : 0
}

function outputBytes (outputs: readonly WireTensor[]): number {
  return outputs.reduce((n, t) => n + t.data.byteLength, 0)
}

/**
 * One batch job's dispatch and verification, pure (no network, no timers but the injected clock).
 * An adapter feeds it workers (setWorker/removeWorker), sends what `assign()` hands out, and
 * reports each outcome (succeeded/failed); the scheduler decides when a task is final.
 *
 * Dispatch is demand-driven by credits: a worker holds at most `slots` of this job's assignments,
 * so faster workers come back for more sooner. Free credits are filled workers that already have
 * the model first (no transfer), then fastest first (unknown speeds last), each from, in order:
 *   1. the re-queue deque: tasks that lost an assignment (failure, timeout, worker removed) and
 *      tasks still wanting replicas, front first;
 *   2. the cursor over never-dispatched task indices;
 *   3. once every worker has had its regular work: tasks this worker itself failed before, only
 *      when no other eligible worker (busy or not) could take them instead;
 *   4. a speculative copy of a straggler, when nothing else is left for this worker.
 *
 * Speed is what this requester measured (each worker's completed assignments, an exponential
 * average), seeded by `msPerTask` from an earlier measurement; never what a worker claims, since a
 * liar would claim to be fastest to get the most work.
 *
 * Independence: workers that share a diversity group (same host, same /24 or /48, same relay:
 * see core/diversity.ts) count as one. Replicas of a task never go to two workers of one group,
 * and agreeing results from one group are one vote, so cheap identities on one machine cannot
 * outvote an honest worker.
 *
 * Conviction: when the requester catches a worker lying (its own recomputation disagrees with a
 * decided result: a spot check), `convict()` discards every vote that worker cast in this job,
 * decided tasks included: those tasks are re-opened and recomputed by others (`onRevoke`).
 *
 * Verification: a task is final when `need` results from distinct workers agree under the
 * comparator (need = replicas; with `adaptive`, 1 for a trusted peer's unchecked result). When
 * results disagree, replicas keep being dispatched, up to need + 2 results in all; the task is
 * decided by the first group to reach `need` (within that cap always a plurality, and for
 * replicas 2 after a disagreement 2 of 3 — a majority), and failed ('no-majority') as soon as no
 * group can reach `need` any more. Reputation is updated for every voter of a task decided by ≥ 2
 * results (agree for the winners, disagree for the rest); single-result and failed tasks change
 * nobody's reputation.
 *
 * Memory: per task one state byte and one attempts byte (typed arrays); objects only for tasks
 * that are dispatched and undecided (`records`, capped at max(1024, 2 × all slots): the cursor
 * waits rather than open more) and for assignments in flight (`flights`).
 *
 * Failures: 'bad-request', 'inference-failed' and 'timeout' count towards maxAttempts (they may be
 * the task's fault); 'busy', 'no-peer', 'peer-gone', 'model-unavailable' and
 * 'model-hash-mismatch' do not (the worker's), and removeWorker never does. The task goes back to
 * the front of the deque either way.
 */
import type { Clock } from './clock.js'
import type { TaskErrorCode } from './errors.js'
import type { OutputComparator } from './compare.js'
import type { Reputation } from './reputation.js'
import type { WireTensor } from './tensor.js'

export interface SchedulerWorker {
  peerId: string
  /** Credits: at most this many of this job's tasks in flight on the worker. */
  slots: number
  /** Can run this job's model and is not paused. */
  eligible: boolean
  /**
   * This requester's own earlier measurement for this model (ms per task), used until this job has
   * measured the worker itself. Never a figure the worker advertised.
   */
  msPerTask?: number
  /** Diversity groups (core/diversity.ts): workers sharing one are not independent witnesses. */
  groups?: readonly string[]
  /**
   * false while the requester has not yet learnt where the worker connects from: it works as
   * usual, but its votes count as related to every other worker's until it is placed (then the
   * tasks it voted on are reconsidered), so two identities cannot outvote anyone before their
   * addresses are known. Default true.
   */
  placed?: boolean
  /** Has the model's bytes already (a worker without them must fetch them first). */
  hasModel?: boolean
}

/** `id` is unique per assignment. */
export interface Assignment { id: number, taskIndex: number, peerId: string, speculative: boolean }

export interface Decision {
  taskIndex: number
  outputs: WireTensor[]
  agreedBy: string[]
  crossChecked: boolean
  /** Decided by the requester's own computation (a spot check that caught a lie), not by votes. */
  byRequester?: boolean
  /** What agreedBy[0] passed with its result (its signed receipt); `outputs` are agreedBy[0]'s own. */
  proof?: unknown
}

export interface SchedulerProgress {
  /** taskCount. */
  total: number
  /** Tasks decided, those restored from `done` included. */
  done: number
  /** Undecided tasks with at least one assignment in flight. */
  inFlight: number
  /** Undecided tasks with nothing in flight: total = done + failed + inFlight + pending. */
  pending: number
  /** Tasks decided by ≥ 2 results. */
  crossChecked: number
  /** Tasks whose results disagreed (decided with a losing vote, or failed with no majority). */
  disagreements: number
  /** Results received for assignments in flight (votes, plus those that came after their task was final). */
  replicasRun: number
  /** Addition: tasks given up (failedTasks().length). */
  failed: number
  /** Addition: tasks restored as done from the `done` option. */
  resumed: number
  /** Addition: assignments in flight (replicas, speculative copies and leftovers of final tasks included). */
  running: number
  /** Addition: speculative copies dispatched so far. */
  speculative: number
}

export interface SchedulerOptions {
  taskCount: number
  /** 1..3: distinct workers whose results must agree before a task is final. */
  replicas: number
  /**
   * true: replicas is used for untrusted peers only; a trusted peer's single result is final
   * unless spot-checked (Reputation.spotCheckProbability). A checked task needs max(replicas, 2)
   * agreeing results (a check needs two), so with replicas 1 an untrusted peer's result is
   * always checked once.
   */
  adaptive?: boolean
  compare: OutputComparator
  reputation: Reputation
  clock: Clock
  /** Injectable for tests (seeded); default Math.random. */
  random?: () => number
  /** An assignment with no answer by then is failed with 'timeout' and re-queued (default 60 s). */
  taskTimeoutMs?: number
  /** Failures of one task before the job gives up on it (default 5, at most 255). */
  maxAttempts?: number
  /**
   * Tasks already final (resuming a job): never dispatched again. With its voters, a restored task
   * is re-opened if one of them is convicted later.
   */
  done?: Iterable<number | { index: number, agreedBy: string[], crossChecked?: boolean }>
  /** Addition: copy stragglers near the end of the job (default true). */
  speculate?: boolean
  /** Addition: an assignment is a straggler once it runs this many times its typical time (default 2). */
  stragglerFactor?: number
  /**
   * Addition: how long a worker that answered busy (or cannot get the model) gets nothing, unless
   * it succeeds or is updated first (default 2 s). A worker failing 3 tasks in a row (bad-request,
   * inference-failed, timeout) is backed off the same way, doubling per further failure up to 60 s.
   */
  busyBackoffMs?: number
  /**
   * A worker that loses a vote and whose reputation score then falls below this gets no more of
   * this job's tasks (default 0.3: a new peer caught once, or one caught lying again and again).
   * Its later results would all need checking anyway; excluding it keeps verification cheap.
   */
  excludeBelow?: number
}

/** 'unverifiable': given up by abandon(), no worker being left that could decide it. */
export type TaskFailure = 'max-attempts' | 'no-majority' | 'unverifiable'
export type TaskState = 'new' | 'active' | 'done' | 'failed'

// Task state byte: low two bits the state, QUEUED set while the index is in the re-queue deque.
const NEW = 0
const ACTIVE = 1
const DONE = 2
const FAILED = 3
const STATE = 3
const QUEUED = 4
const STATE_NAMES: TaskState[] = ['new', 'active', 'done', 'failed']

/** Failure codes that count towards maxAttempts: those that may be the task's fault. */
const COUNTED: ReadonlySet<TaskErrorCode> = new Set<TaskErrorCode>(['bad-request', 'inference-failed', 'timeout'])
/** Failure codes that back the worker off: it has no room, or cannot run this model. */
const BACK_OFF: ReadonlySet<TaskErrorCode> = new Set<TaskErrorCode>(['busy', 'model-unavailable', 'model-hash-mismatch'])

/** Malformed answers to one task after which each further one uses up an attempt. */
const MALFORMED_BEFORE_COUNTED = 3

/** Failures in a row (of the counted kind) after which a worker is backed off, doubling each time. */
const FAIL_STREAK_BACKOFF = 3
const MAX_BACKOFF_MS = 60_000

/**
 * Started-but-undecided tasks are capped at max(this, 2 × all workers' slots): when tasks wait for
 * replicas that no present worker may run (too few distinct workers), the cursor stops instead of
 * opening every task of the job.
 */
const MIN_OPEN_TASKS = 1024

/** Completed durations kept for the typical task time (median). */
const DURATION_SAMPLES = 63
/** Slack for timer rounding (ms): a timer due at t may fire at t minus an ulp. */
const EPS = 1e-6

interface WorkerState {
  w: SchedulerWorker
  seq: number
  /** This job's measurement (exponential average of completed assignments, ms). */
  measured?: number
  inFlight: number
  /** Counted failures since its last success. */
  failStreak: number
  backedOff: boolean
  /** 'busy': it said so (or cannot get the model); 'failing': it failed several tasks in a row. */
  backoffKind?: 'busy' | 'failing'
  backoffTimer: unknown
}

interface Flight {
  a: Assignment
  start: number
  worker: WorkerState
}

interface Group {
  peers: string[]
  /**
   * Each member's own outputs and what it passed with them (see Decision.proof), in step with
   * `peers`. The group compares and decides with its first member's outputs, which its proof covers.
   */
  results: WireTensor[][]
  proofs: unknown[]
}

/** An undecided task that has been dispatched at least once. */
interface TaskRecord {
  /** Agreeing results required; 0 until drawn at its next first dispatch. */
  need: number
  results: number
  groups: Group[]
  /** Its assignments in flight (replicas and speculative copies). */
  flights: Assignment[]
  /** Workers this task failed on (tried again there only as a last resort). */
  failedOn?: string[]
  /** Malformed answers it got. */
  malformed?: number
}

/** Weight of the newest duration in a worker's measured speed. */
const SPEED_ALPHA = 0.2

function speedOf (w: Pick<SchedulerWorker, 'msPerTask'>): number {
  const ms = w.msPerTask
  return ms !== undefined && ms > 0 && Number.isFinite(ms) ? ms : Number.POSITIVE_INFINITY
}

/**
 * The order in which work goes to workers: those that have the model first (no transfer), then
 * the fastest (unknown speeds last). Batches, single tasks from the page and a job's standbys all
 * use it. Ties compare 0: callers break them (arrival order, round robin).
 */
export function compareWorkers (x: Pick<SchedulerWorker, 'hasModel' | 'msPerTask'>, y: Pick<SchedulerWorker, 'hasModel' | 'msPerTask'>): number {
  if ((x.hasModel === true) !== (y.hasModel === true)) return x.hasModel === true ? -1 : 1
  const a = speedOf(x)
  const b = speedOf(y)
  return a !== b ? (a < b ? -1 : 1) : 0
}

/** A worker as the ordering sees it: its measured speed once this job has one. */
function ordering (ws: WorkerState): Pick<SchedulerWorker, 'hasModel' | 'msPerTask'> {
  return { hasModel: ws.w.hasModel, msPerTask: ws.measured ?? ws.w.msPerTask }
}

function sameGroups (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a == null || b == null) return a === b
  return a.length === b.length && a.every((g, i) => g === b[i])
}

export class Scheduler {
  /** Fires once each time a task is decided (again after onRevoke re-opened it). */
  onDecision?: (d: Decision) => void
  /** A decided task had results that lost the vote: `peers` are the losers. */
  onDisagreement?: (taskIndex: number, peers: string[]) => void
  /**
   * Something changed that may let assign() hand out more (or finished flip): fires at the end of
   * succeeded/failed/setWorker/removeWorker and on internal timers (timeouts, backoff expiry, a
   * straggler appearing). Never re-entrant: a change made inside the handler fires it again after
   * the handler returns.
   */
  onChange?: () => void
  /** Addition: the job gave up on a task. */
  onFailed?: (taskIndex: number, reason: TaskFailure) => void
  /**
   * Addition: an assignment still in flight is no longer needed (its task became final). It
   * still holds its worker's credit: the adapter may cancel it on the worker and report
   * failed(a, …) to free the credit, or let it run (its result is dropped). It times out otherwise.
   */
  onCancel?: (a: Assignment) => void
  /** Addition: an assignment ran past taskTimeoutMs and was failed with 'timeout'. */
  onTimeout?: (a: Assignment) => void
  /** A worker gets no more of this job's tasks: it lost votes until its score fell too low, or was convicted. */
  onExclude?: (peerId: string, reason: 'low-reputation' | 'convicted') => void
  /** Decided tasks re-opened because the vote of `peerId` (convicted, or excluded for lost votes) was part of their decision. */
  onRevoke?: (taskIndices: number[], peerId: string) => void
  /** A result was malformed (see malformed()): why, and whose it was. */
  onMalformed?: (a: Assignment, reason: string) => void

  private readonly total: number
  private readonly replicas: number
  private readonly adaptive: boolean
  private readonly compare: OutputComparator
  private readonly reputation: Reputation
  private readonly clock: Clock
  private readonly random: () => number
  private readonly taskTimeoutMs: number
  private readonly maxAttempts: number
  private readonly speculateEnabled: boolean
  private readonly stragglerFactor: number
  private readonly busyBackoffMs: number

  private readonly state: Uint8Array
  private readonly attempts: Uint8Array
  private cursor = 0
  /** Re-queue deque, front at index 0; entries may be stale (dropped when met). */
  private readonly queue: number[] = []
  private readonly records = new Map<number, TaskRecord>()
  /** In dispatch order, so also in deadline order (one timeout for all). */
  private readonly flights = new Map<number, Flight>()
  private readonly workers = new Map<string, WorkerState>()
  /** Workers caught often enough to get no more of this job's tasks. */
  private readonly excluded = new Set<string>()
  /** Workers caught lying by the requester itself: none of their votes count. */
  private readonly convicted = new Set<string>()
  /** Workers just excluded whose votes are to be discarded once the change in progress is done. */
  private readonly pendingDiscard: string[] = []
  /** Diversity groups of every worker seen in this job (kept after removal: its votes stay). */
  private readonly groupsOf = new Map<string, readonly string[]>()
  /** Workers whose groups are not known yet (SchedulerWorker.placed false). */
  private readonly unplaced = new Set<string>()
  /**
   * For conviction: per worker, the decisions it voted for, as (task, generation) pairs; a pair is
   * current while the task is done and its generation unchanged (a re-decided task gets a new one).
   * Numbers, not objects per task: a million-task job costs a few bytes per vote.
   */
  private readonly votesBy = new Map<string, number[]>()
  private readonly generation: Uint32Array
  /** Per task: decided in this run with ≥ 2 results (so un-deciding it lowers crossCheckedCount). */
  private readonly checkedHere: Uint8Array
  private readonly excludeBelow: number
  /** Workers fastest first. */
  private order: WorkerState[] = []
  private nextId = 1
  private nextSeq = 0
  private slotTotal = 0

  private doneCount = 0
  private failedCount = 0
  private resumedCount = 0
  private tasksInFlight = 0
  private crossCheckedCount = 0
  private disagreementCount = 0
  private replicasRunCount = 0
  private speculativeCount = 0
  private readonly failedList: number[] = []

  private readonly durations = new Float64Array(DURATION_SAMPLES)
  private durationCount = 0
  private durationNext = 0
  private medianCache: number | undefined

  private timeoutTimer: unknown
  private timeoutArmed = false
  private stragglerTimer: unknown
  private stragglerAt = Number.POSITIVE_INFINITY
  private notifying = false
  private changed = false

  constructor (options: SchedulerOptions) {
    const { taskCount, replicas } = options
    if (!Number.isSafeInteger(taskCount) || taskCount < 0) throw new RangeError(`taskCount must be a non-negative integer, not ${taskCount}`)
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 3) throw new RangeError(`replicas must be 1, 2 or 3, not ${replicas}`)
    const maxAttempts = options.maxAttempts ?? 5
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 255) throw new RangeError(`maxAttempts must be an integer in 1..255, not ${maxAttempts}`)
    const taskTimeoutMs = options.taskTimeoutMs ?? 60_000
    if (!(taskTimeoutMs > 0)) throw new RangeError(`taskTimeoutMs must be > 0, not ${taskTimeoutMs}`)
    this.total = taskCount
    this.replicas = replicas
    this.adaptive = options.adaptive ?? false
    this.compare = options.compare
    this.reputation = options.reputation
    this.clock = options.clock
    this.random = options.random ?? Math.random
    this.taskTimeoutMs = taskTimeoutMs
    this.maxAttempts = maxAttempts
    this.speculateEnabled = options.speculate ?? true
    this.stragglerFactor = options.stragglerFactor ?? 2
    this.busyBackoffMs = options.busyBackoffMs ?? 2000
    this.excludeBelow = options.excludeBelow ?? 0.3
    this.state = new Uint8Array(taskCount)
    this.attempts = new Uint8Array(taskCount)
    this.generation = new Uint32Array(taskCount)
    this.checkedHere = new Uint8Array(taskCount)
    for (const d of options.done ?? []) {
      const i = typeof d === 'number' ? d : d.index
      if (!Number.isInteger(i) || i < 0 || i >= taskCount) throw new RangeError(`done index ${i} is out of range 0..${taskCount - 1}`)
      if (this.state[i] === DONE) continue
      this.state[i] = DONE
      this.doneCount++
      this.resumedCount++
      if (typeof d !== 'number') this.recordVotes(i, d.agreedBy)
    }
  }

  /** Adds or updates a worker (slots, eligibility, speed); also lifts a busy backoff. */
  setWorker (w: SchedulerWorker): void {
    const slots = Number.isFinite(w.slots) && w.slots > 0 ? Math.floor(w.slots) : 0
    const groups = w.groups != null && w.groups.length > 0 ? [...w.groups] : undefined
    const placed = w.placed !== false
    const worker: SchedulerWorker = { peerId: w.peerId, slots, eligible: w.eligible, msPerTask: w.msPerTask, hasModel: w.hasModel === true, groups, placed }
    if (groups != null) this.groupsOf.set(w.peerId, groups)
    else this.groupsOf.delete(w.peerId)
    const wasUnplaced = this.unplaced.has(w.peerId)
    const groupsChanged = !sameGroups(this.workers.get(w.peerId)?.w.groups, groups)
    if (placed) this.unplaced.delete(w.peerId)
    else this.unplaced.add(w.peerId)
    let ws = this.workers.get(w.peerId)
    if (ws == null) {
      this.slotTotal += slots
      ws = { w: worker, seq: this.nextSeq++, inFlight: 0, failStreak: 0, backedOff: false, backoffTimer: undefined }
      this.workers.set(w.peerId, ws)
      this.order.push(ws)
      this.sortWorkers()
    } else {
      const old = ws.w
      // Nothing new (an advert repeated): no onChange, so a handler that calls setWorker cannot
      // loop. A repeated advert lifts a busy backoff (as specified) but not a failing one.
      const same = old.slots === slots && old.eligible === worker.eligible && old.msPerTask === worker.msPerTask && old.hasModel === worker.hasModel && sameGroups(old.groups, groups) && old.placed === placed
      if (same && (!ws.backedOff || ws.backoffKind === 'failing')) return
      ws.w = worker
      this.slotTotal += slots - old.slots
      if (old.msPerTask !== worker.msPerTask || old.hasModel !== worker.hasModel) this.sortWorkers()
    }
    this.liftBackoff(ws)
    if ((wasUnplaced && placed) || groupsChanged) this.reconsider(w.peerId)
    this.notify()
  }

  /**
   * The votes of `peerId` now count differently (it was placed, or its groups changed): tasks it
   * voted on may have enough independent agreeing results now, or want more.
   */
  private reconsider (peerId: string): void {
    for (const [t, rec] of [...this.records]) {
      if (!rec.groups.some(g => g.peers.includes(peerId))) continue
      const winner = rec.groups.find(g => this.independent(g.peers) >= rec.need)
      if (winner != null && rec.need > 0) this.decide(t, rec, winner)
      else this.requeue(t, rec)
    }
  }

  /** Worker lost: its in-flight assignments are dropped and their tasks re-queued at the front. Returns the re-queued task indices. */
  removeWorker (peerId: string): number[] {
    const ws = this.workers.get(peerId)
    if (ws == null) return []
    this.liftBackoff(ws)
    this.workers.delete(peerId)
    this.slotTotal -= ws.w.slots
    this.order = this.order.filter(x => x !== ws)
    const affected: number[] = []
    // Gone before it could be placed: its votes on undecided tasks can never count, so they go
    // (a peer that answers and leaves must not hold tasks hostage).
    if (this.unplaced.delete(peerId)) {
      for (const [t, rec] of this.records) {
        if (!this.dropVotes(rec, peerId)) continue
        if (rec.flights.length === 0 && rec.results === 0) rec.need = 0
        if (this.wanting(rec)) affected.push(t)
      }
    }
    for (const f of this.flights.values()) {
      if (f.worker !== ws) continue
      this.removeFlight(f)
      const rec = this.records.get(f.a.taskIndex)
      if (rec == null) continue
      if (rec.flights.length === 0 && rec.results === 0) rec.need = 0
      if (this.wanting(rec)) affected.push(f.a.taskIndex)
    }
    this.requeueFront(affected)
    this.notify()
    return affected
  }

  /** Fills every free credit right now; never gives one worker two replicas of the same task. */
  assign (): Assignment[] {
    const out: Assignment[] = []
    // First regular work for everyone; only then retries on workers that failed the task, and copies.
    for (const lastResort of [false, true]) {
      for (const ws of this.order) {
        while (this.free(ws) > 0) {
          const a = this.pick(ws, lastResort)
          if (a == null) break
          out.push(a)
        }
      }
    }
    if (this.order.some(ws => this.free(ws) > 0)) this.armStraggler()
    return out
  }

  /**
   * Reports a result, with an opaque `proof` the Decision carries when these outputs win; returns
   * the Decision when it makes the task final. Late or duplicate results return undefined.
   */
  succeeded (a: Assignment, outputs: WireTensor[], proof?: unknown): Decision | undefined {
    const f = this.flight(a)
    if (f == null) return undefined
    const t = f.a.taskIndex
    this.replicasRunCount++
    this.removeFlight(f)
    this.liftBackoff(f.worker)
    f.worker.failStreak = 0
    const ms = this.clock.now() - f.start
    this.recordDuration(ms)
    this.measure(f.worker, ms)
    const rec = this.records.get(t)
    if (rec == null) { this.notify(); return undefined } // already final: dropped
    // A solo (unchecked) task only takes a trusted peer's word: a result from anyone else (a
    // speculative copy, or a peer that lost trust meanwhile) turns it into a checked task.
    if (rec.need === 1 && this.adaptive && !this.reputation.trusted(f.a.peerId)) rec.need = this.checkedNeed()
    let group = rec.groups.find(g => this.compare(g.results[0], outputs))
    if (group == null) {
      group = { peers: [], results: [], proofs: [] }
      rec.groups.push(group)
    }
    group.peers.push(f.a.peerId)
    group.results.push(outputs)
    group.proofs.push(proof)
    rec.results++
    let decision: Decision | undefined
    if (this.independent(group.peers) >= rec.need) {
      decision = this.decide(t, rec, group)
    } else if (this.largestGroup(rec) + (this.cap(rec) - rec.results) < rec.need) {
      this.failTask(t, rec, 'no-majority')
    } else {
      this.requeue(t, rec)
    }
    this.notify()
    return decision
  }

  /**
   * Reports a result that is not a well-formed answer (core/output-check.ts): a lie, not a vote.
   * The worker's reputation takes a disagreement (a new peer is excluded at once) and the task
   * goes back to the queue (without using up one of its attempts).
   */
  malformed (a: Assignment, reason: string): void {
    const f = this.flight(a)
    if (f == null) return
    this.replicasRunCount++
    this.onMalformed?.(f.a, reason)
    this.penalize(f.a.peerId)
    // Usually the worker's fault, not the task's, so it does not use up an attempt (fresh
    // identities could exhaust them); from the third malformed answer to one task on, the task
    // itself (or the model's declared outputs) is suspect and each one counts.
    const rec = this.records.get(f.a.taskIndex)
    const reports = rec == null ? 0 : (rec.malformed = (rec.malformed ?? 0) + 1)
    this.fail(f, 'inference-failed', reports >= MALFORMED_BEFORE_COUNTED)
    if (rec != null && reports < MALFORMED_BEFORE_COUNTED) (rec.failedOn ??= []).push(f.a.peerId)
    this.notify()
  }

  /**
   * Gives up every undecided task ('unverifiable'): the adapter saw the job stall, nothing in
   * flight and nobody left who may take its tasks (too few independent workers, the rest excluded
   * or convicted). Returns how many tasks were given up.
   */
  abandon (): number {
    let n = 0
    for (let t = 0; t < this.total; t++) {
      const state = this.state[t] & STATE
      if (state === DONE || state === FAILED) continue
      this.failTask(t, this.records.get(t) ?? { need: 0, results: 0, groups: [], flights: [] }, 'unverifiable')
      n++
    }
    this.queue.length = 0
    this.notify()
    return n
  }

  /** Reports a failure: the task is re-queued (unless given up); 'busy' also backs the worker off. */
  failed (a: Assignment, code: TaskErrorCode): void {
    const f = this.flight(a)
    if (f == null) return
    this.fail(f, code)
    this.notify()
  }

  get progress (): SchedulerProgress {
    return {
      total: this.total,
      done: this.doneCount,
      inFlight: this.tasksInFlight,
      pending: this.total - this.doneCount - this.failedCount - this.tasksInFlight,
      crossChecked: this.crossCheckedCount,
      disagreements: this.disagreementCount,
      replicasRun: this.replicasRunCount,
      failed: this.failedCount,
      resumed: this.resumedCount,
      running: this.flights.size,
      speculative: this.speculativeCount
    }
  }

  /** Every task final (done or failed). */
  get finished (): boolean {
    return this.doneCount + this.failedCount === this.total
  }

  /** Workers excluded from this job for losing votes (see `excludeBelow`) or convicted. */
  get excludedWorkers (): string[] {
    return [...this.excluded]
  }

  /**
   * Undecided tasks remain, nothing is in flight, and some worker is free to work (eligible, not
   * excluded or backed off, credits left) yet assign() gives it nothing, or every worker present
   * is excluded: the tasks need witnesses this job does not have. (With no worker, or only busy
   * or paused ones, the job is waiting for workers, not stuck.)
   * Meaningful right after assign().
   */
  get stuck (): boolean {
    if (this.finished || this.flights.size > 0 || this.order.length === 0) return false
    return this.order.some(ws => this.free(ws) > 0) || this.order.every(ws => this.excluded.has(ws.w.peerId))
  }

  /** Workers convicted in this job. */
  get convictedWorkers (): string[] {
    return [...this.convicted]
  }

  /**
   * The requester caught `peerId` lying (its own computation of a task disagreed with a result
   * the worker vouched for). The worker gets nothing more, its reputation is ruined, and every
   * vote it cast in this job is discarded: undecided tasks lose its results and assignments,
   * decided tasks it helped decide are re-opened (onRevoke) and recomputed by other workers.
   * Returns the re-opened task indices.
   */
  convict (peerId: string): number[] {
    if (this.convicted.has(peerId)) return []
    this.convicted.add(peerId)
    // Workers excluded for losing votes may have lost them to this one: they get another chance.
    for (const p of this.excluded) if (!this.convicted.has(p)) this.excluded.delete(p)
    this.excluded.add(peerId)
    this.reputation.convict(peerId, this.clock.now())
    this.onExclude?.(peerId, 'convicted')
    const revoked = this.discardVotes(peerId)
    this.notify()
    return revoked
  }

  /**
   * Every vote `peerId` cast in this job stops counting: its assignments are cancelled, its
   * results leave undecided tasks, and tasks it helped decide are re-opened (onRevoke). Returns
   * the re-opened task indices.
   */
  private discardVotes (peerId: string): number[] {
    const affected = new Set<number>()
    for (const f of [...this.flights.values()]) {
      if (f.a.peerId !== peerId) continue
      this.removeFlight(f)
      this.onCancel?.(f.a)
      affected.add(f.a.taskIndex)
    }
    for (const [t, rec] of this.records) if (this.dropVotes(rec, peerId)) affected.add(t)
    const revoked: number[] = []
    const votes = this.votesBy.get(peerId) ?? []
    this.votesBy.delete(peerId)
    for (let i = 0; i < votes.length; i += 2) {
      const t = votes[i]
      if ((this.state[t] & STATE) !== DONE || this.generation[t] !== votes[i + 1]) continue
      this.generation[t]++
      this.state[t] = ACTIVE
      this.doneCount--
      if (this.checkedHere[t] === 1) this.crossCheckedCount--
      this.checkedHere[t] = 0
      this.records.set(t, { need: 0, results: 0, groups: [], flights: [] })
      revoked.push(t)
      affected.add(t)
    }
    const requeue: number[] = []
    for (const t of affected) {
      const rec = this.records.get(t)
      if (rec == null) continue
      if (rec.flights.length === 0 && rec.results === 0) rec.need = 0
      if (this.wanting(rec)) requeue.push(t)
    }
    this.requeueFront(requeue.sort((x, y) => x - y))
    if (revoked.length > 0) this.onRevoke?.(revoked, peerId)
    return revoked
  }

  /**
   * Decides a task with the requester's own outputs (it recomputed the task and trusts itself
   * over any worker). Returns the Decision, or undefined when the task is already done.
   */
  settle (taskIndex: number, outputs: WireTensor[]): Decision | undefined {
    if (this.taskState(taskIndex) === 'done') return undefined
    const state = this.state[taskIndex] & STATE
    const rec = this.records.get(taskIndex) ?? { need: 1, results: 0, groups: [], flights: [] }
    if (state === FAILED) {
      this.failedCount--
      this.failedList.splice(this.failedList.indexOf(taskIndex), 1)
    }
    this.finalize(taskIndex, rec, DONE)
    this.doneCount++
    this.generation[taskIndex]++
    const decision: Decision = { taskIndex, outputs, agreedBy: [], crossChecked: false, byRequester: true }
    for (const a of rec.flights) this.onCancel?.(a)
    this.onDecision?.(decision)
    this.notify()
    return decision
  }

  /** Tasks given up (after maxAttempts, or with no majority), ascending. */
  failedTasks (): number[] {
    return [...this.failedList].sort((x, y) => x - y)
  }

  /** Addition: one task's state. */
  taskState (taskIndex: number): TaskState {
    if (!Number.isInteger(taskIndex) || taskIndex < 0 || taskIndex >= this.total) throw new RangeError(`no task ${taskIndex}`)
    return STATE_NAMES[this.state[taskIndex] & STATE]
  }

  /** Addition: objects held for tasks and assignments (undecided records + flights): O(in flight + undecided), never O(taskCount). */
  get tracked (): number {
    return this.records.size + this.flights.size + this.queue.length
  }

  /** Addition: cancels the scheduler's timers (the job is over or abandoned). */
  dispose (): void {
    if (this.timeoutArmed) this.clock.clearTimeout(this.timeoutTimer)
    this.timeoutArmed = false
    if (this.stragglerAt !== Number.POSITIVE_INFINITY) this.clock.clearTimeout(this.stragglerTimer)
    this.stragglerAt = Number.POSITIVE_INFINITY
    for (const ws of this.workers.values()) this.liftBackoff(ws)
  }

  // --- dispatch ---

  private free (ws: WorkerState): number {
    return ws.w.eligible && !ws.backedOff && !this.excluded.has(ws.w.peerId) ? ws.w.slots - ws.inFlight : 0
  }

  /** Regular work: the deque (tasks this worker did not fail), then the cursor. Last resort: tasks it failed, then a speculative copy. */
  private pick (ws: WorkerState, lastResort: boolean): Assignment | undefined {
    const peer = ws.w.peerId
    for (let i = 0; i < this.queue.length;) {
      const t = this.queue[i]
      const rec = this.records.get(t)
      if (rec == null || !this.wanting(rec)) {
        this.queue.splice(i, 1)
        if (rec != null) this.state[t] &= ~QUEUED
        continue
      }
      if (this.holds(rec, peer) || (rec.failedOn?.includes(peer) === true && (!lastResort || this.someoneElseCan(rec)))) { i++; continue }
      return this.takeQueued(i, t, rec, ws)
    }
    if (lastResort) return this.speculate(ws)
    if (this.records.size >= Math.max(MIN_OPEN_TASKS, 2 * this.slotTotal)) return undefined
    const t = this.nextFresh()
    if (t < 0) return undefined
    const rec: TaskRecord = { need: 0, results: 0, groups: [], flights: [] }
    this.records.set(t, rec)
    this.state[t] = ACTIVE
    const a = this.dispatch(t, rec, ws, false)
    if (this.wanting(rec)) this.requeueFront([t])
    return a
  }

  /** Another worker (eligible, even if busy now) could take this task without having failed it. */
  private someoneElseCan (rec: TaskRecord): boolean {
    for (const ws of this.order) {
      const p = ws.w.peerId
      if (ws.w.eligible && !this.excluded.has(p) && ws.w.slots > 0 && rec.failedOn?.includes(p) !== true && !this.holds(rec, p)) return true
    }
    return false
  }

  private takeQueued (i: number, t: number, rec: TaskRecord, ws: WorkerState): Assignment {
    const a = this.dispatch(t, rec, ws, false)
    if (!this.wanting(rec)) {
      this.queue.splice(i, 1)
      this.state[t] &= ~QUEUED
    }
    return a
  }

  private nextFresh (): number {
    while (this.cursor < this.total && (this.state[this.cursor] & STATE) !== NEW) this.cursor++
    return this.cursor < this.total ? this.cursor++ : -1
  }

  private dispatch (t: number, rec: TaskRecord, ws: WorkerState, speculative: boolean): Assignment {
    if (rec.need === 0) rec.need = this.drawNeed(ws.w.peerId)
    const a: Assignment = { id: this.nextId++, taskIndex: t, peerId: ws.w.peerId, speculative }
    this.flights.set(a.id, { a, start: this.clock.now(), worker: ws })
    ws.inFlight++
    if (rec.flights.length === 0) this.tasksInFlight++
    rec.flights.push(a)
    if (speculative) this.speculativeCount++
    this.armTimeout()
    return a
  }

  /** Agreeing results a task needs, drawn when it is (re)dispatched with no results and nothing in flight. */
  private drawNeed (peerId: string): number {
    if (!this.adaptive) return this.replicas
    if (!this.reputation.trusted(peerId)) return this.checkedNeed()
    return this.random() < this.reputation.spotCheckProbability(peerId) ? this.checkedNeed() : 1
  }

  private checkedNeed (): number {
    return Math.max(this.replicas, 2)
  }

  /** A copy of the longest-running straggler this worker does not already hold. */
  private speculate (ws: WorkerState): Assignment | undefined {
    if (!this.speculateEnabled) return undefined
    const now = this.clock.now()
    const peer = ws.w.peerId
    for (const f of this.flights.values()) {
      if (f.worker === ws) continue
      const rec = this.records.get(f.a.taskIndex)
      if (rec == null || rec.flights.some(x => x.speculative) || this.holds(rec, peer)) continue
      if (now - f.start + EPS < this.stragglerLimit(f)) continue
      return this.dispatch(f.a.taskIndex, rec, ws, true)
    }
    return undefined
  }

  /**
   * Running this long makes an assignment a straggler: factor × its typical time, the larger of
   * the worker's msPerTask and the median completed duration (adverts tend to leave transfer time
   * out; a slow worker's own figure keeps its normal tasks from being copied), whichever is known.
   */
  private stragglerLimit (f: Flight): number {
    const own = speedOf(f.worker.w)
    const median = this.median()
    const ms = own !== Number.POSITIVE_INFINITY ? Math.max(own, median ?? 0) : median
    return ms !== undefined ? this.stragglerFactor * ms : Number.POSITIVE_INFINITY
  }

  /** A worker sits idle with nothing to take: wake the adapter when the next assignment turns straggler. */
  private armStraggler (): void {
    if (!this.speculateEnabled || this.finished) return
    const now = this.clock.now()
    let at = Number.POSITIVE_INFINITY
    for (const f of this.flights.values()) {
      const rec = this.records.get(f.a.taskIndex)
      if (rec == null || rec.flights.some(x => x.speculative)) continue
      const due = f.start + this.stragglerLimit(f)
      if (due - now > EPS && due < at) at = due
    }
    if (at >= this.stragglerAt) return
    if (this.stragglerAt !== Number.POSITIVE_INFINITY) this.clock.clearTimeout(this.stragglerTimer)
    this.stragglerAt = at
    if (at === Number.POSITIVE_INFINITY) return
    this.stragglerTimer = this.clock.setTimeout(() => {
      this.stragglerAt = Number.POSITIVE_INFINITY
      this.notify()
    }, at - now)
  }

  // --- outcomes ---

  private flight (a: Assignment): Flight | undefined {
    const f = this.flights.get(a.id)
    return f != null && f.a.taskIndex === a.taskIndex && f.a.peerId === a.peerId ? f : undefined
  }

  private removeFlight (f: Flight): void {
    this.flights.delete(f.a.id)
    f.worker.inFlight--
    const rec = this.records.get(f.a.taskIndex)
    if (rec == null) return
    const i = rec.flights.indexOf(f.a)
    if (i < 0) return
    rec.flights.splice(i, 1)
    if (rec.flights.length === 0) this.tasksInFlight--
  }

  /** `counted`: whether it uses up one of the task's attempts (default: by its code). */
  private fail (f: Flight, code: TaskErrorCode, counted = COUNTED.has(code)): void {
    this.removeFlight(f)
    if (BACK_OFF.has(code)) this.backOff(f.worker, this.busyBackoffMs, 'busy')
    if (counted) {
      // A worker that keeps failing (broken runtime, always timing out) would eat every task's
      // attempts: rest it, longer each time, until it succeeds or is updated.
      const streak = ++f.worker.failStreak
      if (streak >= FAIL_STREAK_BACKOFF) this.backOff(f.worker, Math.min(MAX_BACKOFF_MS, this.busyBackoffMs * 2 ** (streak - FAIL_STREAK_BACKOFF)), 'failing')
    }
    const rec = this.records.get(f.a.taskIndex)
    if (rec != null) this.afterFailure(f.a.taskIndex, rec, f.a.peerId, counted)
  }

  private afterFailure (t: number, rec: TaskRecord, peerId: string, counted: boolean): void {
    if (counted) {
      (rec.failedOn ??= []).push(peerId)
      this.attempts[t] = Math.min(255, this.attempts[t] + 1)
      if (this.attempts[t] >= this.maxAttempts) {
        this.failTask(t, rec, 'max-attempts')
        return
      }
    }
    if (rec.flights.length === 0 && rec.results === 0) rec.need = 0
    if (this.wanting(rec)) this.requeueFront([t])
  }

  private decide (t: number, rec: TaskRecord, winner: Group): Decision {
    this.finalize(t, rec, DONE)
    this.doneCount++
    const crossChecked = rec.results >= 2
    if (crossChecked) this.crossCheckedCount++
    const losers = rec.groups.filter(g => g !== winner).flatMap(g => g.peers)
    if (crossChecked) {
      const now = this.clock.now()
      for (const p of winner.peers) this.reputation.agree(p, now)
      for (const p of losers) {
        this.reputation.disagree(p, now)
        this.excludeIfLow(p)
      }
    }
    this.checkedHere[t] = crossChecked ? 1 : 0
    this.recordVotes(t, winner.peers)
    if (losers.length > 0) this.disagreementCount++
    const decision: Decision = { taskIndex: t, outputs: winner.results[0], agreedBy: [...winner.peers], crossChecked, proof: winner.proofs[0] }
    for (const a of rec.flights) this.onCancel?.(a)
    this.onDecision?.(decision)
    if (losers.length > 0) this.onDisagreement?.(t, losers)
    return decision
  }

  private failTask (t: number, rec: TaskRecord, reason: TaskFailure): void {
    this.finalize(t, rec, FAILED)
    this.failedCount++
    this.failedList.push(t)
    if (reason === 'no-majority') this.disagreementCount++
    for (const a of rec.flights) this.onCancel?.(a)
    this.onFailed?.(t, reason)
  }

  /** Final: the record goes; its assignments still in flight keep their credits until answered or timed out. */
  private finalize (t: number, rec: TaskRecord, state: number): void {
    this.state[t] = state
    this.records.delete(t)
    if (rec.flights.length > 0) this.tasksInFlight--
  }

  // --- verification helpers ---

  /** The task is already with this worker, or with one known to share a group with it. */
  private holds (rec: TaskRecord, peer: string): boolean {
    if (this.groupsOf.size === 0) return rec.flights.some(a => a.peerId === peer) || rec.groups.some(g => g.peers.includes(peer))
    return rec.flights.some(a => this.sameGroup(a.peerId, peer)) || rec.groups.some(g => g.peers.some(p => this.sameGroup(p, peer)))
  }

  private largestGroup (rec: TaskRecord): number {
    let max = 0
    for (const g of rec.groups) max = Math.max(max, this.independent(g.peers))
    return max
  }

  /** Removes a peer's results from an undecided task; returns whether it had any. */
  private dropVotes (rec: TaskRecord, peerId: string): boolean {
    let dropped = false
    for (const g of rec.groups) {
      const i = g.peers.indexOf(peerId)
      if (i < 0) continue
      g.peers.splice(i, 1)
      g.results.splice(i, 1)
      g.proofs.splice(i, 1)
      rec.results--
      dropped = true
    }
    if (dropped) rec.groups = rec.groups.filter(g => g.peers.length > 0)
    return dropped
  }

  /** Remembers who decided task t (its current generation), for conviction. */
  private recordVotes (t: number, voters: readonly string[]): void {
    for (const p of voters) {
      let list = this.votesBy.get(p)
      if (list == null) this.votesBy.set(p, list = [])
      list.push(t, this.generation[t])
    }
  }

  /** The same peer, or two sharing a diversity group. */
  private sameGroup (x: string, y: string): boolean {
    if (x === y) return true
    const gx = this.groupsOf.get(x)
    const gy = this.groupsOf.get(y)
    return gx != null && gy != null && gx.some(g => gy.includes(g))
  }

  /** Two workers' votes are one witness: sharing a group, or either not placed yet. */
  private related (x: string, y: string): boolean {
    return this.unplaced.has(x) || this.unplaced.has(y) || this.sameGroup(x, y)
  }

  /** Independent witnesses among agreeing peers: each counts unless related to one counted before it. */
  private independent (peers: string[]): number {
    if (peers.length <= 1 || (this.groupsOf.size === 0 && this.unplaced.size === 0)) return peers.length
    const counted: string[] = []
    for (const p of peers) if (!counted.some(c => this.related(c, p))) counted.push(p)
    return counted.length
  }

  /** A malformed result: as bad as a lost vote. */
  private penalize (peerId: string): void {
    this.reputation.disagree(peerId, this.clock.now())
    this.excludeIfLow(peerId)
  }

  /**
   * A worker whose score fell below excludeBelow gets no more tasks, and the votes it already cast
   * are discarded (once the current change is done): a liar excluded before any spot check caught
   * it must not leave its earlier wins behind. An honest worker outvoted by colluders costs only
   * recomputation, and gets another chance when one of them is convicted.
   */
  private excludeIfLow (peerId: string): void {
    if (this.excluded.has(peerId) || this.reputation.score(peerId) >= this.excludeBelow) return
    this.excluded.add(peerId)
    this.onExclude?.(peerId, 'low-reputation')
    this.pendingDiscard.push(peerId)
  }

  /** Most results a task may collect: need + 2. */
  private cap (rec: TaskRecord): number {
    return rec.need + 2
  }

  /** More assignments this task wants in flight right now. */
  private wanting (rec: TaskRecord): boolean {
    if (rec.need === 0) return rec.flights.length === 0
    const target = Math.min(rec.need - this.largestGroup(rec), this.cap(rec) - rec.results)
    return rec.flights.length < target
  }

  private requeue (t: number, rec: TaskRecord): void {
    if (this.wanting(rec)) this.requeueFront([t])
  }

  /** Puts tasks at the front of the deque, in the given order (moving any already queued). */
  private requeueFront (tasks: number[]): void {
    if (tasks.length === 0) return
    const moving = tasks.filter(t => (this.state[t] & QUEUED) !== 0)
    if (moving.length > 0) {
      const set = new Set(moving)
      for (let i = this.queue.length - 1; i >= 0; i--) if (set.has(this.queue[i])) this.queue.splice(i, 1)
    }
    this.queue.unshift(...tasks)
    for (const t of tasks) this.state[t] |= QUEUED
  }

  // --- workers and timers ---

  private sortWorkers (): void {
    this.order.sort((x, y) => compareWorkers(ordering(x), ordering(y)) || x.seq - y.seq)
  }

  /** Folds a completed assignment's duration into the worker's measured speed; re-sorts when its place changes. */
  private measure (ws: WorkerState, ms: number): void {
    ws.measured = ws.measured === undefined ? ms : ws.measured + SPEED_ALPHA * (ms - ws.measured)
    const i = this.order.indexOf(ws)
    const before = this.order[i - 1]
    const after = this.order[i + 1]
    if ((before != null && compareWorkers(ordering(before), ordering(ws)) > 0) || (after != null && compareWorkers(ordering(ws), ordering(after)) > 0)) this.sortWorkers()
  }

  private backOff (ws: WorkerState, ms: number, kind: 'busy' | 'failing'): void {
    if (this.workers.get(ws.w.peerId) !== ws) return // removed meanwhile
    this.liftBackoff(ws)
    ws.backedOff = true
    ws.backoffKind = kind
    ws.backoffTimer = this.clock.setTimeout(() => {
      ws.backoffTimer = undefined
      this.liftBackoff(ws)
      this.notify()
    }, ms)
  }

  private liftBackoff (ws: WorkerState): void {
    if (ws.backoffTimer !== undefined) this.clock.clearTimeout(ws.backoffTimer)
    ws.backoffTimer = undefined
    ws.backedOff = false
    ws.backoffKind = undefined
  }

  private recordDuration (ms: number): void {
    this.durations[this.durationNext] = ms
    this.durationNext = (this.durationNext + 1) % DURATION_SAMPLES
    if (this.durationCount < DURATION_SAMPLES) this.durationCount++
    this.medianCache = undefined
  }

  /** Median of the recent completed durations; undefined before the first. */
  private median (): number | undefined {
    if (this.durationCount === 0) return undefined
    if (this.medianCache === undefined) {
      const sorted = this.durations.slice(0, this.durationCount).sort()
      this.medianCache = sorted[(this.durationCount - 1) >> 1]
    }
    return this.medianCache
  }

  /** One timer for all assignments: they start in map order and share one timeout, so the first is the next due. */
  private armTimeout (): void {
    if (this.timeoutArmed) return
    const head = this.flights.values().next()
    if (head.done === true) return
    const delay = Math.max(0, head.value.start + this.taskTimeoutMs - this.clock.now())
    this.timeoutArmed = true
    this.timeoutTimer = this.clock.setTimeout(() => {
      this.timeoutArmed = false
      this.expire()
    }, delay)
  }

  private expire (): void {
    const now = this.clock.now()
    const expired: Flight[] = []
    for (const f of this.flights.values()) {
      if (f.start + this.taskTimeoutMs > now + EPS) break
      expired.push(f)
    }
    for (const f of expired) {
      if (!this.flights.has(f.a.id)) continue
      this.fail(f, 'timeout')
      this.onTimeout?.(f.a)
    }
    this.armTimeout()
    if (expired.length > 0) this.notify()
  }

  private notify (): void {
    this.changed = true
    if (this.notifying) return
    this.notifying = true
    try {
      while (this.changed) {
        for (let p = this.pendingDiscard.shift(); p != null; p = this.pendingDiscard.shift()) this.discardVotes(p)
        this.changed = false
        this.onChange?.()
      }
    } finally {
      this.notifying = false
    }
  }
}

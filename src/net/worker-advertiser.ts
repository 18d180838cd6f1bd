/**
 * Keeps a worker's advert true: slots, models held and loaded, measured speed and backend per
 * model, paused or not. Only material changes ask for a publication (the pacer rate-limits them);
 * free slots and small speed drifts ride along with the next one or the heartbeat, so a busy worker
 * does not flood the network with every task it finishes.
 */
import { PIPELINE_DEPTH, SpeedTracker } from '../core/discovery/advert.js'
import type { Advert, PeerKind } from '../core/discovery/advert.js'
import type { WorkEvent, WorkQueue } from '../core/work-queue.js'

/**
 * Inference this quick (ms per task) is shorter than a network round trip: with one task waiting
 * the worker would idle between tasks and a batch could never form, so a whole run's worth waits.
 * A worker counts as quick once every model it has run has a mean speed within this, and stays so
 * until one's mean goes past QUICK_EXIT_FACTOR times it: a mean hovering at the bound must not
 * change the advert (and so publish it) with each task.
 */
export const QUICK_TASK_MS = 10
const QUICK_EXIT_FACTOR = 2
/**
 * Models count towards quickness while run within this many of the worker's last tasks: a volunteer
 * that read one OCR page an hour ago and now serves digits batches them again (a heavy model run
 * once kept it unbatched for good), while a load that keeps mixing the two stays unbatched.
 */
export const QUICK_RECENT_TASKS = 64

export interface WorkerIdentity {
  kind: PeerKind
  backend: string
  threads: number
  /** sha256 of the models whose bytes this worker has; read at each publish (its cache grows). */
  models: () => string[]
  /** Largest model it fetches from requesters (0: only the models it has). */
  maxModelBytes: number
  /** sha256 → the backend measured fastest for it. */
  backends?: () => Record<string, string>
}

/** Where adverts go: the discovery service. */
export interface AdvertSink {
  advertise(source: () => Advert): void
  changed(): void
}

export class WorkerAdvertiser {
  private readonly sink: AdvertSink
  private readonly queue: WorkQueue
  private readonly identity: WorkerIdentity
  private readonly speeds = new SpeedTracker()
  private readonly cached = new Set<string>()
  private lastKey = ''
  /** Tasks served since start (a refusal throws before the queue emits anything, so it never counts). */
  private tasksDone = 0
  private tasksFailed = 0
  /**
   * Every model run here lately is quick (QUICK_TASK_MS, QUICK_RECENT_TASKS): the advert offers a
   * batch's worth queued. Decided over those models, not per task: under a mixed load a flag per
   * task would flip with each one (and re-advertise), and a heavy model's requester would queue a
   * quick model's worth of its tasks.
   */
  private quick = false
  /** sha256 → the count of tasks done when it last finished, oldest first; only models within QUICK_RECENT_TASKS are kept. */
  private readonly lastRun = new Map<string, number>()

  constructor (sink: AdvertSink, queue: WorkQueue, identity: WorkerIdentity) {
    this.sink = sink
    this.queue = queue
    this.identity = identity
    sink.advertise(() => this.advert())
  }

  /** Feed every WorkQueue event here. */
  onWork (e: WorkEvent): void {
    if (e.state === 'done') this.tasksDone++
    if (e.state === 'failed') this.tasksFailed++
    if (e.state === 'done' && e.result != null) {
      this.speeds.add(e.sha256, e.result.timings.inferenceMs)
      this.cached.add(e.sha256)
      this.lastRun.delete(e.sha256)
      this.lastRun.set(e.sha256, this.tasksDone)
      const bound = this.quick ? QUICK_TASK_MS * QUICK_EXIT_FACTOR : QUICK_TASK_MS
      const since = this.tasksDone - QUICK_RECENT_TASKS
      // Oldest first (re-inserted on each run): models past the window leave, so this walks at most
      // QUICK_RECENT_TASKS models per task however many models requesters have sent.
      let quick = true
      for (const [sha, at] of this.lastRun) {
        if (at <= since) this.lastRun.delete(sha)
        else if ((this.speeds.get(sha) ?? 0) > bound) quick = false
      }
      this.quick = quick
    }
    // A task queued or started changes only free slots (never material); its end may (a model
    // loaded or fetched, a speed, a backend chosen). Three events a task add up at thousands a second.
    if (e.state === 'done' || e.state === 'failed') this.publish()
  }

  markCached (sha256: string): void {
    this.cached.add(sha256)
    this.publish()
  }

  setPaused (paused: boolean): void {
    this.queue.paused = paused
    this.publish()
  }

  /** Re-advertises if something material changed (a model cached, a backend chosen, paused…). */
  publish (): void {
    const key = materialKey(this.advert())
    if (key === this.lastKey) return
    this.lastKey = key
    this.sink.changed()
  }

  advert (): Advert {
    // Quick tasks: a batch's worth (what one run takes at once) waits per pipelined run, so the
    // next run starts full without a round trip. Heavy tasks keep one waiting: piling them on one
    // worker would only leave the others idle.
    const queueDepth = PIPELINE_DEPTH * (this.quick ? this.queue.batchTasks : 1)
    const slots = this.queue.slots + queueDepth
    return {
      kind: this.identity.kind,
      addrs: [],
      worker: true,
      paused: this.queue.paused,
      backend: this.identity.backend,
      threads: this.identity.threads,
      slots,
      freeSlots: Math.max(0, slots - this.queue.running - this.queue.queued),
      queueDepth,
      models: this.identity.models(),
      cached: [...this.cached],
      speeds: this.speeds.toRecord(),
      maxModelBytes: this.identity.maxModelBytes,
      backends: this.identity.backends?.() ?? {},
      // Ride along with whatever publication comes next: never a reason to publish (not in materialKey).
      tasksDone: this.tasksDone,
      tasksFailed: this.tasksFailed
    }
  }
}

/** What a requester decides on: everything but free slots, and speeds to within a factor of √2. */
function materialKey (a: Advert): string {
  const speeds = Object.entries(a.speeds).map(([sha, ms]) => `${sha}:${Math.round(2 * Math.log2(Math.max(ms, 0.001)))}`)
  return JSON.stringify([a.paused, a.slots, a.models, a.cached, a.backends, speeds])
}

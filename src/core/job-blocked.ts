/**
 * Why a batch job cannot progress right now, in words a person can act on ("needs 3 different
 * workers, 2 available", "no worker can run this model"), from the job runner's view of its
 * workers. Pure: the runner gathers the view (adverts, the scheduler's exclusions, diversity
 * groups, its connectivity) and a BlockedTracker remembers since when the job has been blocked.
 *
 * A job that is blocked is not given up here: the page keeps waiting (a person may open another
 * tab), the command-line tools and library callers choose how long to wait (`giveUpAfterMs`).
 */

export type BlockedCode = 'too-few-workers' | 'no-capable-worker' | 'no-worker' | 'relay-unreachable' | 'all-paused'

export interface JobBlocked {
  code: BlockedCode
  message: string
  /** When the job became blocked (ms, the tracker's clock: Date.now() in the job runner); kept while it stays blocked, whatever the reason. */
  sinceMs: number
}

/** What a requester says while it cannot reach the network (no relay holds its reservation). */
export const RELAY_UNREACHABLE = 'relay unreachable, retrying'

export interface BlockedWorker {
  peerId: string
  /** Its advert says it is paused (its volunteer stopped it). */
  paused: boolean
  /** It can run this job's model (has it, or may fetch one that large). */
  capable: boolean
  /** This job stopped giving it tasks (lost votes, or convicted). */
  excluded: boolean
  /** Its diversity groups (core/diversity.ts), once placed; absent: none, or not yet known. */
  groups?: readonly string[]
}

export interface BlockedView {
  /** Every task is final: nothing can be blocked. */
  finished: boolean
  /** Independent agreeing results each task needs (replicas; see needFor for adaptive jobs). */
  need: number
  /** The workers this job may use (the requester's own worker included, as one with no groups). */
  workers: readonly BlockedWorker[]
  /** The scheduler's verdict (Scheduler.stuck): free workers, nothing in flight, nothing they may take. */
  stuck: boolean
  /** Why the requester cannot reach the network now (JobRunnerOptions.connectivity); undefined when it can. */
  connectivity?: string
}

export type BlockedReason = Pick<JobBlocked, 'code' | 'message'>

/**
 * Independent witnesses among `workers`, counted as the scheduler counts votes: each counts
 * unless it shares a diversity group with one counted before it. A worker not placed yet (groups
 * unknown) counts on its own: it is placed at its first task, and the scheduler's `stuck` covers
 * one that never is. Counting stops at `cap` (a job needs at most 3: a big network costs no more).
 */
export function independentWorkers (workers: readonly Pick<BlockedWorker, 'groups'>[], cap = Number.POSITIVE_INFINITY): number {
  const counted: Array<readonly string[]> = []
  let n = 0
  for (const w of workers) {
    if (n >= cap) break
    const groups = w.groups ?? []
    if (groups.length > 0 && counted.some(c => c.some(g => groups.includes(g)))) continue
    if (groups.length > 0) counted.push(groups)
    n++
  }
  return n
}

/**
 * Agreeing results a task needs at least: `replicas`; an adaptive job takes one result from a
 * trusted worker, and needs max(replicas, 2) from anyone else (Scheduler's drawNeed).
 */
export function needFor (replicas: number, adaptive: boolean, anyTrusted: boolean): number {
  if (!adaptive) return replicas
  return anyTrusted ? 1 : Math.max(replicas, 2)
}

function plural (n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}

/** Why the job cannot progress, or undefined when it can (or is over). The first reason that applies, most basic first. */
export function blockedReason (view: BlockedView): BlockedReason | undefined {
  if (view.finished) return undefined
  const present = view.workers
  const running = present.filter(w => !w.paused)
  const capable = running.filter(w => w.capable)
  const usable = capable.filter(w => !w.excluded)
  const available = independentWorkers(usable, view.need)
  const short = available < view.need || view.stuck || usable.length === 0
  if (!short) return undefined
  // Without the network, whatever else is missing follows from that.
  if (view.connectivity != null) return { code: 'relay-unreachable', message: view.connectivity }
  if (present.length === 0) return { code: 'no-worker', message: 'no worker has joined yet' }
  if (running.length === 0) return { code: 'all-paused', message: present.length === 1 ? 'the only worker is paused' : `all ${present.length} workers paused` }
  if (capable.length === 0) return { code: 'no-capable-worker', message: 'no worker can run this model' }
  const excluded = capable.length - usable.length
  const note = excluded > 0 ? ` (${plural(excluded, 'worker', 'workers')} excluded for wrong results)` : ''
  if (available < view.need || usable.length === 0) {
    return { code: 'too-few-workers', message: `needs ${plural(view.need, 'different worker', 'different workers')}, ${available} available${note}` }
  }
  // Enough workers on paper, yet none may take what is left: their results cannot be told apart (yet).
  return { code: 'too-few-workers', message: `needs ${plural(view.need, 'different worker', 'different workers')}; the workers available cannot all be told apart yet${note}` }
}

/** Remembers since when a job has been blocked: the start is kept while any reason holds, reset once it can progress. */
export class BlockedTracker {
  private state?: JobBlocked

  constructor (private readonly now: () => number) {}

  get current (): JobBlocked | undefined {
    return this.state
  }

  /** Takes the latest reason; returns whether what the job shows changed (reason, message, or blocked at all). */
  update (reason: BlockedReason | undefined): boolean {
    const old = this.state
    if (reason == null) {
      this.state = undefined
      return old != null
    }
    if (old != null && old.code === reason.code && old.message === reason.message) return false
    this.state = { code: reason.code, message: reason.message, sinceMs: old?.sinceMs ?? this.now() }
    return true
  }
}

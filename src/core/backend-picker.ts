/**
 * Best backend per model: on a model's first task, each candidate (WASM 1 thread, WASM threads,
 * WebGPU on a real adapter; for Node, onnxruntime-node at 1 and N threads) runs that task's
 * inputs a few times; the fastest median wins and runs every later task of the model. Which
 * backend is fastest differs by model: threads help big convolutional models and hurt tiny ones.
 *
 * Cold start: the first task is answered as soon as the first candidate has run it (that run
 * loads the model); the other candidates are measured after, while later tasks of the model wait
 * for the winner. Candidates are measured one at a time against the best so far (a duel), and the
 * loser of each duel frees its session at once: at most two sessions of the model exist at any
 * moment, however many backends there are (a 15 MB model costs a few times that per session).
 *
 * The first runs of a fresh session are slow (allocation, kernel selection), so both sides of a
 * duel are warmed up before either is timed, and the timed runs alternate between them, so a
 * burst of other load on the machine slows both alike rather than the one measured at that
 * moment. A duel stops early once it is clear (one side `clearMargin` times faster) or its timed
 * runs used `trialBudgetMs`: a big model is measured in fewer runs than a tiny one.
 *
 * The measurement after the first answer takes the place its first task had: the work queue has
 * freed that slot, so every task that comes meanwhile (any model) waits for it to end. The peer
 * then never runs more at once than its slots allow, and no duel times another task's load.
 */
import { TaskError, toTaskError } from './errors.js'
import { systemClock } from './clock.js'
import type { Clock } from './clock.js'
import type { TaskRequest } from './task-types.js'
import type { BatchOutcome, ExecutionResult, Executor } from './work-queue.js'

export interface BackendCandidate extends Executor {
  /** What this candidate is, as results and adverts name it (e.g. "wasm simd 1 thread"). */
  name: string
  /** Frees the model's session here once another candidate won it. */
  release?(sha256: string): Promise<void>
}

export interface BackendChoice {
  backend: string
  /** Median in-worker ms per candidate that worked, by name. */
  medians: Record<string, number>
}

export interface BackendPickerOptions {
  /** Untimed runs per candidate before it is timed (the first also loads the model; default 2). */
  warmups?: number
  /** Most timed runs per candidate in a duel (default 3). */
  trials?: number
  /** A duel ends after the round in which its timed runs (both sides, in-worker ms) reach this (default 600). */
  trialBudgetMs?: number
  /** A duel ends after a round in which one side's median is this many times the other's (default 1.5). */
  clearMargin?: number
  /** The measurement after the first task stops after this long; the best so far wins (default 60 s). */
  measureTimeoutMs?: number
  clock?: Clock
  onChoice?: (sha256: string, choice: BackendChoice) => void
}

/** A candidate in a duel: its timed runs, and whether it failed (out of the measurement). */
interface Side { c: BackendCandidate, times: number[], failed: boolean }

export class BackendPicker implements Executor {
  private readonly candidates: BackendCandidate[]
  private readonly warmups: number
  private readonly trials: number
  private readonly trialBudgetMs: number
  private readonly clearMargin: number
  private readonly measureTimeoutMs: number
  private readonly clock: Clock
  private readonly onChoice?: (sha256: string, choice: BackendChoice) => void
  private readonly chosen = new Map<string, BackendCandidate>()
  /** Resolves to the winner, or to undefined when the first task failed with nothing chosen. */
  private readonly measuring = new Map<string, Promise<BackendCandidate | undefined>>()
  readonly choices = new Map<string, BackendChoice>()
  /** Measurements running after their first task's answer: other tasks wait for them to end. */
  private readonly background = new Set<Promise<void>>()

  constructor (candidates: BackendCandidate[], options: BackendPickerOptions = {}) {
    if (candidates.length === 0) throw new Error('no backend candidates')
    this.candidates = candidates
    this.warmups = Math.max(1, options.warmups ?? 2)
    this.trials = Math.max(1, options.trials ?? 3)
    this.trialBudgetMs = options.trialBudgetMs ?? 600
    this.clearMargin = options.clearMargin ?? 1.5
    this.measureTimeoutMs = options.measureTimeoutMs ?? 60_000
    this.clock = options.clock ?? systemClock
    this.onChoice = options.onChoice
  }

  get names (): string[] {
    return this.candidates.map(c => c.name)
  }

  /** Models whose backend is being measured now. */
  get measuringModels (): string[] {
    return [...this.measuring.keys()]
  }

  /**
   * Takes choices measured earlier (e.g. before a reload) for the same candidates: those models
   * skip the measurement. A choice naming a backend this picker does not have is ignored.
   */
  restore (choices: Record<string, BackendChoice>): void {
    for (const [sha, choice] of Object.entries(choices)) {
      const c = this.candidates.find(c => c.name === choice.backend)
      if (c == null || this.chosen.has(sha)) continue
      this.chosen.set(sha, c)
      this.choices.set(sha, choice)
    }
  }

  async execute (request: TaskRequest, requester: string, signal?: AbortSignal): Promise<ExecutionResult> {
    await this.afterMeasurements(signal)
    const sha = request.model.sha256
    const chosen = this.chosen.get(sha) ?? (this.candidates.length === 1 ? this.candidates[0] : undefined)
    if (chosen != null) return await chosen.execute(request, requester, signal)
    const pending = this.measuring.get(sha)
    if (pending != null) {
      const winner = await pending
      signal?.throwIfAborted()
      // The first task failed (maybe its own inputs or deadline): this one tries for itself rather than inherit that error.
      if (winner == null) return await this.execute(request, requester, signal)
      return await winner.execute(request, requester, signal)
    }

    // Other tasks of this model that arrive meanwhile wait for the winner rather than measure again.
    let settle!: (winner: BackendCandidate | undefined) => void
    this.measuring.set(sha, new Promise(resolve => { settle = resolve }))
    const t0 = this.clock.now()
    let first: { side: Side, rest: BackendCandidate[], result: ExecutionResult }
    try {
      first = await this.answer(request, requester, signal)
    } catch (err) {
      this.measuring.delete(sha)
      settle(undefined)
      throw err
    }
    // Measured after the answer. Should it ever throw (a candidate's release throwing at once),
    // the tasks waiting run on the candidate that answered and nothing is chosen (the next task
    // measures again): a model must never be left waiting on a measurement that will not end.
    const measured = this.measure(request, requester, first.side, first.rest).then((m) => {
      this.chosen.set(sha, m.winner)
      this.measuring.delete(sha)
      this.choices.set(sha, m.choice)
      settle(m.winner)
      this.onChoice?.(sha, m.choice)
    }, () => {
      this.measuring.delete(sha)
      settle(first.side.c)
    }).catch(() => {}) // onChoice failing (storage full) leaves the choice made
    this.background.add(measured)
    void measured.finally(() => { this.background.delete(measured) })
    // The first task's load time, as a cold start a requester sees.
    return { ...first.result, loadMs: Math.max(0, this.clock.now() - t0 - first.result.inferenceMs) }
  }

  /** A batch goes whole to the model's backend once it is chosen; before that (or to a backend that cannot batch) one task at a time. */
  async executeMany (requests: TaskRequest[], requester: string, signal?: AbortSignal): Promise<BatchOutcome[]> {
    await this.afterMeasurements(signal)
    const sha = requests[0]?.model.sha256
    const chosen = this.chosen.get(sha) ?? (this.candidates.length === 1 ? this.candidates[0] : undefined)
    if (chosen?.executeMany != null && requests.every(r => r.model.sha256 === sha)) return await chosen.executeMany(requests, requester, signal)
    const outcomes: BatchOutcome[] = []
    for (const r of requests) outcomes.push(await this.execute(r, requester, signal).catch((err: unknown) => toTaskError(err, 'inference-failed')))
    return outcomes
  }

  /** Resolves once no measurement runs in the background (throws if the task's deadline passed meanwhile). */
  private async afterMeasurements (signal?: AbortSignal): Promise<void> {
    if (this.background.size === 0) return signal?.throwIfAborted()
    let onAbort: (() => void) | undefined
    const aborted = new Promise<void>(resolve => { onAbort = resolve; signal?.addEventListener('abort', onAbort, { once: true }) })
    try {
      while (this.background.size > 0 && signal?.aborted !== true) await Promise.race([...this.background, aborted])
    } finally {
      if (onAbort != null) signal?.removeEventListener('abort', onAbort)
    }
    signal?.throwIfAborted()
  }

  /**
   * Runs the task on the first candidate that can (in order); one failing inside onnxruntime (an
   * op WebGPU lacks) drops out. The model or the task being unusable is the same on every backend,
   * and a task past its deadline stops at once: both fail the task with nothing chosen.
   */
  private async answer (request: TaskRequest, requester: string, signal?: AbortSignal): Promise<{ side: Side, rest: BackendCandidate[], result: ExecutionResult }> {
    let firstError: unknown
    for (let i = 0; i < this.candidates.length; i++) {
      const c = this.candidates[i]
      signal?.throwIfAborted()
      try {
        const result = await c.execute(request, requester, signal)
        return { side: { c, times: [], failed: false }, rest: this.candidates.slice(i + 1), result }
      } catch (err) {
        if (signal?.aborted === true || toTaskError(err).code !== 'inference-failed') throw err
        firstError ??= err
        void c.release?.(request.model.sha256).catch(() => {})
      }
    }
    throw toTaskError(firstError)
  }

  /** Duels the candidate that answered against each of `rest` in turn; the loser of each frees its session. */
  private async measure (request: TaskRequest, requester: string, answered: Side, rest: BackendCandidate[]): Promise<{ winner: BackendCandidate, choice: BackendChoice }> {
    const sha = request.model.sha256
    const stop = new AbortController()
    const timer = this.clock.setTimeout(() => { stop.abort(new TaskError('timeout', `measuring backends took over ${this.measureTimeoutMs} ms`)) }, this.measureTimeoutMs)
    const medians: Record<string, number> = {}
    let leader = answered
    // The leader's answering run was its first warm-up.
    let leaderWarm = 1
    try {
      for (const c of rest) {
        if (stop.signal.aborted) break
        const challenger: Side = { c, times: [], failed: false }
        // Runs one side once; false when it failed, or when the measurement must end (past its time, or the model gone).
        const run = async (side: Side, timed: boolean): Promise<boolean> => {
          try {
            const r = await side.c.execute(request, requester, stop.signal)
            if (timed) side.times.push(r.inferenceMs)
            return true
          } catch (err) {
            if (!stop.signal.aborted && toTaskError(err).code !== 'inference-failed') stop.abort(err)
            side.failed = true
            return false
          }
        }
        for (; leaderWarm < this.warmups && !leader.failed && !stop.signal.aborted; leaderWarm++) await run(leader, false)
        for (let i = 0; i < this.warmups && !challenger.failed && !stop.signal.aborted; i++) await run(challenger, false)
        leader.times = []
        for (let round = 0; round < this.trials && !leader.failed && !challenger.failed && !stop.signal.aborted; round++) {
          await run(leader, true)
          if (!leader.failed) await run(challenger, true)
          if (leader.failed || challenger.failed) break
          const [a, b] = [median(leader.times), median(challenger.times)]
          if (Math.max(a, b) >= this.clearMargin * Math.min(a, b)) break
          if (sum(leader.times) + sum(challenger.times) >= this.trialBudgetMs) break
        }
        const complete = (s: Side): boolean => !s.failed && s.times.length > 0
        // A duel cut short (past its time) keeps the leader; a side that failed loses.
        const challengerWins = complete(challenger) && (leader.failed || (complete(leader) && median(challenger.times) < median(leader.times)))
        for (const s of [leader, challenger]) if (complete(s)) medians[s.c.name] = median(s.times)
        const loser = challengerWins ? leader : challenger
        void loser.c.release?.(sha).catch(() => {})
        if (challengerWins) {
          leader = challenger
          leaderWarm = this.warmups
        }
      }
    } finally {
      this.clock.clearTimeout(timer)
    }
    return { winner: leader.c, choice: { backend: leader.c.name, medians } }
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[(s.length - 1) >> 1]
}

function sum (xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0)
}

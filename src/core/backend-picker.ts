/**
 * Best backend per model: on a model's first task, each candidate (WASM 1 thread, WASM threads,
 * WebGPU on a real adapter; for Node, onnxruntime-node at 1 and N threads) runs that task's
 * inputs a few times; the fastest median wins and runs every later task of the model. Which
 * backend is fastest differs by model: threads help big convolutional models and hurt tiny ones.
 *
 * The first runs of a fresh session are slow (allocation, kernel selection), so every candidate is
 * warmed up before any is timed, and the timed runs go round-robin across candidates, so a burst
 * of other load on the machine slows all of them alike rather than the one measured at that moment.
 */
import { toTaskError } from './errors.js'
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
  /** Untimed runs per candidate first (the first also loads the model). */
  warmups?: number
  /** Timed runs per candidate. */
  trials?: number
  onChoice?: (sha256: string, choice: BackendChoice) => void
}

export class BackendPicker implements Executor {
  private readonly candidates: BackendCandidate[]
  private readonly warmups: number
  private readonly trials: number
  private readonly onChoice?: (sha256: string, choice: BackendChoice) => void
  private readonly chosen = new Map<string, BackendCandidate>()
  private readonly measuring = new Map<string, Promise<BackendCandidate>>()
  readonly choices = new Map<string, BackendChoice>()

  constructor (candidates: BackendCandidate[], options: BackendPickerOptions = {}) {
    if (candidates.length === 0) throw new Error('no backend candidates')
    this.candidates = candidates
    this.warmups = Math.max(1, options.warmups ?? 2)
    this.trials = options.trials ?? 3
    this.onChoice = options.onChoice
  }

  get names (): string[] {
    return this.candidates.map(c => c.name)
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
    const sha = request.model.sha256
    const chosen = this.chosen.get(sha) ?? (this.candidates.length === 1 ? this.candidates[0] : undefined)
    if (chosen != null) return await chosen.execute(request, requester, signal)
    const pending = this.measuring.get(sha)
    if (pending != null) {
      const winner = await pending
      signal?.throwIfAborted()
      return await winner.execute(request, requester, signal)
    }

    // Other tasks of this model that arrive meanwhile wait for the winner rather than measure again.
    const measured = this.measure(request, requester, signal)
    const winner = measured.then(m => m.winner)
    winner.catch(() => {})
    this.measuring.set(sha, winner)
    try {
      const m = await measured
      this.chosen.set(sha, m.winner)
      return m.result
    } finally {
      this.measuring.delete(sha)
    }
  }

  /** A batch goes whole to the model's backend once it is chosen; before that (or to a backend that cannot batch) one task at a time. */
  async executeMany (requests: TaskRequest[], requester: string, signal?: AbortSignal): Promise<BatchOutcome[]> {
    const sha = requests[0]?.model.sha256
    const chosen = this.chosen.get(sha) ?? (this.candidates.length === 1 ? this.candidates[0] : undefined)
    if (chosen?.executeMany != null && requests.every(r => r.model.sha256 === sha)) return await chosen.executeMany(requests, requester, signal)
    const outcomes: BatchOutcome[] = []
    for (const r of requests) outcomes.push(await this.execute(r, requester, signal).catch((err: unknown) => toTaskError(err, 'inference-failed')))
    return outcomes
  }

  /** Warms every candidate up, then times them round-robin; the result handed back is the winner's last run. */
  private async measure (request: TaskRequest, requester: string, signal?: AbortSignal): Promise<{ winner: BackendCandidate, result: ExecutionResult }> {
    const t0 = performance.now()
    const live: Array<{ c: BackendCandidate, times: number[], last?: ExecutionResult }> = []
    let firstError: unknown
    // Only a failure inside onnxruntime may be this backend's (an op WebGPU lacks): such a
    // candidate drops out. The model or the task being unusable is the same on every backend.
    // A task past its deadline stops measuring at once (the model is measured again by a later task).
    const attempt = async (c: BackendCandidate): Promise<ExecutionResult | undefined> => {
      signal?.throwIfAborted()
      try {
        return await c.execute(request, requester, signal)
      } catch (err) {
        if (signal?.aborted === true || toTaskError(err).code !== 'inference-failed') throw err
        firstError ??= err
        return undefined
      }
    }
    for (const c of this.candidates) {
      let ok = true
      for (let i = 0; i < this.warmups && ok; i++) ok = await attempt(c) != null
      if (ok) live.push({ c, times: [] })
    }
    for (let round = 0; round < this.trials; round++) {
      for (const entry of [...live]) {
        const r = await attempt(entry.c)
        if (r == null) live.splice(live.indexOf(entry), 1)
        else { entry.times.push(r.inferenceMs); entry.last = r }
      }
    }
    const runs = live.filter(e => e.last != null).map(e => ({ c: e.c, median: median(e.times), last: e.last! }))
    if (runs.length === 0) throw toTaskError(firstError)
    runs.sort((a, b) => a.median - b.median)
    const best = runs[0]
    for (const c of this.candidates) if (c !== best.c) void c.release?.(request.model.sha256).catch(() => {})
    const choice = { backend: best.c.name, medians: Object.fromEntries(runs.map(r => [r.c.name, r.median])) }
    this.choices.set(request.model.sha256, choice)
    this.onChoice?.(request.model.sha256, choice)
    // The measurement is this first task's load time, as a cold start a requester sees.
    return { winner: best.c, result: { ...best.last, loadMs: performance.now() - t0 - best.last.inferenceMs } }
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[(s.length - 1) >> 1]
}

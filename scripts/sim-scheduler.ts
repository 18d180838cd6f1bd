/**
 * Discrete-event simulations of the batch Scheduler on a virtual clock (no real time passes):
 *  - simulate(): dispatch efficiency — N one-slot workers, fixed-duration tasks;
 *    efficiency = (tasks × taskMs / N) / makespan (1 = no idle worker until the last task).
 *  - liarSimulation(): verification — some workers return wrong outputs; how much extra compute
 *    replication costs, what fraction of lies is caught, and whether honest peers get blamed.
 *  - collusionSimulation(): colluding liars against replication and the requester's spot checks;
 *    collusionTable() prints the table in docs/BENCHMARKS.md.
 * Used by the unit tests and the bench; run directly for a quick table:
 *   node --import tsx scripts/sim-scheduler.ts
 */
import { pathToFileURL } from 'node:url'
import { Scheduler } from '../src/core/scheduler.js'
import { Reputation } from '../src/core/reputation.js'
import { relativeComparator } from '../src/core/compare.js'
import { fromTypedArray } from '../src/core/tensor.js'
import type { Assignment, Decision } from '../src/core/scheduler.js'
import type { Clock } from '../src/core/clock.js'
import type { WireTensor } from '../src/core/tensor.js'
import { seededRandom } from '../src/core/random.js'

interface Event { at: number, seq: number, id: number, fn: () => void }

/** A virtual clock with a binary-heap timer queue: run() jumps from event to event. */
export class SimClock implements Clock {
  private time = 0
  private seq = 0
  private readonly heap: Event[] = []
  private readonly cancelled = new Set<number>()

  now (): number {
    return this.time
  }

  setTimeout (fn: () => void, ms: number): unknown {
    const id = ++this.seq
    this.push({ at: this.time + (Number.isFinite(ms) && ms > 0 ? ms : 0), seq: id, id, fn })
    return id
  }

  clearTimeout (handle: unknown): void {
    if (typeof handle === 'number') this.cancelled.add(handle)
  }

  /** Fires events in time order until `until()` is true or none is left; returns whether it stopped on `until`. */
  run (until: () => boolean, maxMs = Number.POSITIVE_INFINITY): boolean {
    while (!until()) {
      const e = this.pop()
      if (e == null || e.at > maxMs) return false
      if (this.cancelled.delete(e.id)) continue
      this.time = e.at
      e.fn()
    }
    return true
  }

  private push (e: Event): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }

  private pop (): Event | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l], h[m])) m = l
        if (r < h.length && before(h[r], h[m])) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m], h[i]]
        i = m
      }
    }
    return top
  }
}

function before (a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}

export interface SimOptions {
  workers: number
  /** Duration of one task on a normal worker. */
  taskMs: number
  tasks: number
  /** Credits per worker (default 1). */
  slots?: number
  /** Each run takes taskMs × (1 + jitter × u), u uniform in [−1, 1] (default 0: fixed). */
  jitter?: number
  /** This many workers run every task `slowFactor` times slower (default 0). */
  slowWorkers?: number
  slowFactor?: number
  /** This many workers accept tasks and never answer (default 0). */
  stuckWorkers?: number
  /** Workers advertise their true msPerTask (default false). */
  advertiseSpeed?: boolean
  /** Copy stragglers near the end (default true). */
  speculate?: boolean
  replicas?: number
  taskTimeoutMs?: number
  seed?: number
}

export interface SimResult {
  makespanMs: number
  /** (tasks × taskMs / workers) / makespan. */
  efficiency: number
  /** tasks × taskMs / workers: the makespan with no idle time at all. */
  idealMs: number
  decided: number
  failed: number
  /** Results computed (replicas and speculative copies included). */
  replicasRun: number
  speculative: number
  /** Most objects the scheduler held at once (records + flights + queue). */
  maxTracked: number
}

function output (value: number): WireTensor[] {
  return [fromTypedArray('y', 'float32', [1], new Float32Array([value]))]
}

/** Drives a Scheduler over `workers` simulated one-slot workers until every task is final. */
export function simulate (options: SimOptions): SimResult {
  const { workers, taskMs, tasks } = options
  const jitter = options.jitter ?? 0
  const slowWorkers = options.slowWorkers ?? 0
  const slowFactor = options.slowFactor ?? 4
  const stuckWorkers = options.stuckWorkers ?? 0
  const random = seededRandom(options.seed ?? 1)
  const clock = new SimClock()
  const s = new Scheduler({
    taskCount: tasks,
    replicas: options.replicas ?? 1,
    compare: relativeComparator(),
    reputation: new Reputation(),
    clock,
    random: seededRandom((options.seed ?? 1) + 1),
    taskTimeoutMs: options.taskTimeoutMs ?? Math.max(60_000, taskMs * slowFactor * 10),
    speculate: options.speculate
  })
  const speed = new Map<string, number>()
  const stuck = new Set<string>()
  for (let i = 0; i < workers; i++) {
    const peerId = `w${i}`
    const factor = i < slowWorkers ? slowFactor : 1
    speed.set(peerId, taskMs * factor)
    if (i >= workers - stuckWorkers) stuck.add(peerId)
  }
  let maxTracked = 0
  let makespan = 0
  s.onDecision = () => { makespan = clock.now() }
  const start = (a: Assignment): void => {
    if (stuck.has(a.peerId)) return
    const ms = speed.get(a.peerId)! * (1 + jitter * (2 * random() - 1))
    clock.setTimeout(() => { s.succeeded(a, output(a.taskIndex)) }, ms)
  }
  s.onChange = () => {
    for (const a of s.assign()) start(a)
    if (s.tracked > maxTracked) maxTracked = s.tracked
  }
  for (const [peerId, ms] of speed) {
    s.setWorker({ peerId, slots: options.slots ?? 1, eligible: true, msPerTask: options.advertiseSpeed === true ? ms : undefined })
  }
  clock.run(() => s.finished)
  s.dispose()
  const p = s.progress
  const idealMs = tasks * taskMs / workers
  return {
    makespanMs: makespan,
    efficiency: makespan > 0 ? idealMs / makespan : 1,
    idealMs,
    decided: p.done,
    failed: p.failed,
    replicasRun: p.replicasRun,
    speculative: p.speculative,
    maxTracked
  }
}

export interface LiarSimOptions {
  workers: number
  /** Share of the workers that lie (rounded; picked at random). */
  liarFraction: number
  tasks: number
  adaptive: boolean
  /** Default 2. */
  replicas?: number
  /** Probability that a liar lies on a given result (default 1: always). */
  lieProbability?: number
  /** Liars all return the same wrong answer for a task, so they can outvote the truth (default false: independent garbage). */
  collude?: boolean
  taskMs?: number
  /** Default 0.3: task durations vary, so pairings vary. */
  jitter?: number
  /** Reputation to start from (e.g. earned in earlier jobs); default empty. */
  reputation?: Reputation
  seed?: number
}

export interface LiarSimResult {
  /** (results computed − tasks decided) / tasks decided: what verification costs. */
  extraComputeFraction: number
  /** Lies that were voted down or kept their task from being decided, over lies that reached a vote (1 when none did). */
  caughtFraction: number
  /** Honest workers with at least one disagreement on record. */
  honestFlagged: number
  liars: number
  liesTold: number
  /** Tasks decided with a wrong answer. */
  wrongDecisions: number
  decided: number
  failed: number
  crossChecked: number
  makespanMs: number
  /** Worker ids, liars first, with their final records. */
  peers: Array<{ peerId: string, liar: boolean, agreed: number, disagreed: number, score: number, trusted: boolean }>
}

/** Truth for task t: 4 class scores; honest workers add float noise far below the tolerance. */
function truth (t: number, noise: number): WireTensor[] {
  const v = new Float32Array(4)
  for (let k = 0; k < 4; k++) v[k] = ((t * 7 + k * 13) % 17) / 17 + noise
  return [fromTypedArray('scores', 'float32', [1, 4], v)]
}

function garbage (random: () => number): WireTensor[] {
  const v = new Float32Array(4)
  for (let k = 0; k < 4; k++) v[k] = 2 + random()
  return [fromTypedArray('scores', 'float32', [1, 4], v)]
}

/** Runs a replicated job where some workers lie, and reports what verification caught and cost. */
export function liarSimulation (options: LiarSimOptions): LiarSimResult {
  const { workers, tasks, adaptive } = options
  const taskMs = options.taskMs ?? 100
  const jitter = options.jitter ?? 0.3
  const lieProbability = options.lieProbability ?? 1
  const random = seededRandom(options.seed ?? 7)
  const clock = new SimClock()
  const reputation = options.reputation ?? new Reputation()
  const compare = relativeComparator(1e-4)
  const s = new Scheduler({
    taskCount: tasks,
    replicas: options.replicas ?? 2,
    adaptive,
    compare,
    reputation,
    clock,
    random: seededRandom((options.seed ?? 7) + 1)
  })

  const ids = Array.from({ length: workers }, (_, i) => `w${i}`)
  const shuffled = [...ids]
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]]
  }
  const liars = new Set(shuffled.slice(0, Math.round(workers * options.liarFraction)))

  /** Per undecided task: the liars whose lie reached a vote. */
  const lies = new Map<number, Set<string>>()
  let liesTold = 0
  let caught = 0
  let wrongDecisions = 0
  let makespan = 0

  s.onDecision = (d: Decision) => {
    makespan = clock.now()
    const told = lies.get(d.taskIndex)
    lies.delete(d.taskIndex)
    if (!compare(d.outputs, truth(d.taskIndex, 0))) wrongDecisions++
    if (told == null) return
    for (const p of told) if (!d.agreedBy.includes(p)) caught++
  }
  s.onFailed = (t) => {
    makespan = clock.now()
    caught += lies.get(t)?.size ?? 0
    lies.delete(t)
  }
  const start = (a: Assignment): void => {
    const ms = taskMs * (1 + jitter * (2 * random() - 1))
    const lying = liars.has(a.peerId) && random() < lieProbability
    const outputs = lying
      ? (options.collude === true ? truth(a.taskIndex + 1, 0) : garbage(random))
      : truth(a.taskIndex, (random() - 0.5) * 1e-6)
    clock.setTimeout(() => {
      if (lying && s.taskState(a.taskIndex) === 'active') {
        liesTold++
        let set = lies.get(a.taskIndex)
        if (set == null) lies.set(a.taskIndex, set = new Set())
        set.add(a.peerId)
      }
      s.succeeded(a, outputs)
    }, ms)
  }
  s.onChange = () => { for (const a of s.assign()) start(a) }
  for (const peerId of ids) s.setWorker({ peerId, slots: 1, eligible: true })
  clock.run(() => s.finished)
  s.dispose()

  const p = s.progress
  const ordered = [...ids].sort((x, y) => Number(liars.has(y)) - Number(liars.has(x)))
  return {
    extraComputeFraction: p.done > 0 ? (p.replicasRun - p.done) / p.done : 0,
    caughtFraction: liesTold > 0 ? caught / liesTold : 1,
    honestFlagged: ids.filter(id => !liars.has(id) && reputation.record(id).disagreed > 0).length,
    liars: liars.size,
    liesTold,
    wrongDecisions,
    decided: p.done,
    failed: p.failed,
    crossChecked: p.crossChecked,
    makespanMs: makespan,
    peers: ordered.map(peerId => {
      const r = reputation.record(peerId)
      return { peerId, liar: liars.has(peerId), agreed: r.agreed, disagreed: r.disagreed, score: reputation.score(peerId), trusted: reputation.trusted(peerId) }
    })
  }
}

export interface CollusionSimOptions {
  workers: number
  /** Share of the workers that collude: they all give the same wrong answer to a task. */
  colluderFraction: number
  /** Probability a colluder lies on a given task (1: always); they agree on which tasks to lie. */
  lieProbability: number
  replicas: number
  /** Share of decided tasks the requester recomputes itself (JobRunner's spot checks). */
  spotCheck: number
  tasks: number
  seed?: number
}

export interface CollusionSimResult {
  /** Wrong results among the results the job ended with, over all results it ended with. */
  wrongAccepted: number
  /** (results computed by workers + spot checks − tasks decided) / tasks decided. */
  extraCompute: number
  /** Tasks given up as unverifiable (no independent worker left to decide them). */
  unverifiable: number
  decided: number
  convicted: number
  colluders: number
}

/**
 * Colluding liars against replication, reputation and the requester's spot checks, as JobRunner
 * wires them: a spot check that disagrees with a decision convicts every worker that vouched for
 * it (their votes in the job are discarded and what they decided is recomputed). Workers share no
 * diversity group (the worst case: colluders on separate hosts, or a LAN). A job that stalls with
 * nobody left who may decide its tasks gives them up, as JobRunner does after its stall timeout.
 */
export function collusionSimulation (o: CollusionSimOptions): CollusionSimResult {
  const random = seededRandom(o.seed ?? 11)
  const clock = new SimClock()
  const compare = relativeComparator(1e-4)
  const s = new Scheduler({ taskCount: o.tasks, replicas: o.replicas, compare, reputation: new Reputation(), clock, random: seededRandom((o.seed ?? 11) + 1) })
  const ids = Array.from({ length: o.workers }, (_, i) => `w${i}`)
  const colluders = new Set(ids.filter((_, i) => i < Math.round(o.workers * o.colluderFraction)))
  // The colluders' shared decision, per task, to lie or not.
  const lieOn = new Map<number, boolean>()
  const lies = (t: number): boolean => {
    let v = lieOn.get(t)
    if (v === undefined) lieOn.set(t, v = random() < o.lieProbability)
    return v
  }
  const final = new Map<number, WireTensor[]>()
  let spotChecks = 0
  const checks: Decision[] = []
  s.onDecision = d => {
    final.set(d.taskIndex, d.outputs)
    if (d.byRequester !== true && random() < o.spotCheck) checks.push(d)
  }
  s.onRevoke = tasks => { for (const t of tasks) final.delete(t) }
  s.onChange = () => {
    // Spot checks run between events, one decision at a time (the requester's own recomputation).
    for (let d = checks.shift(); d != null; d = checks.shift()) {
      if (s.taskState(d.taskIndex) !== 'done') continue
      spotChecks++
      const mine = truth(d.taskIndex, 0)
      if (compare(mine, d.outputs)) continue
      for (const p of d.agreedBy) s.convict(p)
      s.settle(d.taskIndex, mine)
    }
    for (const a of s.assign()) {
      const lying = colluders.has(a.peerId) && lies(a.taskIndex)
      const outputs = lying ? truth(a.taskIndex + 1, 0) : truth(a.taskIndex, (random() - 0.5) * 1e-6)
      clock.setTimeout(() => { s.succeeded(a, outputs) }, 100 * (1 + 0.3 * (2 * random() - 1)))
    }
  }
  for (const peerId of ids) s.setWorker({ peerId, slots: 1, eligible: true })
  if (!clock.run(() => s.finished)) s.abandon()
  s.dispose()
  const p = s.progress
  let wrong = 0
  for (const [t, outputs] of final) if (!compare(outputs, truth(t, 0))) wrong++
  return {
    wrongAccepted: final.size > 0 ? wrong / final.size : 0,
    extraCompute: p.done > 0 ? (p.replicasRun + spotChecks - p.done) / p.done : 0,
    unverifiable: p.failed,
    decided: p.done,
    convicted: s.convictedWorkers.length,
    colluders: colluders.size
  }
}

/** The table in docs/BENCHMARKS.md ("Verification against colluders"). */
export function collusionTable (tasks = 2000, workers = 20): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)} %`
  const rows = ['| colluders | they lie | replicas | spot checks | wrong results accepted | extra compute | unverifiable tasks | convicted |', '|---|---|---|---|---|---|---|---|']
  for (const colluderFraction of [0.1, 0.3, 0.5]) {
    for (const lieProbability of [1, 0.3]) {
      for (const replicas of [1, 2, 3]) {
        for (const spotCheck of [0, 0.05]) {
          const r = collusionSimulation({ workers, colluderFraction, lieProbability, replicas, spotCheck, tasks })
          rows.push(`| ${pct(colluderFraction)} | ${lieProbability === 1 ? 'always' : '30 % of tasks'} | ${replicas} | ${spotCheck === 0 ? 'off' : pct(spotCheck)} | ${pct(r.wrongAccepted)} | ${pct(r.extraCompute)} | ${r.unverifiable} of ${tasks} | ${r.convicted} of ${r.colluders} |`)
        }
      }
    }
  }
  return rows.join('\n')
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const pct = (x: number): string => `${(x * 100).toFixed(1)} %`
  for (const [label, o] of [
    ['64 workers, fixed 100 ms', { workers: 64, taskMs: 100, tasks: 10_000 }],
    ['64 workers, ±30 % jitter', { workers: 64, taskMs: 100, tasks: 10_000, jitter: 0.3 }],
    ['64 workers, 4 at 4× slower', { workers: 64, taskMs: 100, tasks: 10_000, slowWorkers: 4 }],
    ['64 workers, 2 stuck', { workers: 64, taskMs: 100, tasks: 10_000, stuckWorkers: 2, taskTimeoutMs: 10_000 }]
  ] as Array<[string, SimOptions]>) {
    const r = simulate(o)
    console.log(`${label.padEnd(30)} makespan ${r.makespanMs.toFixed(0)} ms, efficiency ${pct(r.efficiency)}, ${r.speculative} speculative`)
  }
  for (const adaptive of [false, true]) {
    for (const lieProbability of [1, 0.1]) {
      const r = liarSimulation({ workers: 32, liarFraction: 0.1, tasks: 10_000, adaptive, lieProbability })
      console.log(`liars 10 % lying ${pct(lieProbability).padStart(7)}${adaptive ? ', adaptive' : '          '}: extra compute ${pct(r.extraComputeFraction)}, caught ${pct(r.caughtFraction)} of ${r.liesTold}, wrong ${r.wrongDecisions}, honest flagged ${r.honestFlagged}`)
    }
  }
  console.log('\nColluders (20 workers, 2,000 tasks; node --import tsx scripts/sim-scheduler.ts):\n')
  console.log(collusionTable())
}

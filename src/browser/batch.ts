/**
 * Batch jobs from a tab: digits over a built-in dataset, or the user's own model over their own
 * dataset (src/browser/job-custom.ts). Each job runs with a JobRunner over this tab's peer (its own
 * worker included) and keeps its state in IndexedDB, so a reloaded tab lists every job it started,
 * resumes the running ones, and can still export any job's results.
 *
 * Control: pause stops dispatching and leaves the job resumable, marked paused so that a reload
 * does not resume it; resume runs it again; cancel stops it for good (state 'cancelled'), keeping
 * what was decided. What the page adds to a job (paused, kind, who worked on it, inference time
 * over every run) lives in a TabJobRecord next to the JobMeta.
 *
 * Every tab of a browser shares the IndexedDB store, so a job is run under its Web Lock
 * (`p2p-job:<id>`, held for the whole run): another tab neither resumes it nor offers Resume, and
 * lists it as running in another tab.
 */
import { JobRunner, LOCAL_PEER } from '../net/job-runner.js'
import { Reputation } from '../core/reputation.js'
import { argmaxComparator, relativeComparator } from '../core/compare.js'
import { DATASETS, parseDigitDataset } from '../models/datasets.js'
import { builtinModel, modelRef } from '../models/catalog.js'
import { digitJobSource, digitPredictions, digitsToCsv, digitsToJson, summarizeDigits } from '../models/digit-job.js'
import { DIGITS_OUTPUT_PROBS } from '../models/digits.js'
import { IdbJobStore } from './idb-job-store.js'
import { DEFAULT_SPOT_CHECK } from '../core/verification.js'
import { jobExportLines } from '../core/job-export.js'
import { isTerminalState, transitionJob } from '../core/job-store.js'
import { customModel, resultsJsonl } from './job-custom.js'
import type { CustomModel, Dataset } from './job-custom.js'
import type { TabJobRecord } from './job-record.js'
import type { DigitDataset } from '../models/datasets.js'
import type { JobMeta, JobSource } from '../core/job-store.js'
import type { JobProgress, JobRunnerOptions } from '../net/job-runner.js'
import type { DigitJobSummary } from '../models/digit-job.js'
import type { WireTensor } from '../core/tensor.js'
import type { TabPeer } from './tab-peer.js'

export interface BatchOptions {
  datasetId: string
  replicas: number
  adaptive: boolean
  /** Run only the first N images (all when undefined). */
  limit?: number
  /** Share of decided tasks this tab recomputes itself (default DEFAULT_SPOT_CHECK). */
  spotCheck?: number
}

export interface CustomBatchOptions {
  replicas: number
  spotCheck?: number
  /** Relative tolerance when replicas' outputs are compared (default 1e-4, as `npm run infer`). */
  tolerance?: number
}

/** A job as the page lists it. */
export interface JobEntry {
  meta: JobMeta
  record: TabJobRecord
  runningIn: RunningIn
}

export interface BatchOutcome {
  meta: JobMeta
  /** Digits jobs: accuracy over the results. */
  summary?: DigitJobSummary
  seconds: number
  /** The run's last progress (the page keeps showing it once the run is over). */
  progress?: JobProgress
  /** The run ended because its user paused or cancelled it (the meta's state says which). */
  stopped: boolean
}

/** Where a listed job runs now: this tab, another tab of this browser (it holds the job's lock), or nowhere. */
export type RunningIn = 'this tab' | 'another tab' | undefined

/** A job asked to run here while another tab of this browser runs it. */
export class JobRunningElsewhereError extends Error {
  constructor (jobId: string) {
    super(`job ${jobId.slice(0, 8)} is running in another tab of this browser: pause, resume or follow it there`)
    this.name = 'JobRunningElsewhereError'
  }
}

/**
 * A job this tab is running, registered the moment run() is called: while its parts are read
 * (dataset, model, inputs) it has no runner yet, and pause/cancel mark it so that it never starts.
 */
interface Live {
  /** Set once the job's parts are read, in the same step as the run starts. */
  runner?: JobRunner
  /** What the record held when this run started (this run's figures are added to it). */
  base?: TabJobRecord
  /** Set by pause/cancel before they stop the runner. */
  stopping?: 'pause' | 'cancel'
  ended: Promise<BatchOutcome>
  lastSave: number
}

/** A running job's Web Lock: one name per job, shared by every tab of the origin. */
const LOCK_PREFIX = 'p2p-job:'

/** A job's record is rewritten at most this often while it runs (who worked on it, inference time). */
const RECORD_SAVE_MS = 1000

export class BatchController extends EventTarget {
  readonly store: IdbJobStore
  private readonly tab: TabPeer
  private readonly datasets = new Map<string, Promise<DigitDataset>>()
  private readonly live = new Map<string, Live>()
  /** Custom jobs' models, read once per job (model bytes and declared interface). */
  private readonly models = new Map<string, CustomModel>()
  /** Jobs another tab runs whose lock this tab waits on, to list them afresh once it is let go. */
  private readonly watching = new Set<string>()
  /** Web Locks; absent in an insecure context, where tabs run jobs unguarded as before. */
  private readonly locks: LockManager | undefined = globalThis.navigator?.locks
  reputation = new Reputation()

  constructor (tab: TabPeer, store = new IdbJobStore()) {
    super()
    this.tab = tab
    this.store = store
  }

  async init (): Promise<void> {
    this.reputation = new Reputation(await this.store.getReputation())
  }

  /** Every job this browser's tabs started, newest first, with the page's record (a job from before records existed is a digits job) and where it runs. */
  async list (): Promise<JobEntry[]> {
    const [metas, records, elsewhere] = await Promise.all([this.store.listJobs(), this.store.listTabJobs(), this.runningElsewhere()])
    const byId = new Map(records.map(r => [r.jobId, r]))
    return metas.map(meta => ({
      meta,
      record: byId.get(meta.jobId) ?? defaultRecord(meta.jobId, 'digits', DEFAULT_SPOT_CHECK),
      runningIn: this.live.has(meta.jobId) ? 'this tab' : elsewhere.has(meta.jobId) ? 'another tab' : undefined
    }))
  }

  /** The newest job that did not finish, that its user did not pause and that no other tab runs (a reloaded tab resumes it). */
  async unfinished (): Promise<JobMeta | undefined> {
    return (await this.list()).find(j => !isTerminalState(j.meta.state) && !j.record.paused && j.runningIn == null)?.meta
  }

  /**
   * Jobs whose lock another tab of this browser holds. Each is watched: once that tab lets it go
   * (the run ended, the tab closed) the list is read again, so this tab may offer Resume.
   */
  private async runningElsewhere (): Promise<Set<string>> {
    const locks = this.locks
    if (locks == null) return new Set()
    const ids = new Set<string>()
    for (const lock of (await locks.query()).held ?? []) {
      const id = lock.name?.startsWith(LOCK_PREFIX) === true ? lock.name.slice(LOCK_PREFIX.length) : undefined
      if (id == null || this.live.has(id)) continue
      ids.add(id)
      if (this.watching.has(id)) continue
      this.watching.add(id)
      // Granted once the other tab lets go; held for no time (an empty callback).
      locks.request(LOCK_PREFIX + id, async () => {}).then(() => {
        this.watching.delete(id)
        this.changed()
      }, () => { this.watching.delete(id) })
    }
    return ids
  }

  async dataset (id: string): Promise<DigitDataset> {
    let d = this.datasets.get(id)
    if (d == null) {
      const info = DATASETS.find(x => x.id === id)
      if (info == null) throw new Error(`unknown dataset ${id}`)
      d = fetch(new URL(`datasets/${info.file}`, location.href)).then(async res => {
        if (!res.ok) throw new Error(`dataset ${info.file}: HTTP ${res.status}`)
        return parseDigitDataset(id, new Uint8Array(await res.arrayBuffer()))
      })
      d.catch(() => { this.datasets.delete(id) })
      this.datasets.set(id, d)
    }
    return await d
  }

  /** Creates a digits job over a built-in dataset. */
  async create (options: BatchOptions): Promise<JobMeta> {
    const dataset = await this.dataset(options.datasetId)
    const model = builtinModel('digits')
    const meta = newMeta(model.id, modelRef(model), dataset.id, Math.min(dataset.count, options.limit ?? dataset.count), options.replicas, options.adaptive)
    await this.store.putJob(meta)
    await this.store.putTabJob(defaultRecord(meta.jobId, 'digits', options.spotCheck ?? DEFAULT_SPOT_CHECK))
    this.changed()
    return meta
  }

  /**
   * Creates a job over the user's own model and dataset: the model goes into this tab's model
   * cache (workers fetch it from here) and, with every task's inputs, into IndexedDB so a
   * reloaded tab can resume the job. The job is listed only once all of that is stored.
   */
  async createCustom (model: CustomModel, dataset: Dataset, options: CustomBatchOptions): Promise<JobMeta> {
    const ref = await this.tab.addModel(model.bytes, model.name)
    const meta = newMeta(`custom:${model.name}`, ref, dataset.source, dataset.tasks.length, options.replicas, false)
    const record: TabJobRecord = {
      ...defaultRecord(meta.jobId, 'custom', options.spotCheck ?? DEFAULT_SPOT_CHECK),
      custom: { modelName: model.name, source: dataset.source, outputNames: [], tolerance: options.tolerance ?? 1e-4 }
    }
    // Inputs and model first: a job whose meta is stored is one a reload may try to resume.
    await this.store.putModel(meta.jobId, model.bytes)
    await this.store.putInputs(meta.jobId, dataset.tasks)
    await this.store.putTabJob(record)
    await this.store.putJob(meta)
    this.models.set(meta.jobId, model)
    this.changed()
    return meta
  }

  /**
   * Runs (or resumes) a job until it ends or its user pauses or cancels it. The job is registered as
   * live before anything is awaited, so a second call (a Resume clicked meanwhile) waits on this run
   * and a pause or cancel meanwhile stops it before its runner is built. Throws
   * JobRunningElsewhereError when another tab of this browser runs it.
   */
  async run (jobId: string): Promise<BatchOutcome> {
    const running = this.live.get(jobId)
    if (running != null) return await running.ended
    const live: Live = { ended: undefined as unknown as Promise<BatchOutcome>, lastSave: 0 }
    this.live.set(jobId, live)
    live.ended = this.holdingLock(jobId, async () => await this.runLive(jobId, live)).finally(() => {
      if (this.live.get(jobId) === live) this.live.delete(jobId)
      this.changed()
    })
    this.changed()
    return await live.ended
  }

  /** Runs `fn` holding the job's Web Lock, or throws JobRunningElsewhereError if another tab holds it. */
  private async holdingLock<T> (jobId: string, fn: () => Promise<T>): Promise<T> {
    if (this.locks == null) return await fn()
    return await this.locks.request(LOCK_PREFIX + jobId, { ifAvailable: true }, async (lock) => {
      if (lock == null) throw new JobRunningElsewhereError(jobId)
      return await fn()
    })
  }

  private async runLive (jobId: string, live: Live): Promise<BatchOutcome> {
    const t0 = performance.now()
    const meta = await this.store.getJob(jobId)
    if (meta == null) throw new Error(`no job ${jobId}`)
    if (isTerminalState(meta.state)) throw new Error(`job ${jobId} is ${meta.state}`)
    const record = (await this.store.getTabJob(jobId)) ?? defaultRecord(jobId, 'digits', DEFAULT_SPOT_CHECK)
    // Unpaused only if no pause came meanwhile (a pause's own write is ordered after this one).
    if (record.paused && live.stopping == null) await this.store.putTabJob({ ...record, paused: false })
    const base = { ...record, paused: false }
    const { source, options } = await this.jobParts(meta, base)
    // Read again right before the runner is built: a pause or cancel (from this tab, another tab or
    // another process) may have landed while the parts were read. Nothing is awaited from here to
    // the run's start, so a pause or cancel finds either no runner and its mark, or the runner.
    const [fresh, freshRecord] = await Promise.all([this.store.getJob(jobId), this.store.getTabJob(jobId)])
    if (fresh == null || isTerminalState(fresh.state) || live.stopping != null || freshRecord?.paused === true) {
      let final = fresh ?? meta
      if (live.stopping === 'cancel' && !isTerminalState(final.state)) final = await transitionJob(this.store, jobId, 'cancelled', { error: 'cancelled by its requester' })
      return { meta: final, seconds: (performance.now() - t0) / 1000, stopped: true }
    }
    const tab = this.tab
    const runner = new JobRunner({
      ...options,
      meta: fresh,
      source,
      tasks: tab.tasks,
      adverts: tab.adverts,
      store: this.store,
      reputation: this.reputation,
      requester: tab.node.peerId.toString(),
      // Spot checks and the tab's connectivity (a blocked job says when the relay is unreachable).
      ...tab.verification(base.spotCheck, 'standard'),
      // The requester's own tab works on the job too: a volunteer's pause stops work for others only.
      local: { slots: 1, run: async (request) => await tab.queue.submit(request, LOCAL_PEER) },
      // A blocked job waits, saying why, until more workers come or its user cancels it: a person
      // can open another tab, which a timeout would not wait for.
      stallMs: Number.POSITIVE_INFINITY
    })
    live.runner = runner
    live.base = base
    runner.addEventListener('progress', () => {
      this.dispatchEvent(new CustomEvent<string>('progress', { detail: jobId }))
      const now = performance.now()
      if (now - live.lastSave >= RECORD_SAVE_MS) {
        live.lastSave = now
        this.saveRecord(runner, base, live).catch(() => {}) // display figures only; the end of the run writes them again
      }
    })
    let final = await runner.run()
    await this.saveRecord(runner, base, live)
    const stopped = live.stopping != null && !isTerminalState(final.state)
    if (live.stopping === 'cancel' && stopped) final = await transitionJob(this.store, jobId, 'cancelled', { error: 'cancelled by its requester' })
    const summary = final.modelId === builtinModel('digits').id ? summarizeDigits(await this.digitRows(final)) : undefined
    return { meta: final, summary, seconds: (performance.now() - t0) / 1000, stopped, progress: { ...runner.progress, state: final.state } }
  }

  /** Stops dispatching; the job stays resumable and a reload leaves it paused. */
  async pause (jobId: string): Promise<void> {
    const record = await this.recordOf(jobId)
    if (record == null) return
    const live = this.live.get(jobId)
    // Marked first: the running job's own record writes then keep it paused (see saveRecord), and
    // a job still reading its parts never starts.
    if (live != null) live.stopping = 'pause'
    await this.store.putTabJob({ ...(live?.runner != null && live.base != null ? withRun(live.runner, live.base) : record), paused: true })
    if (live != null) {
      await live.runner?.stop()
      await live.ended.catch(() => {})
    }
    this.changed()
  }

  /** Ends the job for good ('cancelled'); what was decided stays in the store and downloadable. */
  async cancel (jobId: string): Promise<void> {
    const live = this.live.get(jobId)
    if (live != null) {
      live.stopping = 'cancel'
      await live.runner?.stop()
      // A run that failed to start (or that another tab holds) is cancelled through the store below.
      await live.ended.catch(() => {})
    }
    // Another tab running it sees the cancel in the store (its runner reads the state every second).
    const meta = await this.store.getJob(jobId)
    if (meta != null && !isTerminalState(meta.state)) await transitionJob(this.store, jobId, 'cancelled', { error: 'cancelled by its requester' })
    const record = await this.recordOf(jobId)
    if (record?.paused === true) await this.store.putTabJob({ ...record, paused: false })
    this.changed()
  }

  isRunning (jobId: string): boolean {
    return this.live.has(jobId)
  }

  progress (jobId: string): JobProgress | undefined {
    return this.live.get(jobId)?.runner?.progress
  }

  /** A running job's record with this run's figures added (undefined while it is not running or still starting). */
  liveRecord (jobId: string): TabJobRecord | undefined {
    const live = this.live.get(jobId)
    return live?.runner == null || live.base == null ? undefined : withRun(live.runner, live.base)
  }

  /** Digits jobs: CSV or JSON of the decided results, in input order. */
  async exportDigits (jobId: string, format: 'csv' | 'json'): Promise<string> {
    const meta = await this.store.getJob(jobId)
    if (meta == null) throw new Error(`no job ${jobId}`)
    const rows = await this.digitRows(meta)
    return format === 'csv' ? digitsToCsv(rows) : digitsToJson(rows, summarizeDigits(rows))
  }

  /** Custom jobs: JSONL of the decided results, in input order. */
  async exportJsonl (jobId: string): Promise<string> {
    return resultsJsonl(await this.store.getResults(jobId))
  }

  /** The job's results with their signed receipts and its audit log, as `npm run verify` reads them. */
  async exportProofs (jobId: string): Promise<string> {
    const meta = await this.store.getJob(jobId)
    if (meta == null) throw new Error(`no job ${jobId}`)
    return (await jobExportLines(this.store, meta, this.tab.node.peerId.toString())).join('\n') + '\n'
  }

  /** Stored results of a digits job as prediction rows (the dataset gives the labels). */
  private async digitRows (meta: JobMeta): Promise<ReturnType<typeof digitPredictions>> {
    return digitPredictions(await this.store.getResults(meta.jobId), await this.dataset(meta.datasetId))
  }

  private async recordOf (jobId: string): Promise<TabJobRecord | undefined> {
    const meta = await this.store.getJob(jobId)
    if (meta == null) return undefined
    return (await this.store.getTabJob(jobId)) ?? defaultRecord(jobId, 'digits', DEFAULT_SPOT_CHECK)
  }

  /** What a job needs to run, by its kind: where inputs come from, how results compare, the model's interface. */
  private async jobParts (meta: JobMeta, record: TabJobRecord): Promise<{ source: JobSource, options: Pick<JobRunnerOptions, 'compare' | 'declared'> }> {
    if (record.kind === 'digits') {
      return { source: digitJobSource(await this.dataset(meta.datasetId)), options: { compare: argmaxComparator(DIGITS_OUTPUT_PROBS), declared: builtinModel('digits') } }
    }
    let model = this.models.get(meta.jobId)
    if (model == null) {
      const bytes = await this.store.getModel(meta.jobId)
      if (bytes == null) throw new Error(`job ${meta.jobId}: its model is no longer stored in this browser`)
      model = customModel(record.custom?.modelName ?? meta.model.name, bytes)
      this.models.set(meta.jobId, model)
    }
    // A reloaded tab serves the model again (its cache may have been cleared meanwhile).
    await this.tab.addModel(model.bytes, model.name)
    const inputs: WireTensor[][] = await this.store.getInputs(meta.jobId, meta.taskCount)
    const outputNames = record.custom?.outputNames ?? []
    return {
      source: { task: (index) => ({ inputs: inputs[index]!, outputNames }) },
      options: { compare: relativeComparator(record.custom?.tolerance ?? 1e-4), declared: model.declared }
    }
  }

  /** A running job's record with this run's figures; paused once its user paused it (never read back: a read-then-write could undo a pause). */
  private async saveRecord (runner: JobRunner, base: TabJobRecord, live: Live): Promise<void> {
    await this.store.putTabJob({ ...withRun(runner, base), paused: live.stopping === 'pause' })
  }

  private changed (): void {
    this.dispatchEvent(new Event('change'))
  }
}

/** The record with the current run's contribution per peer and inference time added. */
function withRun (runner: JobRunner, base: TabJobRecord): TabJobRecord {
  const p = runner.progress
  const workers = { ...base.workers }
  for (const [peer, n] of Object.entries(p.perPeer)) workers[peer] = (workers[peer] ?? 0) + n
  return { ...base, workers, inferenceMs: base.inferenceMs + p.inferenceMs }
}

function defaultRecord (jobId: string, kind: TabJobRecord['kind'], spotCheck: number): TabJobRecord {
  return { jobId, kind, paused: false, spotCheck, workers: {}, inferenceMs: 0 }
}

function newMeta (modelId: string, model: JobMeta['model'], datasetId: string, taskCount: number, replicas: number, adaptive: boolean): JobMeta {
  const now = Date.now()
  return {
    jobId: crypto.randomUUID?.() ?? `${now.toString(36)}-${Math.random().toString(36).slice(2)}`,
    modelId,
    model,
    datasetId,
    taskCount,
    replicas,
    adaptive,
    state: 'queued',
    createdAt: now,
    updatedAt: now
  }
}

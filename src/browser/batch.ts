/**
 * Batch jobs from a tab: loads the dataset, runs the job with a JobRunner over this tab's peer
 * (its own worker included), keeps state in IndexedDB so a reloaded tab resumes, and exports results.
 */
import { JobRunner, LOCAL_PEER } from '../net/job-runner.js'
import { Reputation } from '../core/reputation.js'
import { argmaxComparator } from '../core/compare.js'
import { DATASETS, parseDigitDataset } from '../models/datasets.js'
import { builtinModel, modelRef } from '../models/catalog.js'
import { digitJobSource, digitPredictions, summarizeDigits } from '../models/digit-job.js'
import { DIGITS_OUTPUT_PROBS } from '../models/digits.js'
import { IdbJobStore } from './idb-job-store.js'
import { DEFAULT_SPOT_CHECK } from '../core/verification.js'
import { jobExportLines } from '../core/job-export.js'
import type { DiversityMode } from '../core/diversity.js'
import type { DigitDataset } from '../models/datasets.js'
import type { JobMeta } from '../core/job-store.js'
import type { JobProgress } from '../net/job-runner.js'
import type { DigitJobSummary, DigitPrediction } from '../models/digit-job.js'
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

export interface BatchOutcome {
  meta: JobMeta
  rows: DigitPrediction[]
  summary: DigitJobSummary
  seconds: number
}

export class BatchController extends EventTarget {
  readonly store = new IdbJobStore()
  runner?: JobRunner
  private readonly tab: TabPeer
  private readonly datasets = new Map<string, Promise<DigitDataset>>()
  reputation = new Reputation()
  /** How this tab's jobs verify results beyond replicas (see core/verification.ts). */
  verification: { spotCheck: number, diversity: DiversityMode } = { spotCheck: DEFAULT_SPOT_CHECK, diversity: 'standard' }

  constructor (tab: TabPeer) {
    super()
    this.tab = tab
  }

  async init (): Promise<void> {
    this.reputation = new Reputation(await this.store.getReputation())
  }

  /** The newest job that did not finish (a reloaded tab resumes it). */
  async unfinished (): Promise<JobMeta | undefined> {
    return (await this.store.listJobs()).find(j => j.state === 'queued' || j.state === 'running' || j.state === 'verifying')
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

  /** Creates a new job. */
  async create (options: BatchOptions): Promise<JobMeta> {
    const dataset = await this.dataset(options.datasetId)
    const model = builtinModel('digits')
    this.verification = { ...this.verification, spotCheck: options.spotCheck ?? DEFAULT_SPOT_CHECK }
    const now = Date.now()
    const meta: JobMeta = {
      jobId: crypto.randomUUID?.() ?? `${now.toString(36)}-${Math.random().toString(36).slice(2)}`,
      modelId: model.id,
      model: modelRef(model),
      datasetId: dataset.id,
      taskCount: Math.min(dataset.count, options.limit ?? dataset.count),
      replicas: options.replicas,
      adaptive: options.adaptive,
      state: 'queued',
      createdAt: now,
      updatedAt: now
    }
    await this.store.putJob(meta)
    return meta
  }

  /** Runs (or resumes) a job to the end. */
  async run (meta: JobMeta): Promise<BatchOutcome> {
    const dataset = await this.dataset(meta.datasetId)
    const t0 = performance.now()
    const runner = new JobRunner({
      meta,
      source: digitJobSource(dataset),
      tasks: this.tab.tasks,
      adverts: this.tab.adverts,
      store: this.store,
      compare: argmaxComparator(DIGITS_OUTPUT_PROBS),
      reputation: this.reputation,
      declared: builtinModel('digits'),
      requester: this.tab.node.peerId.toString(),
      ...this.tab.verification(this.verification.spotCheck, this.verification.diversity),
      // The requester's own tab works on the job too, unless its volunteer paused it.
      local: this.tab.paused ? undefined : { slots: 1, run: async (request) => await this.tab.queue.submit(request, LOCAL_PEER) }
    })
    this.runner = runner
    runner.addEventListener('progress', () => { this.dispatchEvent(new Event('progress')) })
    const final = await runner.run()
    const rows = digitPredictions(await this.store.getResults(meta.jobId), dataset)
    return { meta: final, rows, summary: summarizeDigits(rows), seconds: (performance.now() - t0) / 1000 }
  }

  /** The job's results with their signed receipts and its audit log, as `npm run verify` reads them. */
  async exportProofs (jobId: string): Promise<string> {
    const meta = await this.store.getJob(jobId)
    if (meta == null) throw new Error(`no job ${jobId}`)
    return (await jobExportLines(this.store, meta, this.tab.node.peerId.toString())).join('\n') + '\n'
  }

  get progress (): JobProgress | undefined {
    return this.runner?.progress
  }
}

/**
 * The page's jobs: the list of every job this tab started (from IndexedDB, so it survives
 * reloads), the live progress of those running, the intents (start, pause, resume, cancel,
 * download), and the price per GB-second the cost figures use (kept in localStorage).
 */
import { BatchController } from '../browser/batch.js'
import { DEFAULT_PRICE_PER_GB_SECOND } from '../core/cost.js'
import { isTerminalState } from '../core/job-store.js'
import { saveFile } from './download.js'
import type { BatchOptions, BatchOutcome, CustomBatchOptions, JobEntry } from '../browser/batch.js'
import type { CustomModel, Dataset } from '../browser/job-custom.js'
import type { JobProgress } from '../net/job-runner.js'
import type { TabPeer } from '../browser/tab-peer.js'

const PRICE_KEY = 'p2p-ai-agents.price-per-gb-second'
const PROGRESS_MS = 200

/** Most jobs listed (newest first); older ones stay stored and downloadable by the CLI's means. */
const MAX_LISTED = 100

function savedPrice (): number {
  try {
    const v = Number(localStorage.getItem(PRICE_KEY))
    return localStorage.getItem(PRICE_KEY) != null && Number.isFinite(v) && v >= 0 ? v : DEFAULT_PRICE_PER_GB_SECOND
  } catch {
    return DEFAULT_PRICE_PER_GB_SECOND
  }
}

class JobsState {
  /** Newest first. */
  list = $state.raw<JobEntry[]>([])
  /** Progress of the jobs running in this tab, by job id. */
  progress = $state.raw<Record<string, JobProgress>>({})
  /** How each job that ended in this session ended (digits: accuracy), by job id. */
  outcomes = $state.raw<Record<string, BatchOutcome>>({})
  /** The job the Batch panel follows: the last one started, resumed or resumed after a reload. */
  current = $state<string | undefined>(undefined)
  /** The current job was resumed after a reload. */
  resumed = $state(false)
  /** Ready once the tab has started and the stored jobs are read. */
  ready = $state(false)
  error = $state('')
  /** Per-job errors from the controls (a failed resume, a failed download). */
  jobErrors = $state.raw<Record<string, string>>({})
  pricePerGbSecond = $state(savedPrice())
  controller?: BatchController
  private progressTimer?: ReturnType<typeof setTimeout>
  private listing = false
  private relist = false

  /** Reads the stored jobs and resumes the newest running one (not a paused one). */
  async start (tab: TabPeer): Promise<BatchController> {
    const c = new BatchController(tab)
    this.controller = c
    c.addEventListener('progress', () => { this.onProgress() })
    c.addEventListener('change', () => { void this.refresh() })
    await c.init()
    await this.refresh()
    this.ready = true
    const unfinished = await c.unfinished()
    if (unfinished != null) void this.runJob(unfinished.jobId, true)
    return c
  }

  setPrice (price: number): void {
    if (!Number.isFinite(price) || price < 0) return
    this.pricePerGbSecond = price
    try { localStorage.setItem(PRICE_KEY, String(price)) } catch {}
  }

  get busy (): boolean {
    return this.current != null && this.progress[this.current] != null
  }

  async startDigits (options: BatchOptions): Promise<void> {
    if (this.controller == null) return
    this.error = ''
    // The panel stops showing the previous job at once: its figures must not pass for the new one's.
    this.current = undefined
    try {
      const meta = await this.controller.create(options)
      void this.runJob(meta.jobId, false)
    } catch (err) {
      this.error = (err as Error).message
    }
  }

  async startCustom (model: CustomModel, dataset: Dataset, options: CustomBatchOptions): Promise<void> {
    if (this.controller == null) return
    this.error = ''
    this.current = undefined
    try {
      const meta = await this.controller.createCustom(model, dataset, options)
      void this.runJob(meta.jobId, false)
    } catch (err) {
      this.error = (err as Error).message
    }
  }

  async pause (jobId: string): Promise<void> {
    await this.control(jobId, async c => { await c.pause(jobId) })
  }

  async resume (jobId: string): Promise<void> {
    this.setJobError(jobId, '')
    void this.runJob(jobId, false)
  }

  async cancel (jobId: string): Promise<void> {
    await this.control(jobId, async c => { await c.cancel(jobId) })
  }

  async download (entry: JobEntry, format: 'csv' | 'json' | 'jsonl' | 'proofs'): Promise<void> {
    await this.control(entry.meta.jobId, async c => {
      const id = entry.meta.jobId
      const base = entry.record.kind === 'digits' ? `digits-${id}` : `${entry.record.custom?.modelName.replace(/\.onnx$/i, '') ?? 'model'}-${id}`
      if (format === 'proofs') saveFile(`${base}-proofs.jsonl`, await c.exportProofs(id), 'application/x-ndjson')
      else if (format === 'jsonl') saveFile(`${base}.jsonl`, await c.exportJsonl(id), 'application/x-ndjson')
      else saveFile(`${base}.${format}`, await c.exportDigits(id, format), format === 'csv' ? 'text/csv' : 'application/json')
    })
  }

  private async control (jobId: string, fn: (c: BatchController) => Promise<void>): Promise<void> {
    if (this.controller == null) return
    this.setJobError(jobId, '')
    try {
      await fn(this.controller)
    } catch (err) {
      this.setJobError(jobId, (err as Error).message)
    }
  }

  private setJobError (jobId: string, message: string): void {
    const next = { ...this.jobErrors }
    if (message === '') delete next[jobId]
    else next[jobId] = message
    this.jobErrors = next
  }

  private async runJob (jobId: string, resumed: boolean): Promise<void> {
    const c = this.controller
    if (c == null) return
    this.current = jobId
    this.resumed = resumed
    try {
      const outcome = await c.run(jobId)
      this.outcomes = { ...this.outcomes, [jobId]: outcome }
      if (outcome.meta.error != null && outcome.meta.state === 'failed') this.setJobError(jobId, outcome.meta.error)
    } catch (err) {
      this.setJobError(jobId, (err as Error).message)
      if (this.current === jobId) this.error = (err as Error).message
    } finally {
      this.showProgress()
      await this.refresh()
    }
  }

  /** Progress changes with every task; the page re-renders it at most every PROGRESS_MS. */
  private onProgress (): void {
    this.progressTimer ??= setTimeout(() => {
      this.progressTimer = undefined
      this.showProgress()
    }, PROGRESS_MS)
  }

  private showProgress (): void {
    const c = this.controller
    if (c == null) return
    const next: Record<string, JobProgress> = {}
    for (const e of this.list) {
      const p = c.progress(e.meta.jobId)
      if (p != null) next[e.meta.jobId] = p
    }
    if (this.current != null && next[this.current] == null) {
      const p = c.progress(this.current)
      if (p != null) next[this.current] = p
    }
    this.progress = next
    // Running jobs' records carry this run's figures (who worked, inference time).
    if (this.list.some(e => c.isRunning(e.meta.jobId))) {
      this.list = this.list.map(e => {
        const record = c.liveRecord(e.meta.jobId)
        return record == null ? e : { ...e, record: { ...record, paused: e.record.paused } }
      })
    }
  }

  /** Re-reads the stored jobs (one read at a time; a change meanwhile reads again). */
  private async refresh (): Promise<void> {
    const c = this.controller
    if (c == null) return
    if (this.listing) {
      this.relist = true
      return
    }
    this.listing = true
    try {
      do {
        this.relist = false
        this.list = (await c.list()).slice(0, MAX_LISTED)
        this.showProgress()
      } while (this.relist)
    } catch (err) {
      this.error = `cannot read this tab's jobs: ${(err as Error).message}`
    } finally {
      this.listing = false
    }
  }

  /** Whether a job can still be paused, resumed or cancelled. */
  open (entry: JobEntry): boolean {
    return !isTerminalState(entry.meta.state)
  }
}

export const jobs = new JobsState()

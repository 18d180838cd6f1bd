/** The page's reactive state (Svelte 5 runes) and the intents the components dispatch. */
import { TabPeer } from '../browser/tab-peer.js'
import { loadConfig, saveIceServers, savedIceServers } from '../browser/config.js'
import { toTaskError } from '../core/errors.js'
import { fromTypedArray, toTypedArray } from '../core/tensor.js'
import { builtinBySha, builtinModel, modelRef } from '../models/catalog.js'
import { argmax, DIGITS_INPUT, DIGITS_OUTPUT_PROBS, preprocessDrawing } from '../models/digits.js'
import type { PeerView, Target } from '../browser/tab-peer.js'
import type { RelayState, RelayView } from '../net/relays.js'
import type { Timings } from '../core/task-types.js'
import type { WorkEvent } from '../core/work-queue.js'
import type { ModelEvent } from '../core/model-store.js'
import type { JobMeta } from '../core/job-store.js'
import type { PeerRecord } from '../core/reputation.js'
import type { JobProgress } from '../net/job-runner.js'
import type { BatchOptions } from '../browser/batch.js'
import type { DigitJobSummary, DigitPrediction } from '../models/digit-job.js'
import { BatchController } from '../browser/batch.js'
import { OcrState } from './ocr-state.svelte.js'
import { ModelState } from './model-state.svelte.js'
import { digitsToCsv, digitsToJson } from '../models/digit-job.js'

export interface Submission {
  taskId: string
  target: string
  status: 'running' | 'done' | 'failed'
  prediction?: number
  probs?: number[]
  worker?: string
  backend?: string
  threads?: number
  timings?: Timings & { networkMs: number, roundTripMs: number }
  error?: string
}

export interface ServedTask {
  taskId: string
  requester: string
  model: string
  state: WorkEvent['state']
  timings?: Timings
  error?: string
}

/** A model this tab fetched from a peer (or tried to), as the work log shows it. */
export interface ModelFetch {
  sha256: string
  name: string
  from: string
  size: number
  state: 'fetching' | 'cached' | 'rejected'
  received: number
  ms?: number
  error?: string
  /** The backend this tab measured fastest for the model, once it has. */
  backend?: string
}

const MAX_LOG = 50
const PROGRESS_MS = 200

export interface BatchView {
  phase: 'idle' | 'starting' | 'running' | 'done' | 'failed'
  jobId?: string
  resumed?: boolean
  progress?: JobProgress
  outcome?: { summary: DigitJobSummary, seconds: number, tasksPerSec: number, state: string, error?: string, disagreements: number, spotChecked: number, convicted: number }
  error?: string
}

class AppState {
  peerId = $state('')
  slot = $state(0)
  relay = $state<RelayState>('connecting')
  relayAddr = $state('')
  /** Every relay this tab knows and its state. */
  relays = $state.raw<RelayView[]>([])
  /** ICE servers set in the page (empty: those from the server's /config.json, or none). */
  iceText = savedIceServers() ?? ''
  backend = $state('')
  threads = $state(0)
  isolated = typeof crossOriginIsolated === 'boolean' && crossOriginIsolated
  webgpuNote = $state('')
  readyMs = $state<number | undefined>(undefined)
  fatal = $state('')
  relayError = $state('')
  peers = $state<PeerView[]>([])
  submissions = $state<Submission[]>([])
  served = $state<ServedTask[]>([])
  paused = $state(false)
  batchView = $state<BatchView>({ phase: 'idle' })
  reputation = $state<Record<string, PeerRecord>>({})
  /** The tab's peer once started (for the scripting API). */
  tab?: TabPeer
  batch?: BatchController
  readonly ocr = new OcrState(() => ({ tab: this.tab, reputation: this.batch?.reputation }))
  readonly models = new ModelState(() => this.tab)
  modelFetches = $state.raw<ModelFetch[]>([])
  /** sha256 → the backend this tab measured fastest for it, and each candidate's median ms. */
  backendChoices = $state.raw<Array<{ sha256: string, name: string, backend: string, medians: Record<string, number> }>>([])
  private fetchTimer?: ReturnType<typeof setTimeout>
  private batchRows: DigitPrediction[] = []
  private progressTimer?: ReturnType<typeof setTimeout>
  /** Newest last; insertion order is arrival order. */
  private readonly servedLog = new Map<string, ServedTask>()
  private servedTimer?: ReturnType<typeof setTimeout>
  private counter = 0

  async start (): Promise<void> {
    try {
      const config = await loadConfig()
      this.relayAddr = config.relays.join('\n')
      const tab = new TabPeer(config)
      this.tab = tab
      tab.addEventListener('change', () => { this.refresh() })
      tab.addEventListener('model', (evt) => { this.onModelEvent((evt as CustomEvent<ModelEvent>).detail) })
      await tab.start(e => { this.onWork(e) })
      // Every backend this tab measures per model, the one it starts with first.
      this.backend = tab.picker.names.join(' | ')
      this.threads = tab.worker.info.threads
      this.webgpuNote = tab.webgpuSkipped != null ? `WebGPU not used: ${tab.webgpuSkipped}` : ''
      this.slot = tab.slot
      this.refresh()
      this.batch = new BatchController(tab)
      this.batch.addEventListener('progress', () => { this.onBatchProgress() })
      await this.batch.init()
      this.reputation = this.batch.reputation.toJSON()
      const unfinished = await this.batch.unfinished()
      if (unfinished != null) void this.runBatch(unfinished, true)
    } catch (err) {
      this.fatal = (err as Error).message
      this.relay = 'disconnected'
    }
  }

  private onModelEvent (e: ModelEvent): void {
    const key = (f: ModelFetch): boolean => f.sha256 === e.ref.sha256 && f.from === e.from && f.state === 'fetching'
    let entry = this.modelFetches.find(key)
    if (entry == null) {
      entry = { sha256: e.ref.sha256, name: e.ref.name, from: e.from, size: e.ref.size, state: 'fetching', received: 0 }
      this.modelFetches = [entry, ...this.modelFetches].slice(0, MAX_LOG)
    }
    const patch: Partial<ModelFetch> = e.type === 'transfer'
      ? { received: e.progress.received }
      : e.type === 'cached' ? { state: 'cached', received: e.ref.size, ms: e.ms } : { state: 'rejected', error: `${e.error.code}: ${e.error.message}` }
    Object.assign(entry, patch)
    // Transfer progress renders at most every 200 ms; the end of a transfer at once.
    if (e.type !== 'transfer') {
      clearTimeout(this.fetchTimer)
      this.fetchTimer = undefined
      this.modelFetches = [...this.modelFetches]
    } else {
      this.fetchTimer ??= setTimeout(() => { this.fetchTimer = undefined; this.modelFetches = [...this.modelFetches] }, PROGRESS_MS)
    }
  }

  /** Classifies a drawing (RGBA pixels of the pad) on the chosen target. */
  async submitDigit (rgba: Uint8ClampedArray, width: number, height: number, target: Target): Promise<void> {
    const model = builtinModel('digits')
    const pixels = preprocessDrawing(rgba, width, height)
    const taskId = `${this.peerId.slice(-6)}-${Date.now().toString(36)}-${++this.counter}`
    const entry: Submission = { taskId, target: target.kind === 'peer' ? target.peerId : target.kind, status: 'running' }
    this.submissions = [entry, ...this.submissions].slice(0, MAX_LOG)
    const update = (patch: Partial<Submission>): void => {
      this.submissions = this.submissions.map(s => s.taskId === taskId ? { ...s, ...patch } : s)
    }
    try {
      if (this.tab == null) throw new Error('this tab is not connected yet')
      const run = await this.tab.run({
        taskId,
        jobId: 'interactive',
        model: modelRef(model),
        inputs: [fromTypedArray(DIGITS_INPUT, 'float32', [1, 1, 28, 28], pixels)],
        timeoutMs: 30_000,
        outputNames: [DIGITS_OUTPUT_PROBS]
      }, target)
      const probsTensor = run.result.outputs.find(o => o.name === DIGITS_OUTPUT_PROBS)
      if (probsTensor == null) throw new Error('the worker returned no probabilities')
      const probs = Array.from(toTypedArray(probsTensor) as Float32Array)
      update({
        status: 'done',
        prediction: argmax(probs),
        probs,
        worker: run.worker,
        backend: run.result.backend,
        threads: run.result.threads,
        timings: { ...run.result.timings, networkMs: run.networkMs, roundTripMs: run.roundTripMs }
      })
    } catch (err) {
      const e = toTaskError(err)
      update({ status: 'failed', error: `${e.code}: ${e.message}` })
    }
  }

  /** Volunteer pause: finish what runs, take nothing new. */
  togglePause (): void {
    if (this.tab == null) return
    this.tab.setPaused(!this.tab.paused)
    this.paused = this.tab.paused
  }

  async startBatch (options: BatchOptions): Promise<void> {
    if (this.batch == null || this.batchView.phase === 'running' || this.batchView.phase === 'starting') return
    this.batchView = { phase: 'starting' }
    try {
      await this.runBatch(await this.batch.create(options), false)
    } catch (err) {
      this.batchView = { phase: 'failed', error: (err as Error).message }
    }
  }

  /** Results as CSV or JSON, in input order. */
  exportBatch (format: 'csv' | 'json'): string {
    if (this.batchView.outcome == null) return ''
    return format === 'csv' ? digitsToCsv(this.batchRows) : digitsToJson(this.batchRows, this.batchView.outcome.summary)
  }

  /** Results, signed receipts and the audit log of the last batch (JSONL for `npm run verify`). */
  async exportBatchProofs (): Promise<string> {
    if (this.batch == null || this.batchView.jobId == null) return ''
    return await this.batch.exportProofs(this.batchView.jobId)
  }

  private async runBatch (meta: JobMeta, resumed: boolean): Promise<void> {
    this.batchView = { phase: 'running', jobId: meta.jobId, resumed }
    try {
      const outcome = await this.batch!.run(meta)
      const progress = this.batch!.progress
      this.batchRows = outcome.rows
      this.batchView = {
        phase: outcome.meta.state === 'done' ? 'done' : 'failed',
        jobId: meta.jobId,
        resumed,
        progress,
        outcome: {
          summary: outcome.summary,
          seconds: outcome.seconds,
          tasksPerSec: outcome.rows.length / Math.max(outcome.seconds, 1e-3),
          state: outcome.meta.state,
          error: outcome.meta.error,
          disagreements: progress?.disagreements ?? 0,
          spotChecked: progress?.spotChecks.done ?? 0,
          convicted: progress?.convicted.length ?? 0
        }
      }
      this.reputation = this.batch!.reputation.toJSON()
    } catch (err) {
      this.batchView = { phase: 'failed', jobId: meta.jobId, error: (err as Error).message }
    }
  }

  /** Progress changes with every task; the page re-renders it at most every PROGRESS_MS. */
  private onBatchProgress (): void {
    if (this.progressTimer != null) return
    this.progressTimer = setTimeout(() => {
      this.progressTimer = undefined
      const progress = this.batch?.progress
      if (progress == null || this.batchView.phase !== 'running') return
      this.batchView = { ...this.batchView, progress }
      this.reputation = this.batch!.reputation.toJSON()
    }, PROGRESS_MS)
  }

  private onWork (e: WorkEvent): void {
    const entry: ServedTask = {
      taskId: e.taskId,
      requester: e.requester,
      model: e.model,
      state: e.state,
      timings: e.result?.timings,
      error: e.error != null ? `${e.error.code}: ${e.error.message}` : undefined
    }
    // Tasks can arrive by the hundred per second: collect them, render at most every PROGRESS_MS.
    this.servedLog.delete(e.taskId)
    this.servedLog.set(e.taskId, entry)
    if (this.servedLog.size > MAX_LOG) this.servedLog.delete(this.servedLog.keys().next().value!)
    this.servedTimer ??= setTimeout(() => {
      this.servedTimer = undefined
      this.served = [...this.servedLog.values()].reverse()
    }, PROGRESS_MS)
  }

  /** Saves the page's ICE servers and reloads to apply them; returns an error to show, if any. */
  saveIce (text: string): string {
    try {
      saveIceServers(text)
    } catch (err) {
      return (err as Error).message
    }
    location.reload()
    return ''
  }

  private refresh (): void {
    if (this.tab == null) return
    this.peerId = this.tab.peerId
    this.relay = this.tab.relayStatus
    this.relays = this.tab.relays
    this.readyMs = this.tab.readyMs
    this.relayError = this.tab.relayError ?? ''
    this.peers = this.tab.peers()
    if (this.tab.picker != null && this.tab.picker.choices.size !== this.backendChoices.length) {
      this.backendChoices = [...this.tab.picker.choices].map(([sha256, c]) => ({ sha256, name: builtinBySha(sha256)?.id ?? this.modelFetches.find(f => f.sha256 === sha256)?.name ?? sha256.slice(0, 12), ...c }))
    }
  }
}

export const app = new AppState()

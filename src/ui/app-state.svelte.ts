/** The page's reactive state (Svelte 5 runes) and the intents the components dispatch. */
import { TabPeer } from '../browser/tab-peer.js'
import { networkStats } from '../browser/network-stats.js'
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
import type { PeerRecord } from '../core/reputation.js'
import type { BatchController } from '../browser/batch.js'
import { jobs } from './jobs-state.svelte.js'
import { contribution } from './contribution.svelte.js'
import { OcrState } from './ocr-state.svelte.js'
import { ModelState } from './model-state.svelte.js'
import { showTabState, VolunteerControls } from '../browser/volunteer.js'
import { needsReload } from '../browser/volunteer-settings.js'
import { backendsInWords, relaysInWords } from '../browser/volunteer-words.js'
import { loadKept, MAX_KEPT_SERVED, saveKept } from '../browser/volunteer-log.js'
import { systemClock } from '../core/clock.js'
import { SubmissionList } from './submission-list.js'
import type { PauseReason, VolunteerSettings } from '../browser/volunteer-settings.js'

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
  /** The task's error as raised, with the peer that raised it when known (shown in words by ResultCard). */
  error?: { code: string, message: string, peer?: string }
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
/**
 * Results and the work log are written to storage at most this often while tasks stream in, and
 * at once when the page is hidden or goes away. Each write serialises up to 500 rows on the main
 * thread and sends them to every other tab of the app (storage events): once a second it landed
 * on the tasks a worker tab was serving.
 */
const KEEP_MS = 10_000
/** A digit task that answers sooner shows no "running" card first (see SubmissionList). */
const RUNNING_GRACE_MS = 100

function storage (): Storage | undefined {
  try {
    return localStorage
  } catch {
    return undefined
  }
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
  /** Where this tab computes, in words ("CPU (WebAssembly), 2 threads · 1 task at a time; WebGPU not available: …"). */
  backendWords = $state('')
  /** The relays' state in words ("relay unreachable, retrying: …"). */
  relayWords = $state('')
  threads = $state(0)
  isolated = typeof crossOriginIsolated === 'boolean' && crossOriginIsolated
  readyMs = $state<number | undefined>(undefined)
  fatal = $state('')
  relayError = $state('')
  // Lists replaced whole, never changed in place: raw state, so a render does not proxy every row.
  peers = $state.raw<PeerView[]>([])
  submissions = $state.raw<Submission[]>([])
  served = $state.raw<ServedTask[]>([])
  private readonly results = new SubmissionList<Submission>({ clock: systemClock, max: MAX_LOG, graceMs: RUNNING_GRACE_MS, onChange: (rows) => { this.submissions = rows as Submission[] } })
  paused = $state(false)
  /** Why this tab takes no work now (empty while it works): the volunteer's pause, a hidden tab, the battery. */
  pauseReasons = $state.raw<PauseReason[]>([])
  readonly volunteer = new VolunteerControls(() => { this.applyVolunteer() })
  volunteerSettings = $state.raw<VolunteerSettings>(this.volunteer.settings)
  batterySupported = $state(this.volunteer.batterySupported)
  /** Undefined where the browser does not say. */
  onBattery = $state<boolean | undefined>(undefined)
  /** Slots and threads this tab started with (saved changes to them apply on reload). */
  running = $state.raw<{ slots: number, threads?: number }>({ slots: this.volunteer.settings.slots, threads: this.volunteer.settings.threads })
  /** Why the last Recognise was refused before anything was sent (an empty pad). */
  padHint = $state('')
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
  private progressTimer?: ReturnType<typeof setTimeout>
  /** Newest last; insertion order is arrival order. */
  private readonly servedLog = new Map<string, ServedTask>()
  private servedTimer?: ReturnType<typeof setTimeout>
  private counter = 0
  private keepTimer?: ReturnType<typeof setTimeout>
  /** The identity slot this tab's rows are kept under, once TabPeer has claimed it. */
  private keptSlot?: number

  constructor () {
    if (typeof addEventListener === 'function') addEventListener('pagehide', () => { this.keep() })
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') this.keep() })
  }

  async start (): Promise<void> {
    this.applyVolunteer()
    try {
      const config = await loadConfig(this.volunteer.settings)
      this.running = { slots: config.slots, threads: config.threads }
      this.relayAddr = config.relays.join('\n')
      const tab = new TabPeer(config)
      this.tab = tab
      tab.addEventListener('change', () => { this.refresh() })
      tab.addEventListener('model', (evt) => { this.onModelEvent((evt as CustomEvent<ModelEvent>).detail) })
      await tab.start(e => { this.onWork(e) }, { paused: (slot) => this.volunteer.bindSlot(slot) })
      this.restore(tab.slot)
      networkStats.attach(tab)
      // Every backend this tab measures per model, the one it starts with first.
      this.backend = tab.picker.names.join(' | ')
      this.backendWords = backendsInWords(tab.specs, config.slots, tab.webgpuSkipped)
      this.threads = tab.worker.info.threads
      this.slot = tab.slot
      this.applyVolunteer()
      this.refresh()
      // Jobs (src/ui/jobs-state.svelte.ts): lists this tab's stored jobs and resumes the newest running one.
      this.batch = await jobs.start(tab)
      this.batch.addEventListener('progress', () => { this.onBatchProgress() })
      this.reputation = this.batch.reputation.toJSON()
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

  /** Classifies a drawing (the pad's pixels as digitInput made them) on the chosen target. */
  async submitDigit (pixels: Float32Array, target: Target): Promise<void> {
    const model = builtinModel('digits')
    // No ink: the model would still answer (a confident "1"), which means nothing.
    if (pixels.every(v => v === 0)) {
      this.padHint = 'Draw a digit first: the pad is empty.'
      return
    }
    this.padHint = ''
    const taskId = `${this.peerId.slice(-6)}-${Date.now().toString(36)}-${++this.counter}`
    this.results.add({ taskId, target: target.kind === 'peer' ? target.peerId : target.kind, status: 'running' })
    const update = (patch: Partial<Submission>): void => {
      this.results.update(taskId, patch)
      this.keepSoon()
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
      update({ status: 'failed', error: { code: e.code, message: e.message, peer: e.peer ?? (target.kind === 'peer' ? target.peerId : undefined) } })
    }
  }

  /** The model's 28×28 input from a drawing (RGBA pixels of the pad). */
  digitInput (rgba: Uint8ClampedArray, width: number, height: number): Float32Array {
    return preprocessDrawing(rgba, width, height)
  }

  /** Volunteer pause: finish what runs, take nothing new; kept across reloads. */
  togglePause (): void {
    this.volunteer.update({ paused: !this.volunteer.settings.paused })
  }

  /** Stores volunteer settings (throws VolunteerSettingsError for a value out of range). */
  updateVolunteer (patch: Partial<VolunteerSettings>): void {
    this.volunteer.update(patch)
  }

  /** True when saved slots/threads differ from those this tab started with (they apply on reload). */
  get reloadNeeded (): boolean {
    // A ?threads= in the address wins over the setting: reloading would not apply it.
    return needsReload(this.threadsFromUrl ? { ...this.volunteerSettings, threads: undefined } : this.volunteerSettings, this.running)
  }

  readonly threadsFromUrl = typeof location !== 'undefined' && new URLSearchParams(location.search).has('threads')

  /** The volunteer's settings and surroundings (visibility, battery) → paused or working, title and favicon. */
  private applyVolunteer (): void {
    const reasons = this.volunteer.reasons
    this.volunteerSettings = this.volunteer.settings
    this.batterySupported = this.volunteer.batterySupported
    this.onBattery = this.volunteer.onBattery
    this.pauseReasons = reasons
    if (this.tab?.advertiser != null && this.tab.paused !== (reasons.length > 0)) this.tab.setPaused(reasons.length > 0)
    this.paused = reasons.length > 0
    showTabState({ reasons, running: this.tab?.queue?.running ?? 0 })
  }

  /** Peers' reputation changes with every batch result; the page re-renders it at most every PROGRESS_MS. */
  private onBatchProgress (): void {
    if (this.progressTimer != null) return
    this.progressTimer = setTimeout(() => {
      this.progressTimer = undefined
      if (this.batch != null) this.reputation = this.batch.reputation.toJSON()
    }, PROGRESS_MS)
  }

  private onWork (e: WorkEvent): void {
    networkStats.onWork(e)
    contribution.record(e)
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
    if (this.servedLog.size > MAX_KEPT_SERVED) this.servedLog.delete(this.servedLog.keys().next().value!)
    this.servedTimer ??= setTimeout(() => {
      this.servedTimer = undefined
      this.served = [...this.servedLog.values()].reverse()
      showTabState({ reasons: this.pauseReasons, running: this.tab?.queue?.running ?? 0 })
      this.keepSoon()
    }, PROGRESS_MS)
  }

  /**
   * Brings back what this tab kept before a reload: its results and work log, kept per identity
   * slot (each tab of the browser has its own), behind anything that arrived while it started.
   */
  private restore (slot: number): void {
    this.keptSlot = slot
    contribution.bindSlot(slot)
    const kept = loadKept(storage(), slot)
    this.results.restore(kept.results as Submission[])
    const arrived = [...this.servedLog.values()]
    this.servedLog.clear()
    // A task that was running when the page went away never reports: say so rather than show it running.
    for (const row of kept.served.reverse() as ServedTask[]) {
      this.servedLog.set(row.taskId, row.state === 'done' || row.state === 'failed' ? row : { ...row, state: 'failed', error: 'interrupted: the page was closed or reloaded while it ran' })
    }
    for (const row of arrived) {
      this.servedLog.delete(row.taskId)
      this.servedLog.set(row.taskId, row)
    }
    while (this.servedLog.size > MAX_KEPT_SERVED) this.servedLog.delete(this.servedLog.keys().next().value!)
    this.served = [...this.servedLog.values()].reverse()
    this.keepSoon()
  }

  /** Writes results and the work log to storage, at most every KEEP_MS (the totals are the contribution ledger's). */
  private keepSoon (): void {
    this.keepTimer ??= setTimeout(() => { this.keep() }, KEEP_MS)
  }

  private keep (): void {
    clearTimeout(this.keepTimer)
    this.keepTimer = undefined
    // Rows are kept under the tab's identity slot: until it is known there is no key (restore() keeps them then).
    if (this.keptSlot === undefined) return
    saveKept(storage(), this.keptSlot, { results: this.submissions.filter(s => s.status !== 'running'), served: [...this.servedLog.values()].reverse() })
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
    this.relayWords = relaysInWords(this.tab.relays, this.tab.relayTried)
    this.peers = this.tab.peers()
    if (this.tab.picker != null && this.tab.picker.choices.size !== this.backendChoices.length) {
      this.backendChoices = [...this.tab.picker.choices].map(([sha256, c]) => ({ sha256, name: builtinBySha(sha256)?.id ?? this.modelFetches.find(f => f.sha256 === sha256)?.name ?? sha256.slice(0, 12), ...c }))
    }
  }
}

export const app = new AppState()

/**
 * The library: use the network from your own code.
 *
 *   const net = await connect({ relays: ['/ip4/…/tcp/9090/ws/p2p/12D3Koo…'] })
 *   const out = await net.run('digits', { input: { dims: [1, 1, 28, 28], data: pixels } })
 *   for await (const r of net.map('model.onnx', inputs, { replicas: 2 })) console.log(r.index, r.outputs)
 *   await net.close()
 *
 * A Requester is a Node peer that does not work for others: it finds workers through the relays'
 * adverts and runs batch jobs on them (JobRunner: replicas, verification, spot checks on its own
 * onnxruntime). Jobs started with submit() are kept in its job store and resume by id after a
 * restart; map() and run() keep nothing on disk. The CLIs, the HTTP gateway and the MCP server are
 * thin layers over this module.
 */
import './polyfill.js'
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { startNodePeer, MODELS_DIR } from './node-peer.js'
import { FileJobStore } from './file-job-store.js'
import { FileModelStore } from './file-model-store.js'
import { FileJobRequests, MemoryJobRequests } from './job-requests.js'
import { loadOrCreateKey } from './key-file.js'
import { nodeVerification, requesterInference } from './local-inference.js'
import { relayList } from './relay-args.js'
import { loadDigitDataset } from './datasets.js'
import { checkPngPages, decodePng } from './png.js'
import { ensureOcrModels } from './ocr-assets.js'
import { RequesterError, toRequesterError } from './requester-errors.js'
import { ModelRegistry } from './requester-models.js'
import { GiveUpWatch, Job, stalledError } from './requester-job.js'
import { RELAY_UNREACHABLE } from '../core/job-blocked.js'
import { queueDepthOf } from '../core/discovery/advert.js'
import { JobRunner } from '../net/job-runner.js'
import { runOcrBatch } from '../net/ocr-job.js'
import { MemoryJobStore, isTerminalState, isValidJobId } from '../core/job-store.js'
import { jobExportLines } from '../core/job-export.js'
import { MemoryModelStore } from '../core/model-store.js'
import { Reputation } from '../core/reputation.js'
import { DEFAULT_SPOT_CHECK } from '../core/verification.js'
import { isDiversityMode } from '../core/diversity.js'
import { argmaxComparator, relativeComparator } from '../core/compare.js'
import { digitJobSource } from '../models/digit-job.js'
import { DATASETS } from '../models/datasets.js'
import { DIGITS_OUTPUT_PROBS } from '../models/digits.js'
import { inputsFromJson } from '../models/tensor-input.js'
import { parseDictionary } from '../ocr/recognize.js'
import type { PrivateKey } from '@libp2p/interface'
import type { NodePeer, NodePeerOptions } from './node-peer.js'
import type { JobRequest, JobRequests } from './job-requests.js'
import type { RequesterInference } from './local-inference.js'
import type { ModelHandle, ModelInput } from './requester-models.js'
import type { TaskOutput } from './requester-job.js'
import type { JobMeta, JobSource, JobStore } from '../core/job-store.js'
import type { DiversityMode } from '../core/diversity.js'
import type { WireTensor } from '../core/tensor.js'
import type { AdvertEvent, GoneEvent } from '../core/discovery/table.js'
import type { JobProgress } from '../net/job-runner.js'
import type { OcrBatchProgress, OcrPageResult } from '../net/ocr-job.js'
import type { RgbaImage } from '../ocr/image.js'

export interface ConnectOptions {
  /** Relay multiaddrs (each with /p2p/<relay peer id>), in order of preference. */
  relays: string | readonly string[]
  /** Where jobs, models and this requester's key are kept (default '.data/requester'); null keeps nothing on disk. */
  dataDir?: string | null
  /** The job store's directory (default <dataDir>/jobs). */
  jobsDir?: string
  /** This requester's identity: a key file (made when missing; default <dataDir>/requester.key) or a key. */
  key?: string | PrivateKey
  /** Share of decided tasks recomputed here, 0..1 (default DEFAULT_SPOT_CHECK); per job too. */
  spotCheck?: number
  /** How workers are told apart (default 'standard'); per job too. */
  diversity?: DiversityMode
  /** Resolve at once and reach the relays in the background (default: wait for one). */
  noWait?: boolean
  /** Peer options beyond these (tests and benches). */
  peer?: Partial<NodePeerOptions>
}

/** One task's inputs: keyed by input name, each a nested array, { dims, data } (data may be a typed array), or a JSON text of that object. */
export type TaskInputs = Record<string, unknown> | string

export interface RunOptions {
  /** Distinct workers whose results must agree, 1–3 (default 1). */
  replicas?: number
  /** Fewer replicas for workers with a good record (default false). */
  adaptive?: boolean
  /** Relative tolerance for outputs to agree (default 1e-4). */
  tolerance?: number
  /** Outputs agree when this output's argmax matches (classifiers) instead of within the tolerance. */
  argmax?: string
  spotCheck?: number
  diversity?: DiversityMode
  /** Stop waiting for a first worker after this long (default 30 s): 'no-workers'. */
  waitForWorkersMs?: number
  /**
   * Give up once the job has been unable to progress this long (JobProgress.blocked: too few
   * different workers, none able to run the model, all paused, no relay): RequesterError
   * 'stalled' with the reason. Default: wait (a job short of different workers still ends after
   * 90 s of nothing to do, its tasks failed as unverifiable).
   */
  giveUpAfterMs?: number
  signal?: AbortSignal
}

export interface MapProgress {
  /** Tasks decided (or failed) so far, over every window. */
  done: number
  failed: number
  /** Inputs taken from the iterable so far. */
  submitted: number
  inFlight: number
  tasksPerSec: number
}

export interface MapOptions extends RunOptions {
  /** Inputs per job (default 10,000; a job also closes at 256 MiB of inputs): the iterable is read a window at a time. */
  window?: number
  /** Called as tasks are decided, at most every 100 ms, and once at the end. */
  onProgress?: (p: MapProgress) => void
}

export interface SubmitOptions extends Omit<RunOptions, 'signal'> {
  /** Shown in the job list (default: the model's name). */
  label?: string
}

/** A built-in dataset instead of inputs: `submit('digits', { dataset: 'mnist-test', limit: 1000 })`. */
export interface DatasetInputs {
  dataset: string
  limit?: number
}

export interface WorkerInfo {
  peerId: string
  kind: string
  backend: string
  threads: number
  /** Tasks it takes at once: `slots - queueDepth` running, the rest queued so none waits for a round trip. */
  slots: number
  /** How many of `slots` are queued places (a worker on quick tasks queues a batch's worth). */
  queueDepth: number
  freeSlots: number
  paused: boolean
  /** sha256 of every model it holds. */
  models: string[]
  /** This requester has a direct connection to it. */
  connected: boolean
}

/** Verification for a resumed run, instead of the settings the job was started with. */
export interface ResumeOptions {
  spotCheck?: number
  diversity?: DiversityMode
  /** As RunOptions.giveUpAfterMs: the run stops (resumable) with Job.stalled set. */
  giveUpAfterMs?: number
}

/** What this requester has seen of a worker: results that agreed and that were outvoted, and the score from them. */
export interface WorkerReputation {
  score: number
  agreed: number
  disagreed: number
}

export interface OcrOptions {
  replicas?: number
  spotCheck?: number
  diversity?: DiversityMode
  waitForWorkersMs?: number
  /** As RunOptions.giveUpAfterMs: RequesterError 'stalled' once a phase could not progress this long. */
  giveUpAfterMs?: number
  onProgress?: (p: OcrBatchProgress) => void
  /** Stops the OCR: RequesterError 'cancelled'. */
  signal?: AbortSignal
}

/** A PNG file path, PNG bytes, or a decoded RGBA image. */
export type ImageInput = string | Uint8Array | RgbaImage

const DEFAULT_WINDOW = 10_000
const MAX_WINDOW_BYTES = 256 * 1024 * 1024
const PROGRESS_EVERY_MS = 100

/** Connects to the network as a requester; RequesterError 'bad-request' or 'relay-unreachable'. */
export async function connect (options: ConnectOptions): Promise<Requester> {
  let relays: string[]
  try {
    relays = relayList(typeof options.relays === 'string' ? [options.relays] : [...options.relays], '')
  } catch (err) {
    throw new RequesterError('bad-request', (err as Error).message)
  }
  if (relays.length === 0) throw new RequesterError('bad-request', 'connect: give at least one relay multiaddr')
  const defaults = checkSettings({ spotCheck: options.spotCheck ?? DEFAULT_SPOT_CHECK, diversity: options.diversity ?? 'standard' })
  const dataDir = options.dataDir === undefined ? '.data/requester' : options.dataDir
  const privateKey = typeof options.key === 'object'
    ? options.key
    : dataDir == null && options.key == null ? await generateKeyPair('Ed25519') : await loadOrCreateKey(options.key ?? join(dataDir!, 'requester.key'))
  const jobsDir = options.jobsDir ?? (dataDir == null ? undefined : join(dataDir, 'jobs'))
  const store: JobStore = jobsDir == null ? new MemoryJobStore() : new FileJobStore(jobsDir)
  const requests: JobRequests = jobsDir == null ? new MemoryJobRequests() : new FileJobRequests(jobsDir)
  let peer: NodePeer
  try {
    peer = await startNodePeer({
      modelStore: dataDir == null ? new MemoryModelStore() : new FileModelStore(join(dataDir, 'models')),
      ...options.peer,
      relays,
      work: false,
      privateKey,
      noWait: options.noWait
    })
  } catch (err) {
    throw new RequesterError('relay-unreachable', `cannot reach the relay ${relays.join(', ')}: ${(err as Error).message.split('\n')[0]!}`)
  }
  return new Requester(peer, store, requests, new Reputation(await store.getReputation()), defaults)
}

function checkSettings (s: { spotCheck: number, diversity: string }): { spotCheck: number, diversity: DiversityMode } {
  if (!(s.spotCheck >= 0 && s.spotCheck <= 1)) throw new RequesterError('bad-request', `spotCheck must be a share between 0 and 1, got ${s.spotCheck}`)
  if (!isDiversityMode(s.diversity)) throw new RequesterError('bad-request', `diversity must be standard, strict or lan, got ${s.diversity}`)
  return { spotCheck: s.spotCheck, diversity: s.diversity }
}

function checkRunOptions (o: MapOptions): void {
  if (o.replicas !== undefined && ![1, 2, 3].includes(o.replicas)) throw new RequesterError('bad-request', `replicas must be 1, 2 or 3, got ${o.replicas}`)
  if (o.tolerance !== undefined && !(o.tolerance >= 0 && Number.isFinite(o.tolerance))) throw new RequesterError('bad-request', `tolerance must be a number ≥ 0, got ${o.tolerance}`)
  if (o.window !== undefined && !(Number.isSafeInteger(o.window) && o.window > 0)) throw new RequesterError('bad-request', 'window must be a positive integer')
  checkGiveUp(o.giveUpAfterMs)
}

function checkGiveUp (ms: number | undefined): void {
  if (ms !== undefined && !(ms >= 0 && Number.isFinite(ms))) throw new RequesterError('bad-request', `giveUpAfterMs must be a number of ms ≥ 0, got ${ms}`)
}

/** One task's inputs as wire tensors, checked against the model; RequesterError 'bad-input' naming the task. */
export function taskInputs (model: ModelHandle, inputs: TaskInputs, index?: number): WireTensor[] {
  try {
    return inputsFromJson(model.inputs, inputs)
  } catch (err) {
    throw new RequesterError('bad-input', `${index === undefined ? '' : `input ${index}: `}${(err as Error).message}`)
  }
}

async function * asyncItems<T> (items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  yield * items
}

/** Events: 'worker-joined' and 'worker-left' (CustomEvent<{ peerId: string }>). */
export class Requester extends EventTarget {
  /** This requester's peer id (receipts name it). */
  readonly peerId: string
  /** The underlying peer, for what the library does not wrap. */
  readonly peer: NodePeer
  readonly store: JobStore
  private readonly requests: JobRequests
  private readonly registry: ModelRegistry
  private readonly reputation: Reputation
  private readonly defaults: { spotCheck: number, diversity: DiversityMode }
  private readonly inference: RequesterInference
  private readonly live = new Map<string, Job>()
  /** Resumes under way (their stored state is being read): a second call waits for the first. */
  private readonly resuming = new Map<string, Promise<Job>>()
  private readonly workersSeen = new Set<string>()
  private readonly detach: () => void
  private dict?: string[]
  private closed = false
  /** Why this requester cannot reach the network now: no relay holds its reservation. */
  private readonly connectivity = (): string | undefined => this.peer.relays.ready.length === 0 ? RELAY_UNREACHABLE : undefined

  constructor (peer: NodePeer, store: JobStore, requests: JobRequests, reputation: Reputation, defaults: { spotCheck: number, diversity: DiversityMode }) {
    super()
    this.peer = peer
    this.peerId = peer.node.peerId.toString()
    this.store = store
    this.requests = requests
    this.reputation = reputation
    this.defaults = defaults
    this.registry = new ModelRegistry(peer.models)
    this.inference = requesterInference(peer)
    const table = peer.discovery.table
    const onAdvert = (e: Event): void => {
      const { peerId, advert } = (e as CustomEvent<AdvertEvent>).detail
      if (!advert.worker || this.workersSeen.has(peerId)) return
      this.workersSeen.add(peerId)
      this.dispatchEvent(new CustomEvent('worker-joined', { detail: { peerId } }))
    }
    const onGone = (e: Event): void => {
      const { peerId } = (e as CustomEvent<GoneEvent>).detail
      if (this.workersSeen.delete(peerId)) this.dispatchEvent(new CustomEvent('worker-left', { detail: { peerId } }))
    }
    for (const e of table.values()) if (e.advert.worker) this.workersSeen.add(e.peerId)
    table.addEventListener('advert', onAdvert)
    table.addEventListener('gone', onGone)
    this.detach = () => {
      table.removeEventListener('advert', onAdvert)
      table.removeEventListener('gone', onGone)
    }
  }

  /** Workers whose adverts this requester holds (from every relay it hears). */
  workers (): WorkerInfo[] {
    return [...this.peer.discovery.table.values()].filter(e => e.advert.worker).map(({ peerId, advert: a }) => ({
      peerId,
      kind: a.kind,
      backend: a.backend,
      threads: a.threads,
      slots: a.slots,
      queueDepth: queueDepthOf(a),
      freeSlots: a.freeSlots,
      paused: a.paused,
      models: [...a.models],
      connected: this.peer.tasks.hasDirect(peerIdFromString(peerId))
    }))
  }

  /** Resolves once `min` workers (not paused) advertise; RequesterError 'no-workers' after `timeoutMs`, 'cancelled' on abort. */
  async waitForWorkers (min = 1, options: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<void> {
    const count = (): number => this.workers().filter(w => !w.paused).length
    if (count() >= min) return
    const table = this.peer.discovery.table
    const timeoutMs = options.timeoutMs ?? 30_000
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer)
        table.removeEventListener('advert', check)
        options.signal?.removeEventListener('abort', onAbort)
        if (err == null) resolve()
        else reject(err)
      }
      const check = (): void => { if (count() >= min) done() }
      const onAbort = (): void => { done(new RequesterError('cancelled', 'cancelled while waiting for workers')) }
      const timer = setTimeout(() => { done(new RequesterError('no-workers', `only ${count()} worker(s) joined within ${Math.round(timeoutMs / 1000)} s (wanted ${min})`)) }, timeoutMs)
      table.addEventListener('advert', check)
      options.signal?.addEventListener('abort', onAbort)
      if (options.signal?.aborted === true) onAbort()
    })
  }

  /** Resolves a model (a built-in name, a path, bytes or a known sha256), adding it so workers can fetch it. */
  async model (model: ModelInput): Promise<ModelHandle> {
    return await this.registry.resolve(model)
  }

  /** Built-in models and every model added. */
  async models (): Promise<ModelHandle[]> {
    return await this.registry.list()
  }

  /** Runs one task and waits for its verified result; RequesterError 'bad-input', 'no-workers', 'task-failed', 'cancelled'. */
  async run (model: ModelInput, inputs: TaskInputs, options: RunOptions = {}): Promise<TaskOutput> {
    checkRunOptions(options)
    const handle = await this.registry.resolve(model)
    const tasks = [taskInputs(handle, inputs)]
    await this.waitForWorkers(1, { timeoutMs: options.waitForWorkersMs, signal: options.signal })
    const job = await this.start(handle, tasks.length, { task: (i) => ({ inputs: tasks[i]!, outputNames: [] }) }, this.request(handle, options, { kind: 'inputs' }), { label: 'run', store: new MemoryJobStore() })
    if (options.giveUpAfterMs != null) job.giveUpAfter(options.giveUpAfterMs)
    // The whole job, spot check included: a result returned here is final.
    const onAbort = (): void => { job.stop().catch(() => {}) }
    options.signal?.addEventListener('abort', onAbort)
    if (options.signal?.aborted === true) onAbort()
    try {
      await job.done
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
    }
    if (options.signal?.aborted === true) throw new RequesterError('cancelled', 'cancelled')
    if (job.stalled != null) throw job.stalled
    for await (const out of job.results()) {
      if (out.error != null) throw new RequesterError('task-failed', out.error)
      return out
    }
    throw new RequesterError('task-failed', job.meta.error ?? 'no result')
  }

  /**
   * Runs `model` over every input of an (async) iterable and yields the outcomes in input order as
   * they are decided ({ index, outputs } or { index, error }). The iterable is read a window at a
   * time (one job per window). A bad input throws RequesterError 'bad-input' naming its index,
   * after the outcomes before its window; an abort throws 'cancelled'.
   */
  async * map (model: ModelInput, inputs: Iterable<TaskInputs> | AsyncIterable<TaskInputs>, options: MapOptions = {}): AsyncGenerator<TaskOutput> {
    checkRunOptions(options)
    const handle = await this.registry.resolve(model)
    const windowSize = options.window ?? DEFAULT_WINDOW
    const items = asyncItems(inputs)
    const request = this.request(handle, options, { kind: 'inputs' })
    let base = 0
    let decided = 0
    let failed = 0
    let lastReport = 0
    try {
      for (let exhausted = false; !exhausted;) {
        const tasks: WireTensor[][] = []
        let bytes = 0
        while (tasks.length < windowSize && bytes < MAX_WINDOW_BYTES) {
          if (options.signal?.aborted === true) throw new RequesterError('cancelled', 'cancelled')
          const next = await items.next()
          if (next.done === true) {
            exhausted = true
            break
          }
          const task = taskInputs(handle, next.value, base + tasks.length)
          bytes += task.reduce((n, t) => n + t.data.byteLength, 0)
          tasks.push(task)
        }
        if (tasks.length === 0) break
        await this.waitForWorkers(1, { timeoutMs: options.waitForWorkersMs, signal: options.signal })
        const job = await this.start(handle, tasks.length, { task: (i) => ({ inputs: tasks[i]!, outputNames: [] }) }, request, { label: 'map', store: new MemoryJobStore(), flushMs: 20 })
        if (options.giveUpAfterMs != null) job.giveUpAfter(options.giveUpAfterMs)
        // Called here, never from an event listener: what the callback throws ends this generator.
        const report = (): void => {
          const now = Date.now()
          if (options.onProgress == null || now - lastReport < PROGRESS_EVERY_MS) return
          lastReport = now
          const p: JobProgress = job.progress
          options.onProgress({ done: decided, failed, submitted: base + tasks.length, inFlight: p.inFlight, tasksPerSec: p.tasksPerSec })
        }
        try {
          for await (const out of job.results({ signal: options.signal })) {
            decided++
            if (out.error != null) failed++
            report()
            yield { ...out, index: base + out.index }
          }
        } finally {
          if (!job.finished) await job.stop()
        }
        base += tasks.length
      }
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw new RequesterError('cancelled', 'cancelled')
      throw err
    } finally {
      // The caller's iterable is closed too (its finally blocks run, its files close).
      await items.return(undefined)
      options.onProgress?.({ done: decided, failed, submitted: base, inFlight: 0, tasksPerSec: 0 })
    }
  }

  /**
   * Starts a batch job kept in this requester's job store: every input is checked first, then
   * saved with the job, so `resume(job.id)` continues it after a restart.
   */
  async submit (model: ModelInput, inputs: Iterable<TaskInputs> | AsyncIterable<TaskInputs> | DatasetInputs, options: SubmitOptions = {}): Promise<Job> {
    checkRunOptions(options)
    const handle = await this.registry.resolve(model)
    if (isDatasetInputs(inputs)) {
      if (handle.builtin !== 'digits') throw new RequesterError('bad-request', `dataset ${inputs.dataset} is for the digits model`)
      const dataset = await loadDigitDataset(inputs.dataset).catch((err: Error) => { throw new RequesterError('bad-request', err.message) })
      const count = Math.min(dataset.count, inputs.limit ?? dataset.count)
      if (!(count > 0)) throw new RequesterError('bad-request', 'limit must be at least 1')
      const request = this.request(handle, { argmax: DIGITS_OUTPUT_PROBS, ...options }, { kind: 'dataset', dataset: inputs.dataset })
      return giveUp(await this.start(handle, count, digitJobSource(dataset), request, { label: options.label ?? inputs.dataset, store: this.store, persist: [] }), options.giveUpAfterMs)
    }
    const tasks: WireTensor[][] = []
    let i = 0
    for await (const item of asyncItems(inputs)) tasks.push(taskInputs(handle, item, i++))
    if (tasks.length === 0) throw new RequesterError('bad-request', 'no inputs')
    const request = this.request(handle, options, { kind: 'inputs' })
    return giveUp(await this.start(handle, tasks.length, { task: (i) => ({ inputs: tasks[i]!, outputNames: [] }) }, request, { label: options.label ?? handle.name, store: this.store, persist: tasks }), options.giveUpAfterMs)
  }

  /** The job with this id: the running one, or as kept in the store; RequesterError 'unknown-job'. */
  async job (jobId: string): Promise<Job> {
    const live = this.live.get(jobId)
    if (live != null) return live
    const meta = isValidJobId(jobId) ? await this.store.getJob(jobId) : undefined
    if (meta == null) throw new RequesterError('unknown-job', `no job ${jobId}`)
    return new Job(this.store, meta)
  }

  /** Jobs in the store, newest first. */
  async jobs (): Promise<JobMeta[]> {
    return await this.store.listJobs()
  }

  /** Continues a stored job that did not finish (a finished one is returned as it is); calls at once share one run. */
  async resume (jobId: string, options: ResumeOptions = {}): Promise<Job> {
    const live = this.live.get(jobId)
    if (live != null) return live
    let resuming = this.resuming.get(jobId)
    if (resuming == null) {
      resuming = this.startResumed(jobId, options).finally(() => { this.resuming.delete(jobId) })
      this.resuming.set(jobId, resuming)
    }
    return await resuming
  }

  private async startResumed (jobId: string, options: ResumeOptions): Promise<Job> {
    if (this.closed) throw new RequesterError('cancelled', 'this requester is closed')
    const job = await this.job(jobId)
    if (isTerminalState(job.meta.state)) return job
    const request = await this.requests.get(jobId) ?? datasetRequest(job.meta, this.defaults)
    if (request == null) throw new RequesterError('unknown-job', `job ${jobId} has no saved request to resume from`)
    const handle = await this.registry.bySha(request.model.sha256)
    if (handle == null) throw new RequesterError('unknown-model', `job ${jobId}'s model ${request.model.name} (${request.model.sha256}) is no longer here: add it again, then resume`)
    let source: JobSource
    if (request.source.kind === 'dataset') {
      source = digitJobSource(await loadDigitDataset(request.source.dataset))
    } else {
      const tasks = await this.requests.inputs(jobId)
      if (tasks.length !== job.meta.taskCount) throw new RequesterError('unknown-job', `job ${jobId}'s saved inputs have ${tasks.length} tasks, its meta ${job.meta.taskCount}`)
      source = { task: (i) => ({ inputs: tasks[i]!, outputNames: [] }) }
    }
    const settings = checkSettings({ spotCheck: options.spotCheck ?? request.spotCheck, diversity: options.diversity ?? request.diversity })
    return giveUp(this.runJob(job.meta, handle, source, { ...request, ...settings }, this.store), options.giveUpAfterMs)
  }

  /**
   * A job of this requester's store as an export for `npm run verify`: a header, each accepted
   * result with its signed receipt, and the audit log (README, "Verifying results"); while the job
   * runs, what is decided so far. RequesterError 'unknown-job'.
   */
  async exportLines (jobId: string): Promise<string[]> {
    const job = await this.job(jobId)
    return await jobExportLines(this.store, job.meta, this.peerId)
  }

  /** A worker's standing with this requester (kept in the job store across restarts). */
  reputationOf (peerId: string): WorkerReputation {
    const { agreed, disagreed } = this.reputation.record(peerId)
    return { score: this.reputation.score(peerId), agreed, disagreed }
  }

  /** Reads text from page images (PNG) with the network's workers: detection, then recognition of every line. */
  async ocr (images: readonly ImageInput[], options: OcrOptions = {}): Promise<OcrPageResult[]> {
    if (options.replicas !== undefined && ![1, 2, 3].includes(options.replicas)) throw new RequesterError('bad-request', `replicas must be 1, 2 or 3, got ${options.replicas}`)
    checkGiveUp(options.giveUpAfterMs)
    const pages = await readImages(images)
    if (pages.length === 0) throw new RequesterError('bad-request', 'no images')
    // Once per requester: it reads and hashes both models synchronously.
    if (this.dict == null) {
      ensureOcrModels()
      this.dict = parseDictionary(await readFile(MODELS_DIR + 'ocr-keys.txt', 'utf8'))
    }
    await this.waitForWorkers(1, { timeoutMs: options.waitForWorkersMs, signal: options.signal })
    const settings = checkSettings({ spotCheck: options.spotCheck ?? this.defaults.spotCheck, diversity: options.diversity ?? this.defaults.diversity })
    // The callback runs inside the jobs' event listeners, where a throw would be uncaught: it stops the OCR and is rethrown here.
    let thrown: { error: unknown } | undefined
    const stop = new AbortController()
    const onProgress = options.onProgress
    // A phase that cannot progress for giveUpAfterMs stops the OCR with 'stalled' (the phases' runners report blocked in their progress).
    let blocked: JobProgress['blocked']
    const ms = options.giveUpAfterMs
    const watch = ms == null
      ? undefined
      : new GiveUpWatch(ms, () => blocked, (b) => {
        thrown ??= { error: stalledError(b, ms) }
        stop.abort()
      })
    try {
      return await runOcrBatch(pages, this.dict, {
        tasks: this.peer.tasks,
        adverts: this.peer.discovery.table,
        reputation: this.reputation,
        replicas: options.replicas ?? 1,
        verify: { ...nodeVerification(this.peer, settings, this.inference.recompute), connectivity: this.connectivity },
        onProgress: onProgress == null && watch == null
          ? undefined
          : (p) => {
              if (thrown != null) return
              blocked = p.job.blocked
              watch?.poke()
              try {
                onProgress?.(p)
              } catch (error) {
                thrown = { error }
                stop.abort()
              }
            },
        signal: options.signal == null ? stop.signal : AbortSignal.any([options.signal, stop.signal])
      })
    } catch (err) {
      if (thrown != null) throw thrown.error
      if (options.signal?.aborted === true) throw new RequesterError('cancelled', 'cancelled')
      throw err
    } finally {
      watch?.dispose()
    }
  }

  /** Stops every running job (each stays resumable) and leaves the network. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.detach()
    await Promise.all([...this.live.values()].map(async job => await job.stop()))
    this.inference.stop()
    await this.peer.stop()
  }

  private request (handle: ModelHandle, options: RunOptions, source: JobRequest['source']): JobRequest {
    const settings = checkSettings({ spotCheck: options.spotCheck ?? this.defaults.spotCheck, diversity: options.diversity ?? this.defaults.diversity })
    return { model: { sha256: handle.sha256, size: handle.size, name: handle.name }, argmax: options.argmax, tolerance: options.tolerance ?? 1e-4, ...settings, source, replicas: options.replicas ?? 1, adaptive: options.adaptive ?? false }
  }

  private async start (handle: ModelHandle, count: number, source: JobSource, request: JobRequest, o: { label: string, store: JobStore, persist?: readonly WireTensor[][], flushMs?: number }): Promise<Job> {
    if (this.closed) throw new RequesterError('cancelled', 'this requester is closed')
    const now = Date.now()
    const meta: JobMeta = {
      jobId: randomUUID(),
      modelId: handle.builtin ?? handle.name,
      model: request.model,
      datasetId: o.label,
      taskCount: count,
      replicas: request.replicas,
      adaptive: request.adaptive,
      state: 'queued',
      createdAt: now,
      updatedAt: now
    }
    // The request before the meta: a job listed in the store can always be resumed.
    if (o.persist != null) await this.requests.put(meta.jobId, request, o.persist)
    await o.store.putJob(meta)
    return this.runJob(meta, handle, source, request, o.store, o.flushMs)
  }

  private runJob (meta: JobMeta, handle: ModelHandle, source: JobSource, request: JobRequest, store: JobStore, flushMs?: number): Job {
    const runner = new JobRunner({
      meta,
      source,
      tasks: this.peer.tasks,
      adverts: this.peer.discovery.table,
      store,
      compare: request.argmax != null ? argmaxComparator(request.argmax) : relativeComparator(request.tolerance),
      reputation: this.reputation,
      requester: this.peerId,
      declared: handle,
      flushMs,
      connectivity: this.connectivity,
      ...nodeVerification(this.peer, request, this.inference.recompute)
    })
    const job = new Job(store, meta, runner, runner.run())
    this.live.set(job.id, job)
    job.done.finally(() => { this.live.delete(job.id) }).catch(() => {})
    return job
  }
}

/**
 * The request of a digits job over a built-in dataset that has none saved (started by `npm run
 * submit` before requests were saved): everything it needs is in its meta.
 */
function datasetRequest (meta: JobMeta, defaults: { spotCheck: number, diversity: DiversityMode }): JobRequest | undefined {
  if (meta.modelId !== 'digits' || !DATASETS.some(d => d.id === meta.datasetId)) return undefined
  return { model: meta.model, argmax: DIGITS_OUTPUT_PROBS, tolerance: 1e-4, ...defaults, replicas: meta.replicas, adaptive: meta.adaptive, source: { kind: 'dataset', dataset: meta.datasetId } }
}

/** Arms the job's give-up wait when one is asked for. */
function giveUp (job: Job, ms: number | undefined): Job {
  if (ms != null) job.giveUpAfter(ms)
  return job
}

function isDatasetInputs (v: unknown): v is DatasetInputs {
  return typeof v === 'object' && v !== null && typeof (v as DatasetInputs).dataset === 'string' && !(Symbol.iterator in v) && !(Symbol.asyncIterator in v)
}

/** A page read by ocr() as plain JSON (the HTTP API's and the MCP server's shape): box corners as [x, y] pairs, rounded. */
export interface OcrPageJson {
  text: string
  lines: Array<{ text: string, score: number, box: Array<[number, number]> }>
  error?: string
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits

export function ocrPageJson (page: OcrPageResult): OcrPageJson {
  return {
    text: page.text,
    lines: page.lines.map(l => ({ text: l.text, score: round(l.score, 4), box: l.box.map(p => [round(p.x, 1), round(p.y, 1)]) })),
    ...(page.error != null ? { error: page.error } : {})
  }
}

/** An image's PNG bytes (read from its file), or the image itself when it is already decoded; RequesterError 'bad-image'. */
async function imageBytes (image: ImageInput, i: number): Promise<{ name: string, bytes: Uint8Array } | RgbaImage> {
  if (image instanceof Uint8Array) return { name: `image ${i}`, bytes: image }
  if (typeof image !== 'string') return image
  try {
    return { name: image, bytes: new Uint8Array(await readFile(image)) }
  } catch (err) {
    throw new RequesterError('bad-image', `cannot read ${image}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/**
 * Pages as RGBA: PNGs are sized from their headers first (checkPngPages: one small file must not
 * decode to gigabytes), then decoded; RequesterError 'bad-image' or 'too-large' naming the page.
 */
export async function readImages (images: readonly ImageInput[]): Promise<RgbaImage[]> {
  const read = await Promise.all(images.map(async (image, i) => await imageBytes(image, i)))
  checkPngPages(read.filter((r): r is { name: string, bytes: Uint8Array } => 'bytes' in r))
  return read.map(r => {
    if (!('bytes' in r)) return r
    try {
      return decodePng(r.bytes)
    } catch (err) {
      throw new RequesterError('bad-image', `${r.name}: not a readable PNG (${(err as Error).message})`)
    }
  })
}

export { RequesterError, toRequesterError }

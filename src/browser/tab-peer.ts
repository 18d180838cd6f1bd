/**
 * Everything a tab does as a peer, without UI: identity, the compute peer (relays, discovery, task
 * and model protocols, worker half in Web Workers) and what the page shows of the network. The UI
 * reads its snapshot and calls its intents.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { createComputePeer } from '../net/compute-peer.js'
import { webCryptoReceiptKeys } from '../net/webcrypto-receipt-keys.js'
import { connectionKind, directWebRTC } from '../net/connection-kind.js'
import { pingConnection } from '../net/rtt.js'
import { TaskError, toTaskError } from '../core/errors.js'
import { BUILTIN_MODELS, builtinBySha, builtinModel, modelRef, sampleInputs } from '../models/catalog.js'
import { startInferenceWorker } from '../runtime/worker-executor.js'
import { backendLabel, findAdapter } from '../runtime/backends.js'
import { DEFAULT_MAX_MODEL_BYTES } from '../core/model-transfer/codec.js'
import { canRun, hasModel } from '../core/discovery/advert.js'
import { LOCAL_PEER } from '../net/job-runner.js'
import { endpointLookup } from '../net/peer-endpoint.js'
import type { JobVerification } from '../net/job-runner.js'
import type { DiversityMode } from '../core/diversity.js'
import { compareWorkers } from '../core/scheduler.js'
import { loadTabIdentity } from './identity.js'
import { keepRelayErrors, relayUnreachableWords } from './volunteer-words.js'
import { BuiltinModelCache, tabModelStore } from './cache-model-store.js'
import { rememberChoice, rememberedChoices } from './backend-memory.js'
import type { TabConfig } from './config.js'
import type { ComputePeer } from '../net/compute-peer.js'
import type { Peer } from '../net/peer.js'
import type { ConnectionKind } from '../net/connection-kind.js'
import type { RelayState, RelayView } from '../net/relays.js'
import type { TaskRequest, TaskResult, ModelRef } from '../core/task-types.js'
import type { WorkEvent, WorkQueue } from '../core/work-queue.js'
import type { Advert } from '../core/discovery/advert.js'
import type { AdvertTable } from '../core/discovery/table.js'
import type { InferenceWorker } from '../runtime/worker-executor.js'
import type { BackendCandidate, BackendPicker } from '../core/backend-picker.js'
import type { ModelEvent, ModelProvider } from '../core/model-store.js'
import type { BackendSpec } from '../runtime/backends.js'
import type { ModelFetcher } from '../runtime/ort-runner.js'
import type { TaskProtocol } from '../net/task-service.js'
import type { WorkerAdvertiser } from '../net/worker-advertiser.js'

export interface PeerView {
  peerId: string
  connection: ConnectionKind | 'not connected'
  rttMs?: number
  /** Its latest advert from discovery: kind, backend, slots, speed… */
  advert?: Advert
}

export interface TaskRun {
  result: TaskResult
  /** Peer id that ran it ('self' for this tab). */
  worker: string
  roundTripMs: number
  networkMs: number
}

/** Where a task should run. */
export type Target = { kind: 'any' } | { kind: 'self' } | { kind: 'peer', peerId: string }

/** How often the page refreshes round-trip times of its direct connections (display only). */
const RTT_INTERVAL_MS = 5000
/** Peer × model speed measurements kept for choosing "any peer". */
const MAX_MEASURED = 1024

export class TabPeer extends EventTarget {
  readonly config: TabConfig
  peer!: ComputePeer
  node!: Peer
  tasks!: TaskProtocol
  queue!: WorkQueue
  /** Every peer this tab heard advertise, newest advert each. */
  adverts!: AdvertTable
  advertiser!: WorkerAdvertiser
  /** The first backend's worker (started with the tab; the others start on a model's first task). */
  worker!: InferenceWorker
  /** Picks the fastest backend per model among this tab's candidates. */
  picker!: BackendPicker
  /** Why WebGPU is not among the candidates, if it is not. */
  webgpuSkipped?: string
  /** The backends this tab measures per model (each with `config.slots` inference workers). */
  specs: BackendSpec[] = []
  /** Built-in models, this tab's model cache (Cache Storage) and transfers from peers. */
  models!: ModelProvider
  slot = 0
  /** Page open (navigation start) → first ready to work, in ms. */
  readyMs?: number
  /** Why no relay can be reached right now, if none can. */
  relayError?: string
  private readonly rtt = new Map<string, number>()
  /** Connections with an RTT probe in flight (one at a time each). */
  private readonly probing = new Set<string>()
  private rttTimer?: ReturnType<typeof setInterval>
  private readonly stopWorkers: Array<() => void> = []
  private nextPeer = 0
  /** Round trips this tab measured per peer and model (ms, exponential average): never a worker's own claim. */
  private readonly measured = new Map<string, number>()
  /** Each relay's last dial error while it is down (relay peer id → error). */
  private readonly relayErrors = new Map<string, string>()

  constructor (config: TabConfig) {
    super()
    this.config = config
  }

  /** The backends this tab measures per model: WASM at 1 and N threads, WebGPU on a real adapter. */
  private async backendSpecs (): Promise<BackendSpec[]> {
    const gpu = this.config.backend !== 'wasm' ? await findAdapter(this.config.allowFallbackAdapter) : { reason: 'WASM asked for (?backend=wasm)' }
    this.webgpuSkipped = gpu.adapter == null ? gpu.reason : undefined
    if (this.config.backend === 'webgpu') {
      if (gpu.adapter == null) throw new Error(`WebGPU requested but unavailable: ${gpu.reason}`)
      return [{ backend: 'webgpu', threads: 1, adapter: gpu.name }]
    }
    const threads = self.crossOriginIsolated ? Math.max(1, this.config.threads) : 1
    const specs: BackendSpec[] = [{ backend: 'wasm', threads }]
    if (threads > 1) specs.push({ backend: 'wasm', threads: 1 })
    if (gpu.adapter != null) specs.push({ backend: 'webgpu', threads: 1, adapter: gpu.name })
    return specs
  }

  /**
   * Joins the network; resolves when this tab is ready to work (worker loaded, a relay holding our
   * reservation). `paused`: told this tab's identity slot, whether it starts paused (a volunteer's
   * pause kept with the slot from before a reload holds from the first advert).
   */
  async start (onEvent: (e: WorkEvent) => void, options: { paused?: (slot: number) => boolean } = {}): Promise<void> {
    const [specs, identity] = await Promise.all([this.backendSpecs(), loadTabIdentity()])
    const paused = options.paused?.(identity.slot) ?? false
    this.specs = specs
    this.slot = identity.slot
    const slots = Math.max(1, this.config.slots)
    this.peer = await createComputePeer({
      kind: 'tab',
      privateKey: identity.privateKey,
      relays: this.config.relays,
      iceServers: this.config.iceServers,
      allowPrivateAddresses: this.config.allowPrivateAddresses,
      modelStore: tabModelStore(),
      builtin: fetchBuiltin,
      builtinVerified: true,
      maxModelBytes: DEFAULT_MAX_MODEL_BYTES,
      receiptKeys: webCryptoReceiptKeys,
      onModelEvent: (e) => { this.dispatchEvent(new CustomEvent<ModelEvent>('model', { detail: e })) },
      onWork: onEvent,
      worker: async (models) => {
        // A task from this tab itself ('self') finds its model locally: there is no peer to ask.
        const fetchModel: ModelFetcher = async (ref, from) => await models.get(ref, from === LOCAL_PEER ? undefined : from)
        const start = async (spec: BackendSpec): Promise<InferenceWorker> =>
          await startInferenceWorker({ backend: spec.backend, threads: spec.threads, allowFallbackAdapter: this.config.allowFallbackAdapter }, fetchModel)
        this.worker = await start(specs[0])
        // Each backend gets one inference worker per slot: a worker runs one task at a time.
        const candidates = specs.map((spec, i) => workerPool(i === 0 ? this.worker.info.backend : backendLabel(spec), slots, async () => await start(spec), i === 0 ? this.worker : undefined, this.stopWorkers))
        const names = candidates.map(c => c.name)
        return {
          candidates,
          threads: this.worker.info.threads,
          // Models measured before a reload keep their backend: no second measurement.
          restore: rememberedChoices(names),
          onChoice: (sha, choice, picker) => {
            rememberChoice(picker.names, sha, choice)
            this.changed()
          },
          queue: { slots, maxQueued: 64, ...(this.config.batch != null ? { batch: { maxTasks: this.config.batch } } : {}) },
          builtins: BUILTIN_MODELS.map(m => m.sha256)
        }
      }
    })
    const { peer } = this
    this.node = peer.node
    this.tasks = peer.node.services.tasks
    this.adverts = peer.node.services.discovery.table
    this.models = peer.models
    this.queue = peer.queue!
    this.picker = peer.picker!
    this.advertiser = peer.advertiser!
    if (paused) this.advertiser.setPaused(true)
    for (const evt of ['connection:open', 'connection:close'] as const) {
      this.node.addEventListener(evt, () => { this.changed() })
    }
    this.node.addEventListener('connection:open', (evt) => {
      if (connectionKind(evt.detail) === 'direct WebRTC') void this.measureRtt()
    })
    this.adverts.addEventListener('advert', () => { this.changed() })
    this.adverts.addEventListener('gone', () => { this.changed() })
    peer.relays.addEventListener('change', () => {
      if (peer.relays.ready.length > 0) {
        this.relayError = undefined
        this.readyMs ??= performance.now()
      }
      this.changed()
    })
    // The digits model is tiny: load it now so the first digit runs at once. OCR models (15 MB)
    // load on their first task rather than in every tab that opens.
    const digits = builtinModel('digits')
    void this.worker.preload(modelRef(digits), sampleInputs(digits)).then(ok => { if (ok) this.advertiser.markCached(digits.sha256) }, () => {})
    this.rttTimer = setInterval(() => { void this.measureRtt() }, RTT_INTERVAL_MS)
    // Closing or reloading the tab: say goodbye (a leaving advert, connections closed) while the
    // page still runs, so others stop counting on it at once instead of after a timeout.
    addEventListener('pagehide', () => { this.stop().catch(() => {}) }, { once: true })
    // Restored from the back/forward cache after that goodbye: start afresh.
    addEventListener('pageshow', (evt) => { if (evt.persisted) location.reload() })
    try {
      await peer.join()
    } catch (err) {
      // The relay set keeps retrying; the page says so meanwhile.
      const why = (err as Error).message
      this.relayError = `cannot reach ${this.config.relays.length > 1 ? 'any relay' : `the relay at ${this.config.relays[0]}`} (${why == null || why === '' || why === 'undefined' ? 'no answer' : why}); retrying. Check that the relay runs and that the address is right`
      this.changed()
    }
  }

  /** The first join has ended (ready, or failed and retrying): from then on "no relay ready" means unreachable, not "still starting". */
  get relayTried (): boolean {
    return this.readyMs != null || this.relayError != null
  }

  /**
   * "relay unreachable, retrying: <addr> (<why>)" while no relay holds this tab's reservation after
   * trying; undefined otherwise. A relay being redialled shows as connecting between failures: only
   * 'ready' ends the outage, and each relay's last error is kept meanwhile, so the words (a blocked
   * job's reason) stay the same through the redials.
   */
  relayUnreachable (): string | undefined {
    const relays = this.relays
    if (relays.length === 0 || !this.relayTried || relays.some(r => r.state === 'ready')) return undefined
    return relayUnreachableWords(relays)
  }

  get peerId (): string {
    return this.node?.peerId.toString() ?? ''
  }

  /** The best state among our relays: ready if any holds our reservation. */
  get relayStatus (): RelayState {
    const states = this.relays.map(r => r.state)
    for (const s of ['ready', 'reserving', 'connecting'] as const) if (states.includes(s)) return s
    return 'disconnected'
  }

  /** Every relay this tab knows and its state; one being redialled keeps its last error (see keepRelayErrors). */
  get relays (): RelayView[] {
    return keepRelayErrors(this.peer?.relays.views ?? [], this.relayErrors)
  }

  /** Every peer we know of (advertised or connected), with how we reach it. */
  peers (): PeerView[] {
    if (this.node == null) return []
    const ids = new Set([...this.adverts.values()].filter(e => e.advert.kind !== 'relay').map(e => e.peerId))
    for (const c of this.node.getConnections()) ids.add(c.remotePeer.toString())
    for (const r of this.relays) ids.delete(r.peerId)
    for (const e of this.adverts.values()) if (e.advert.kind === 'relay') ids.delete(e.peerId)
    ids.delete(this.peerId)
    return [...ids].sort().map(peerId => {
      const conns = this.node.getConnections(peerIdFromString(peerId))
      const direct = directWebRTC(conns)
      return {
        peerId,
        connection: direct != null ? 'direct WebRTC' : conns.length > 0 ? connectionKind(conns[0]) : 'not connected',
        rttMs: direct != null ? this.rtt.get(peerId) : undefined,
        advert: this.adverts.get(peerId)?.advert
      }
    })
  }

  /**
   * Runs one task where `target` says; 'any' tries workers in the scheduler's order (those that
   * have the model first, then the fastest), dialling them as needed and skipping busy or gone ones.
   */
  async run (request: TaskRequest, target: Target): Promise<TaskRun> {
    if (target.kind === 'self') {
      const t0 = performance.now()
      const result = await this.queue.submit(request, 'self')
      return { result, worker: 'self', roundTripMs: performance.now() - t0, networkMs: 0 }
    }
    if (target.kind === 'peer') {
      try {
        return await this.runOn(target.peerId, request)
      } catch (err) {
        throw this.explainUnreachable(toTaskError(err))
      }
    }
    const sha = request.model.sha256
    const placement = (e: { peerId: string, advert: Advert }): { hasModel: boolean, msPerTask?: number } => ({ hasModel: hasModel(e.advert, sha), msPerTask: this.measured.get(`${e.peerId} ${sha}`) })
    // The scheduler's own ordering: workers that have the model first, then the fastest.
    const able = [...this.adverts.values()].filter(e => canRun(e.advert, sha, request.model.size))
      .sort((x, y) => compareWorkers(placement(x), placement(y)))
    const candidates = able.map(e => e.peerId)
    const unreachable = this.relayUnreachable()
    if (candidates.length === 0) {
      // Workers are heard through the relay: while it is down, "open another tab" would not help.
      throw new TaskError('no-peer', unreachable != null
        ? `${unreachable}; workers are found through it, so none can be reached now (this tab keeps trying)`
        : this.adverts.size === 0
          ? 'no worker has advertised yet: open the app in another tab or device'
          : 'no worker can run this model now (all paused, or none takes models this size)')
    }
    let lastError: TaskError | undefined
    // Spread single tasks over equally placed workers rather than always the first.
    const equal = candidates.filter((_, i) => compareWorkers(placement(able[i]), placement(able[0])) === 0)
    const start = this.nextPeer++ % Math.max(1, equal.length)
    const order = [...equal.slice(start), ...equal.slice(0, start), ...candidates.slice(equal.length)]
    for (const peerId of order) {
      try {
        return await this.runOn(peerId, request)
      } catch (err) {
        lastError = toTaskError(err)
        if (!['busy', 'peer-gone', 'no-peer'].includes(lastError.code)) throw lastError
      }
    }
    throw this.explainUnreachable(lastError!)
  }

  /**
   * A worker that could not be reached while no relay can be either: say the relay is the cause
   * (dials to workers not connected directly go through it), keeping the worker's own words.
   */
  private explainUnreachable (err: TaskError): TaskError {
    const unreachable = this.relayUnreachable()
    if (unreachable == null || (err.code !== 'no-peer' && err.code !== 'peer-gone')) return err
    const e = new TaskError('no-peer', `${unreachable}; workers not connected directly cannot be reached without it (${err.message})`)
    e.peer = err.peer
    return e
  }

  /** Runs on one peer (dialled if need be); a task lost with its connection is sent once more while the peer still advertises. */
  private async runOn (peerId: string, request: TaskRequest): Promise<TaskRun> {
    const id = peerIdFromString(peerId)
    let run: TaskRun
    try {
      try {
        run = { ...await this.tasks.run(id, request), worker: peerId }
      } catch (err) {
        const e = toTaskError(err)
        if (e.code !== 'peer-gone' || this.adverts.get(peerId) == null) throw e
        run = { ...await this.tasks.run(id, request), worker: peerId }
      }
    } catch (err) {
      // Which peer failed, for the error shown to the user.
      const e = toTaskError(err)
      e.peer ??= peerId
      throw e
    }
    const key = `${peerId} ${request.model.sha256}`
    const before = this.measured.get(key)
    this.measured.delete(key)
    this.measured.set(key, before === undefined ? run.roundTripMs : before + 0.2 * (run.roundTripMs - before))
    // Most recently used last: past the cap, the longest-unused measurement goes.
    if (this.measured.size > MAX_MEASURED) this.measured.delete(this.measured.keys().next().value!)
    return run
  }

  /**
   * How this tab's jobs verify results: spot checks through this tab's own work queue (one
   * onnxruntime session must not run two tasks at once; a volunteer's pause stops work for others
   * only, so the checks still run; one the queue cannot take is skipped, never counted), workers
   * told apart by their direct connections, and the tab's connectivity, so a blocked job (a batch,
   * a page of OCR) says when the relay is unreachable.
   */
  verification (spotCheck: number, diversity: DiversityMode = 'standard'): JobVerification {
    return {
      diversity,
      endpoint: endpointLookup(this.node),
      spotCheck: spotCheck > 0 ? { fraction: spotCheck, recompute: async (request) => (await this.queue.submit(request, LOCAL_PEER)).outputs } : undefined,
      connectivity: () => this.relayUnreachable()
    }
  }

  /** Volunteer pause: running tasks finish, new ones are refused (and adverts tell requesters). */
  setPaused (paused: boolean): void {
    this.advertiser.setPaused(paused)
    this.changed()
  }

  get paused (): boolean {
    return this.queue?.paused ?? false
  }

  /** Makes a model this tab's user brought (a dropped .onnx) runnable on peers: they fetch it from here. */
  async addModel (bytes: Uint8Array, name: string): Promise<ModelRef> {
    const sha256 = await this.models.add(bytes)
    this.advertiser?.publish()
    return { sha256, size: bytes.byteLength, name }
  }

  async stop (): Promise<void> {
    clearInterval(this.rttTimer)
    this.worker?.terminate()
    for (const stop of this.stopWorkers) stop()
    await this.peer?.stop()
  }

  private async measureRtt (): Promise<void> {
    if (this.node == null) return
    await Promise.all(this.node.getConnections().filter(c => c.status === 'open' && connectionKind(c) === 'direct WebRTC' && !this.probing.has(c.id)).map(async c => {
      this.probing.add(c.id)
      try {
        this.rtt.set(c.remotePeer.toString(), await pingConnection(c, 5000))
      } catch {
        // Display only: a late answer on a busy machine says nothing about the connection.
      } finally {
        this.probing.delete(c.id)
      }
    }))
    this.changed()
  }

  private changed (): void {
    this.dispatchEvent(new Event('change'))
  }
}

const builtinCache = new BuiltinModelCache({ current: BUILTIN_MODELS.map(m => m.sha256) })

/** A built-in model's verified bytes, by sha256: kept in Cache Storage once fetched from this app's server (public/models), so they run offline. */
async function fetchBuiltin (sha256: string): Promise<Uint8Array | undefined> {
  const m = builtinBySha(sha256)
  if (m == null) return undefined
  return await builtinCache.get(sha256, new URL(`models/${m.file}`, location.href))
}

/**
 * `size` inference workers for one backend behind one candidate, each running one task at a time:
 * a Web Worker is single-threaded and one onnxruntime session must not run two tasks at once. The
 * work queue admits at most `size` tasks, so a free worker is there for each; extra workers start
 * on first need (each loads its own copy of a model).
 */
function workerPool (name: string, size: number, spawn: () => Promise<InferenceWorker>, first: InferenceWorker | undefined, stops: Array<() => void>): BackendCandidate {
  const workers: Array<Promise<InferenceWorker> | undefined> = Array.from({ length: size }, (_, i) => i === 0 && first != null ? Promise.resolve(first) : undefined)
  const busy = new Array<boolean>(size).fill(false)
  const waiting: Array<() => void> = []
  stops.push(() => { workers.forEach((w, i) => { if (i > 0 || first == null) void w?.then(x => { x.terminate() }, () => {}) }) })
  const take = async (): Promise<number> => {
    for (;;) {
      const i = busy.indexOf(false)
      if (i >= 0) {
        busy[i] = true
        return i
      }
      // More tasks than workers (a backend measurement beside queued work): wait for one to free.
      await new Promise<void>(resolve => waiting.push(resolve))
    }
  }
  const get = async (i: number): Promise<InferenceWorker> => {
    const w = workers[i] ??= spawn()
    // A worker that failed to start is tried afresh by the next task on this slot.
    w.catch(() => { if (workers[i] === w) workers[i] = undefined })
    return await w
  }
  /** Runs `fn` on a free worker of the pool, which is busy until it is done. */
  const onFree = async <T>(fn: (w: InferenceWorker) => Promise<T>): Promise<T> => {
    const i = await take()
    try {
      return await fn(await get(i))
    } finally {
      busy[i] = false
      waiting.shift()?.()
    }
  }
  return {
    name,
    execute: async (request, from, signal) => await onFree(async (w) => await w.execute(request, from, signal)),
    executeMany: async (requests, from, signal) => await onFree(async (w) => await w.executeMany!(requests, from, signal)),
    release: async (sha) => {
      await Promise.all(workers.map(async (w, i) => {
        const worker = await w?.catch(() => undefined)
        if (worker == null) return
        await worker.release(sha)
        const left = await worker.holds()
        // A worker left with no model (its backend lost every measurement so far) stops: onnxruntime's
        // WASM heap never shrinks, so an idle one would keep its peak for good. The next model that
        // needs this backend starts a fresh one. The tab's first worker stays (digits run there).
        if (left === 0 && !busy[i] && workers[i] === w && worker !== first) {
          workers[i] = undefined
          worker.terminate()
        }
      }))
    }
  }
}

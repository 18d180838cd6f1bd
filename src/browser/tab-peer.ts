/**
 * Everything a tab does as a peer, without UI: identity, libp2p node, relay/directory, the task
 * service (serving into the Web Worker, submitting to peers) and RTT probes. The UI reads its
 * snapshot and calls its intents.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { createPeer } from '../net/peer.js'
import { DirectoryClient } from '../net/directory-client.js'
import { TaskService } from '../net/task-service.js'
import { AdvertService } from '../net/advert-service.js'
import { WorkerAdvertiser } from '../net/worker-advertiser.js'
import { connectionKind, directWebRTC } from '../net/connection-kind.js'
import { WorkQueue } from '../core/work-queue.js'
import { TaskError, toTaskError } from '../core/errors.js'
import { BUILTIN_MODELS, builtinBySha, builtinModel, modelRef, sampleInputs } from '../models/catalog.js'
import { startInferenceWorker } from '../runtime/worker-executor.js'
import { backendLabel, findAdapter } from '../runtime/backends.js'
import { BackendPicker } from '../core/backend-picker.js'
import { ModelProvider } from '../core/model-store.js'
import { DEFAULT_MAX_MODEL_BYTES } from '../core/model-transfer/codec.js'
import { hasModel } from '../core/discovery/advert.js'
import { ModelService } from '../net/model-service.js'
import { LOCAL_PEER } from '../net/job-runner.js'
import { loadTabIdentity } from './identity.js'
import { tabModelStore } from './cache-model-store.js'
import { rememberChoice, rememberedChoices } from './backend-memory.js'
import type { TabConfig } from './config.js'
import type { Peer } from '../net/peer.js'
import type { ConnectionKind } from '../net/connection-kind.js'
import type { RelayStatus } from '../net/directory-client.js'
import type { TaskRequest, TaskResult } from '../core/task-types.js'
import type { WorkEvent } from '../core/work-queue.js'
import type { Advert } from '../core/discovery/advert.js'
import type { InferenceWorker } from '../runtime/worker-executor.js'
import type { BackendCandidate } from '../core/backend-picker.js'
import type { ModelRef } from '../core/task-types.js'
import type { ModelEvent } from '../core/model-store.js'
import type { BackendSpec } from '../runtime/backends.js'
import type { ModelFetcher } from '../runtime/ort-runner.js'

export interface PeerView {
  peerId: string
  connection: ConnectionKind | 'not connected'
  rttMs?: number
  /** What it advertises over our direct connection: backend, slots, speed… */
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

export class TabPeer extends EventTarget {
  readonly config: TabConfig
  node!: Peer
  directory!: DirectoryClient
  tasks!: TaskService
  queue!: WorkQueue
  adverts!: AdvertService
  advertiser!: WorkerAdvertiser
  /** The first backend's worker (started with the tab; the others start on a model's first task). */
  worker!: InferenceWorker
  /** Picks the fastest backend per model among this tab's candidates. */
  picker!: BackendPicker
  /** Why WebGPU is not among the candidates, if it is not. */
  webgpuSkipped?: string
  /** Built-in models, this tab's model cache (Cache Storage) and transfers from peers. */
  readonly models: ModelProvider
  modelService!: ModelService
  slot = 0
  /** Page open (navigation start) → first ready to work, in ms. */
  readyMs?: number
  /** Why the relay cannot be reached right now, if it cannot. */
  relayError?: string
  private refreshTimer?: ReturnType<typeof setInterval>
  private readonly stopWorkers: Array<() => void> = []
  private nextPeer = 0

  constructor (config: TabConfig) {
    super()
    this.config = config
    this.models = new ModelProvider({
      store: tabModelStore(),
      builtin: fetchBuiltin,
      fetchFrom: async (peer, ref, onProgress) => await this.modelService.fetch(peer, ref, onProgress),
      holders: (sha) => [...this.adverts.adverts].filter(([, a]) => a.models.includes(sha)).map(([peer]) => peer),
      onEvent: (e) => {
        if (e.type === 'cached') this.advertiser?.publish()
        this.dispatchEvent(new CustomEvent<ModelEvent>('model', { detail: e }))
      }
    })
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

  /** Joins the network; resolves when this tab is ready to work (dialable, listed, worker loaded). */
  async start (onEvent: (e: WorkEvent) => void): Promise<void> {
    // A task from this tab itself ('self') finds its model locally: there is no peer to ask.
    const fetchModel: ModelFetcher = async (ref, from) => await this.models.get(ref, from === LOCAL_PEER ? undefined : from)
    const start = async (spec: BackendSpec): Promise<InferenceWorker> =>
      await startInferenceWorker({ backend: spec.backend, threads: spec.threads, allowFallbackAdapter: this.config.allowFallbackAdapter }, fetchModel)
    const specs = await this.backendSpecs()
    const [identity, worker] = await Promise.all([loadTabIdentity(), start(specs[0]), this.models.init()])
    this.slot = identity.slot
    this.worker = worker
    const lazy = (spec: BackendSpec): BackendCandidate => {
      let started: Promise<InferenceWorker> | undefined
      const get = async (): Promise<InferenceWorker> => await (started ??= start(spec))
      this.stopWorkers.push(() => { void started?.then(w => { w.terminate() }, () => {}) })
      return { name: backendLabel(spec), execute: async (r, from) => await (await get()).execute(r, from), release: async (sha) => { await (await started)?.release(sha) } }
    }
    this.picker = new BackendPicker([worker, ...specs.slice(1).map(lazy)], {
      onChoice: (sha, choice) => {
        rememberChoice(this.picker.names, sha, choice)
        this.advertiser.publish()
        this.changed()
      }
    })
    // Models measured before a reload keep their backend: no second measurement.
    this.picker.restore(rememberedChoices(this.picker.names))
    this.node = await createPeer({
      privateKey: identity.privateKey,
      iceServers: this.config.iceServers,
      allowPrivateAddresses: this.config.allowPrivateAddresses
    })
    this.tasks = new TaskService(this.node)
    this.adverts = new AdvertService(this.node)
    await this.adverts.start()
    this.adverts.addEventListener('advert', () => { this.changed() })
    this.modelService = new ModelService(this.node, { maxModelBytes: DEFAULT_MAX_MODEL_BYTES })
    await this.modelService.serve(async (sha) => await this.models.local(sha))
    this.queue = new WorkQueue(this.picker, { slots: 1, maxQueued: 64, onEvent: (e) => { this.advertiser.onWork(e); onEvent(e) } })
    const picker = this.picker
    this.advertiser = new WorkerAdvertiser(this.adverts, this.queue, {
      backend: picker.names.join(' | '),
      threads: worker.info.threads,
      models: () => [...new Set([...BUILTIN_MODELS.map(m => m.sha256), ...this.models.cached])],
      maxModelBytes: DEFAULT_MAX_MODEL_BYTES,
      backends: () => Object.fromEntries([...picker.choices].map(([sha, c]) => [sha, c.backend]))
    })
    await this.tasks.serve(this.queue)
    for (const evt of ['connection:open', 'connection:close'] as const) {
      this.node.addEventListener(evt, () => { this.changed() })
    }
    this.directory = new DirectoryClient(this.node, this.config.relay)
    this.directory.addEventListener('status', () => {
      if (this.directory.status === 'ready') {
        this.relayError = undefined
        this.readyMs ??= performance.now()
      }
      this.changed()
    })
    this.directory.addEventListener('peers', () => { this.changed() })
    // The digits model is tiny: load it now so the first digit runs at once. OCR models (15 MB)
    // load on their first task rather than in every tab that opens.
    const digits = builtinModel('digits')
    void worker.preload(modelRef(digits), sampleInputs(digits)).then(ok => { if (ok) this.advertiser.markCached(digits.sha256) })
    // RTTs come from the directory client's connection health pings; show them as they change.
    this.refreshTimer = setInterval(() => { this.changed() }, 2000)
    try {
      await this.directory.start()
    } catch (err) {
      // The directory client keeps retrying; the page says so meanwhile.
      this.relayError = `cannot reach the relay at ${this.config.relay} (${(err as Error).message}); retrying`
      this.changed()
    }
  }

  get peerId (): string {
    return this.node?.peerId.toString() ?? ''
  }

  get relayStatus (): RelayStatus {
    return this.directory?.status ?? 'connecting'
  }

  /** Every peer we know of (listed by the relay or connected), with how we reach it. */
  peers (): PeerView[] {
    if (this.node == null) return []
    const ids = new Set(this.directory.peers.map(p => p.peerId))
    for (const c of this.node.getConnections()) ids.add(c.remotePeer.toString())
    ids.delete(this.directory.relayPeerId ?? '')
    ids.delete(this.peerId)
    return [...ids].sort().map(peerId => {
      const conns = this.node.getConnections(peerIdFromString(peerId))
      const direct = directWebRTC(conns)
      return {
        peerId,
        connection: direct != null ? 'direct WebRTC' : conns.length > 0 ? connectionKind(conns[0]) : 'not connected',
        rttMs: this.directory.rtt.get(peerId),
        advert: this.adverts.adverts.get(peerId)
      }
    })
  }

  /** Runs one task where `target` says; 'any' tries direct peers in turn, skipping busy or gone ones. */
  async run (request: TaskRequest, target: Target): Promise<TaskRun> {
    if (target.kind === 'self') {
      const t0 = performance.now()
      const result = await this.queue.submit(request, 'self')
      return { result, worker: 'self', roundTripMs: performance.now() - t0, networkMs: 0 }
    }
    if (target.kind === 'peer') return await this.runOn(target.peerId, request, true)
    // Peers that already have the model first: no transfer before the task runs.
    const direct = this.peers().filter(p => p.connection === 'direct WebRTC')
    const ready = (p: PeerView): boolean => p.advert != null && hasModel(p.advert, request.model.sha256)
    const candidates = [...direct.filter(ready), ...direct.filter(p => !ready(p))].map(p => p.peerId)
    if (candidates.length === 0) throw new TaskError('no-peer', 'no peer is connected over direct WebRTC yet: open the app in another tab or device')
    let lastError: TaskError | undefined
    for (let i = 0; i < candidates.length; i++) {
      const peerId = candidates[(this.nextPeer + i) % candidates.length]
      try {
        const outcome = await this.runOn(peerId, request, false)
        this.nextPeer = (this.nextPeer + i + 1) % candidates.length
        return outcome
      } catch (err) {
        lastError = toTaskError(err)
        if (!['busy', 'peer-gone', 'no-peer'].includes(lastError.code)) throw lastError
      }
    }
    throw lastError!
  }

  /**
   * Runs on one peer. With `retry`, a task lost with its connection is sent once more if the relay
   * still lists the peer: the connection died (e.g. the tab reloaded), not the peer.
   */
  private async runOn (peerId: string, request: TaskRequest, retry: boolean): Promise<TaskRun> {
    try {
      return { ...await this.tasks.run(peerIdFromString(peerId), request), worker: peerId }
    } catch (err) {
      const e = toTaskError(err)
      const listed = (): boolean => this.directory.peers.some(p => p.peerId === peerId)
      if (!retry || !listed() || (e.code !== 'peer-gone' && e.code !== 'no-peer')) throw e
      // Stop waiting for a new connection as soon as the relay says the peer left.
      const gone = new AbortController()
      const onPeers = (): void => { if (!listed()) gone.abort() }
      this.directory.addEventListener('peers', onPeers)
      try {
        return { ...await this.tasks.run(peerIdFromString(peerId), request, { signal: gone.signal }), worker: peerId }
      } catch (again) {
        throw toTaskError(again).code === 'no-peer' ? e : again
      } finally {
        this.directory.removeEventListener('peers', onPeers)
      }
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
    clearInterval(this.refreshTimer)
    this.directory?.stop()
    this.worker?.terminate()
    for (const stop of this.stopWorkers) stop()
    await this.node?.stop()
  }

  private changed (): void {
    this.dispatchEvent(new Event('change'))
  }
}

/** A built-in model's bytes from this app's server (public/models), by sha256. */
async function fetchBuiltin (sha256: string): Promise<Uint8Array | undefined> {
  const m = builtinBySha(sha256)
  if (m == null) return undefined
  const res = await fetch(new URL(`models/${m.file}`, location.href))
  if (!res.ok) throw new Error(`GET models/${m.file}: ${res.status}`)
  return new Uint8Array(await res.arrayBuffer())
}

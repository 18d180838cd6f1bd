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
import { BUILTIN_MODELS, modelRef, sampleInputs } from '../models/catalog.js'
import { startInferenceWorker } from '../runtime/worker-executor.js'
import { loadTabIdentity } from './identity.js'
import type { TabConfig } from './config.js'
import type { Peer } from '../net/peer.js'
import type { ConnectionKind } from '../net/connection-kind.js'
import type { RelayStatus } from '../net/directory-client.js'
import type { TaskRequest, TaskResult } from '../core/codec.js'
import type { WorkEvent } from '../core/work-queue.js'
import type { Advert } from '../core/advert.js'
import type { InferenceWorker } from '../runtime/worker-executor.js'

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
  worker!: InferenceWorker
  slot = 0
  /** Page open (navigation start) → first ready to work, in ms. */
  readyMs?: number
  /** Why the relay cannot be reached right now, if it cannot. */
  relayError?: string
  private refreshTimer?: ReturnType<typeof setInterval>
  private nextPeer = 0

  constructor (config: TabConfig) {
    super()
    this.config = config
  }

  /** Joins the network; resolves when this tab is ready to work (dialable, listed, worker loaded). */
  async start (onEvent: (e: WorkEvent) => void): Promise<void> {
    const modelUrls = Object.fromEntries(BUILTIN_MODELS.map(m => [m.sha256, new URL(`models/${m.file}`, location.href).href]))
    const [identity, worker] = await Promise.all([
      loadTabIdentity(),
      startInferenceWorker({ backend: this.config.backend, allowFallbackAdapter: this.config.allowFallbackAdapter, threads: this.config.threads, modelUrls })
    ])
    this.slot = identity.slot
    this.worker = worker
    this.node = await createPeer({
      privateKey: identity.privateKey,
      iceServers: this.config.iceServers,
      allowPrivateAddresses: this.config.allowPrivateAddresses
    })
    this.tasks = new TaskService(this.node)
    this.adverts = new AdvertService(this.node)
    await this.adverts.start()
    this.adverts.addEventListener('advert', () => { this.changed() })
    this.queue = new WorkQueue(worker.executor, { slots: 1, maxQueued: 64, onEvent: (e) => { this.advertiser.onWork(e); onEvent(e) } })
    this.advertiser = new WorkerAdvertiser(this.adverts, this.queue, {
      backend: worker.info.backend,
      threads: worker.info.threads,
      models: BUILTIN_MODELS.map(m => m.sha256)
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
    for (const m of BUILTIN_MODELS) {
      void worker.preload(modelRef(m), sampleInputs(m)).then(ok => { if (ok) this.advertiser.markCached(m.sha256) })
    }
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
    const candidates = this.peers().filter(p => p.connection === 'direct WebRTC').map(p => p.peerId)
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

  async stop (): Promise<void> {
    clearInterval(this.refreshTimer)
    this.directory?.stop()
    this.worker?.terminate()
    await this.node?.stop()
  }

  private changed (): void {
    this.dispatchEvent(new Event('change'))
  }
}

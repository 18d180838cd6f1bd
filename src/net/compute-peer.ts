/**
 * The one composition root for a peer, tab or Node alike: the libp2p node with its services
 * (discovery, direct connections, task and model transfer protocols), the relays it holds, its
 * model provider, and, when the platform brings executors, the worker half (backend picker, work
 * queue, advert). The platform supplies only what truly differs: identity, model store, built-in
 * model bytes and executors.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { WorkQueue } from '../core/work-queue.js'
import { BackendPicker } from '../core/backend-picker.js'
import { ModelProvider } from '../core/model-store.js'
import { createPeer } from './peer.js'
import { RelaySet } from './relays.js'
import { SYNC_COOLDOWN_MS } from './discovery-service.js'
import { WorkerAdvertiser } from './worker-advertiser.js'
import { DISCOVERY_TOPIC } from '../core/discovery/codec.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Peer } from './peer.js'
import type { ModelEvent, ModelStore } from '../core/model-store.js'
import type { BackendCandidate, BackendChoice } from '../core/backend-picker.js'
import type { Executor, WorkEvent, WorkQueueOptions } from '../core/work-queue.js'
import type { TaskClientOptions } from '../core/task/client.js'
import type { ReceiptKeys } from './task-service.js'
import type { PeerKind } from '../core/discovery/advert.js'
import type { AdvertEvent, AdvertTableOptions } from '../core/discovery/table.js'
import type { PacerOptions } from '../core/discovery/pacer.js'
import type { DirectConnectionsInit } from './direct-connections.js'

/** How often a peer checks that its relays still carry its gossip. */
const GOSSIP_CHECK_MS = 15_000
/** Sync requests to one relay after it is reached (the first, and retries after a refusal). */
const MAX_SYNC_ATTEMPTS = 3

/** How a platform runs tasks for others. */
export interface WorkerSetup {
  /** Backends measured per model; the fastest runs its tasks. */
  candidates: BackendCandidate[]
  threads: number
  /** Choices measured before (a reloaded tab): no second measurement. */
  restore?: Record<string, BackendChoice>
  onChoice?: (sha256: string, choice: BackendChoice, picker: BackendPicker) => void
  queue?: WorkQueueOptions
  /** Wraps the picker (tests: a worker that lies, or is slow). */
  wrapExecutor?: (executor: Executor) => Executor
  /** Extra models to list as held (e.g. built-ins this platform can load). */
  builtins: string[]
}

export interface ComputePlatform {
  kind: Exclude<PeerKind, 'relay' | 'unknown'>
  privateKey?: PrivateKey
  /** Relay multiaddrs, in order of preference; up to two are held at once. */
  relays: string[]
  iceServers?: RTCIceServer[]
  allowPrivateAddresses?: boolean
  modelStore: ModelStore
  /** A built-in model's bytes by sha256 (undefined if not built in). */
  builtin: (sha256: string) => Promise<Uint8Array | undefined>
  /** `builtin` checks the bytes it hands out against their sha256 itself (see ModelProviderOptions). */
  builtinVerified?: boolean
  /** Largest model fetched from another peer (0: only the models it has). */
  maxModelBytes: number
  /** Executors for others' tasks; without, this peer only sends tasks. */
  worker?: (models: ModelProvider) => Promise<WorkerSetup> | WorkerSetup
  client?: TaskClientOptions
  connections?: DirectConnectionsInit
  discovery?: { table?: AdvertTableOptions, pacer?: PacerOptions }
  onModelEvent?: (e: ModelEvent) => void
  onWork?: (e: WorkEvent) => void
  /** How receipts are signed and checked, with each key imported once (default: libp2p's key methods). */
  receiptKeys?: ReceiptKeys
}

export interface ComputePeer {
  node: Peer
  relays: RelaySet
  models: ModelProvider
  queue?: WorkQueue
  picker?: BackendPicker
  advertiser?: WorkerAdvertiser
  /** Connects to the relays; resolves once one holds our reservation, rejects (and keeps trying) if none can be reached. */
  join(): Promise<void>
  stop(): Promise<void>
}

export async function createComputePeer (platform: ComputePlatform): Promise<ComputePeer> {
  let node: Peer | undefined
  let advertiser: WorkerAdvertiser | undefined
  // Models of tasks queued or running here: the cache budget never deletes one under a task.
  const working = new Map<string, number>()
  const models = new ModelProvider({
    store: platform.modelStore,
    inUse: () => working.keys(),
    builtin: platform.builtin,
    builtinVerified: platform.builtinVerified,
    fetchFrom: platform.maxModelBytes > 0 ? async (peer, ref, onProgress) => await node!.services.models.fetch(peer, ref, onProgress) : undefined,
    holders: (sha) => node == null ? [] : [...node.services.discovery.table.values()].filter(e => e.advert.models.includes(sha)).map(e => e.peerId),
    onEvent: (e) => {
      if (e.type === 'cached') advertiser?.publish()
      platform.onModelEvent?.(e)
    }
  })
  await models.init()

  let queue: WorkQueue | undefined
  let picker: BackendPicker | undefined
  let setup: WorkerSetup | undefined
  if (platform.worker != null) {
    setup = await platform.worker(models)
    const onChoice = setup.onChoice
    picker = new BackendPicker(setup.candidates, {
      onChoice: (sha, choice) => { advertiser?.publish(); onChoice?.(sha, choice, picker!) }
    })
    if (setup.restore != null) picker.restore(setup.restore)
    const onEvent = setup.queue?.onEvent
    queue = new WorkQueue(setup.wrapExecutor?.(picker) ?? picker, {
      slots: 1,
      ...setup.queue,
      onEvent: (e) => {
        countWork(working, e)
        advertiser?.onWork(e)
        onEvent?.(e)
        platform.onWork?.(e)
      }
    })
  }

  node = await createPeer({
    privateKey: platform.privateKey,
    iceServers: platform.iceServers,
    allowPrivateAddresses: platform.allowPrivateAddresses,
    discovery: { kind: platform.kind, ...platform.discovery },
    connections: platform.connections,
    tasks: { client: platform.client, queue, receiptKeys: platform.receiptKeys },
    models: { maxModelBytes: platform.maxModelBytes, source: async (sha) => await models.local(sha) }
  })
  const { discovery } = node.services

  if (queue != null && picker != null && setup != null) {
    const chooser = picker
    const builtins = setup.builtins
    advertiser = new WorkerAdvertiser(discovery, queue, {
      kind: platform.kind,
      backend: chooser.names.join(' | '),
      threads: setup.threads,
      models: () => [...new Set([...models.cached, ...builtins])],
      maxModelBytes: platform.maxModelBytes,
      backends: () => Object.fromEntries([...chooser.choices].map(([sha, c]) => [sha, c.backend]))
    })
  }

  const relays = new RelaySet(node, platform.relays)
  const joined = node
  const syncRetries = new Set<ReturnType<typeof setTimeout>>()
  let stopped = false
  const syncWith = (relayId: string, attempt: number): void => {
    joined.services.discovery.sync(peerIdFromString(relayId)).catch(() => {
      // Refused (this identity synced moments ago: a process restarted with the same key) or cut
      // short: ask again once the relay's cooldown is over, a few times at most.
      if (stopped || attempt >= MAX_SYNC_ATTEMPTS) return
      const timer = setTimeout(() => {
        syncRetries.delete(timer)
        if (relays.ready.includes(relayId)) syncWith(relayId, attempt + 1)
      }, SYNC_COOLDOWN_MS + 500)
      syncRetries.add(timer)
    })
  }
  relays.addEventListener('ready', (evt) => {
    // A relay we just reached knows the network: take its table rather than wait for heartbeats.
    syncWith((evt as CustomEvent<string>).detail, 1)
    joined.services.discovery.changed()
  })
  // Relays advertise themselves too: more to fall back on when ours go away.
  discovery.table.addEventListener('advert', (evt) => {
    const { advert } = (evt as CustomEvent<AdvertEvent>).detail
    if (advert.kind === 'relay' && advert.addrs.length > 0) relays.learn(advert.addrs[0])
  })

  // gossipsub drops a peer whose stream failed while the connection stays up, and never retries:
  // a relay not among our topic's subscribers at two checks in a row gets a fresh connection (and
  // a fresh sync).
  let silent = new Set<string>()
  const gossipWatch = setInterval(() => {
    const gossiping = new Set(joined.services.pubsub.getSubscribers(DISCOVERY_TOPIC).map(p => p.toString()))
    const missing = new Set(relays.ready.filter(id => !gossiping.has(id)))
    for (const id of missing) if (silent.has(id)) relays.reconnect(id)
    silent = missing
  }, GOSSIP_CHECK_MS)

  return {
    node,
    relays,
    models,
    queue,
    picker,
    advertiser,
    join: async () => { await relays.start() },
    stop: async () => {
      stopped = true
      for (const timer of syncRetries) clearTimeout(timer)
      clearInterval(gossipWatch)
      relays.stop()
      await joined.stop()
    }
  }
}

/** Counts a task's model while it is queued or running (WorkEvent states queued → running → done | failed). */
function countWork (working: Map<string, number>, e: WorkEvent): void {
  if (e.state === 'queued') {
    working.set(e.sha256, (working.get(e.sha256) ?? 0) + 1)
  } else if (e.state === 'done' || e.state === 'failed') {
    const n = (working.get(e.sha256) ?? 0) - 1
    if (n > 0) working.set(e.sha256, n)
    else working.delete(e.sha256)
  }
}

/**
 * The small IPC protocol between `scripts/bench-scale.ts` (the orchestrator) and its peer-host
 * child processes (`scripts/scale-host.ts`, forked with an IPC channel). The parent sends
 * requests `{ id, cmd, args }`; the host answers each with `{ id, ok, result }` or
 * `{ id, ok: false, error }`, and says `{ type: 'ready' }` once its modules are loaded.
 */
import type { DiscoveryStats } from '../src/net/discovery-service.js'

export type PeerRole = 'base' | 'late' | 'observer' | 'requester'

export interface PeerSpec {
  /** Bench-wide index (base peers 0..n-1; others get their own ranges). */
  index: number
  role: PeerRole
  /** Relay multiaddrs, in order of preference (the peer holds up to two of them). */
  relays: string[]
  work: boolean
  /** The requester's direct-connection cap (default: the library's, 32). */
  maxDirect?: number
}

export interface StartedPeer {
  index: number
  peerId: string
  /** startNodePeer() call → resolved (first relay reservation held), ms. */
  joinMs: number
}

export interface PeerReport {
  index: number
  role: PeerRole
  peerId: string
  /** Entries in its advert table now. */
  table: number
  discovery: DiscoveryStats
  dials: number
  dialFailures: number
  /** connections.stats.maxHeld: most direct connections it held at once (event-driven, exact). */
  maxHeld: number
  /** Direct connections held now / most seen by the 1 s sampler. */
  heldNow: number
  maxHeldSampled: number
  /** All libp2p connections (relays, relayed signalling and direct) now / most seen by the sampler. */
  connsNow: number
  maxConnsSampled: number
  /** Connections to relays now / most seen. */
  relayConnsNow: number
  maxRelayConnsSampled: number
  /** Relays whose reservation it holds now. */
  relaysReady: number
  /** Gossipsub peers subscribed to the discovery topic, as it sees them (0 with a relay ready: deaf and mute). */
  gossipSubscribers: number
}

export interface HostStats {
  pid: number
  peers: PeerReport[]
  memory: { rss: number, heapUsed: number, external: number }
  /** Event-loop delay since the previous 'stats' request, ms. */
  loopDelayMs: { p50: number, p99: number, max: number }
}

export interface LateResult {
  peerId: string
  /** Wall clock (Date.now()) when startNodePeer was called. */
  t0: number
  joinMs: number
  /** startNodePeer call → its advert in the observer's table (observer on a relay the worker does not hold). */
  seenMs: number | null
  observerRelay: number
  workerRelays: number[]
  /** When the advert did not arrive within 30 s: what both ends looked like. */
  diagnosis?: string
}

export interface BatchResult {
  tasks: number
  state: string
  error?: string
  seconds: number
  tasksPerSec: number
  /** Rate once the first 10 % were decided (dials and model sessions done). */
  steadyTasksPerSec: number
  resultsCount: number
  /** Indexes missing from the store, written more than once, or outside 0..n-1. */
  missing: number
  duplicates: number
  outOfRange: number
  accuracy: number
  perPeer: Record<string, number>
  maxWorkers: number
  maxDirect: number
  /** Failed dispatches by "code: message" (most frequent first). */
  failures: Record<string, number>
  requester: { maxHeld: number, maxHeldSampled: number, maxConnsSampled: number, maxRelayConnsSampled: number, dials: number, dialFailures: number, dialMsP50: number, dialMsP95: number }
}

/** Times, per advertiser peer id, at which each local peer first saw its advert (Date.now()). */
export type SeenTimes = Record<string, number[]>

export interface Request { id: number, cmd: string, args?: unknown }
export type Reply = { id: number, ok: true, result: unknown } | { id: number, ok: false, error: string }
export interface ReadyMessage { type: 'ready', pid: number }

/**
 * The requester's own onnxruntime, for spot checks: a requester recomputes a share of the decided
 * tasks itself (JobRunner's `spotCheck`). The model is the requester's, but a gateway's requester
 * runs models its HTTP clients uploaded, so the recomputation runs in a child process with the
 * workers' memory cap (inference-pool.ts), never in the requester's own process.
 */
import { endpointLookup } from '../net/peer-endpoint.js'
import { InferencePool } from './inference-pool.js'
import type { JobVerification, SpotCheck } from '../net/job-runner.js'
import type { DiversityMode } from '../core/diversity.js'
import type { NodePeer } from './node-peer.js'

export type Recompute = SpotCheck['recompute']

/** A requester job's verification: spot checks on `recompute`, workers told apart by their connections. */
export function nodeVerification (peer: NodePeer, settings: { spotCheck: number, diversity: DiversityMode }, recompute: Recompute): JobVerification {
  return {
    diversity: settings.diversity,
    endpoint: endpointLookup(peer.node),
    spotCheck: settings.spotCheck > 0 ? { fraction: settings.spotCheck, recompute } : undefined
  }
}

export interface RequesterInference {
  recompute: Recompute
  /** Ends the inference process (a requester's close()). */
  stop: () => void
}

/**
 * One single-threaded inference process for a requester's recomputations, started on first use
 * and kept (its sessions too); `maxMemoryMb` as a worker's (default DEFAULT_MAX_MEMORY_MB).
 */
export function requesterInference (peer: NodePeer, options: { maxMemoryMb?: number } = {}): RequesterInference {
  const pool = new InferencePool({ size: 1, threads: [1], fetchModel: async (ref) => await peer.models.get(ref), maxMemoryMb: options.maxMemoryMb })
  const [candidate] = pool.candidates
  const requester = peer.node.peerId.toString()
  return {
    recompute: async (request) => (await candidate!.execute(request, requester)).outputs,
    stop: () => { pool.stop() }
  }
}

/**
 * The requester's own onnxruntime, for spot checks: a CLI recomputes a share of the decided tasks
 * itself (JobRunner's `spotCheck`). It runs in this process, single-threaded, on the requester's
 * own model (never one a remote peer chose), so it needs none of a worker's isolation.
 */
import * as ort from 'onnxruntime-node'
import { OrtRunner } from '../runtime/ort-runner.js'
import type { ModelFetcher, OrtModule } from '../runtime/ort-runner.js'
import { endpointLookup } from '../net/peer-endpoint.js'
import type { JobVerification, SpotCheck } from '../net/job-runner.js'
import type { DiversityMode } from '../core/diversity.js'
import type { NodePeer } from './node-peer.js'

export type Recompute = SpotCheck['recompute']

/** A requester job's verification: spot checks on `recompute` (this process's onnxruntime), workers told apart by their connections. */
export function nodeVerification (peer: NodePeer, settings: { spotCheck: number, diversity: DiversityMode }, recompute: Recompute = requesterRecompute(peer)): JobVerification {
  return {
    diversity: settings.diversity,
    endpoint: endpointLookup(peer.node),
    spotCheck: settings.spotCheck > 0 ? { fraction: settings.spotCheck, recompute } : undefined
  }
}

/** Runs tasks on this process's onnxruntime (sessions made on first use and kept): make one per requester. */
export function requesterRecompute (peer: NodePeer): Recompute {
  return recomputer(async (ref) => await peer.models.get(ref))
}

function recomputer (fetchModel: ModelFetcher): Recompute {
  const runner = new OrtRunner(ort as unknown as OrtModule, fetchModel, {
    backend: 'onnxruntime-node cpu 1 thread (requester)',
    threads: 1,
    sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 }
  })
  return async (request) => (await runner.execute(request)).outputs
}

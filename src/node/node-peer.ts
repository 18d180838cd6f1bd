/**
 * A headless Node peer (WebRTC via node-datachannel): a worker on onnxruntime-node, a requester,
 * or both. As a worker, inference runs in child processes (inference-pool.ts) with a memory cap,
 * so a hostile model or a run past its deadline never takes this process down.
 */
import './polyfill.js'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { availableParallelism } from 'node:os'
import { OrtRunner } from '../runtime/ort-runner.js'
import { runnerCandidate } from '../runtime/batch-outcome.js'
import { InferencePool } from './inference-pool.js'
import { nodeBackendName } from './inference-protocol.js'
import { TaskError } from '../core/errors.js'
import { BUILTIN_MODELS, builtinBySha } from '../models/catalog.js'
import { DEFAULT_MAX_MODEL_BYTES } from '../core/model-transfer/codec.js'
import { createComputePeer } from '../net/compute-peer.js'
import { FileModelStore } from './file-model-store.js'
import { nodeReceiptKeys } from './receipt-keys.js'
import type { ComputePeer } from '../net/compute-peer.js'
import type { ModelEvent, ModelStore } from '../core/model-store.js'
import type { BackendCandidate, BackendChoice } from '../core/backend-picker.js'
import type { ModelFetcher, OrtModule } from '../runtime/ort-runner.js'
import type { PrivateKey } from '@libp2p/interface'
import type { TaskClientOptions } from '../core/task/client.js'
import type { Executor, WorkQueueOptions } from '../core/work-queue.js'
import type { Discovery } from '../net/discovery-service.js'
import type { DirectConnections, DirectConnectionsInit } from '../net/direct-connections.js'
import type { TaskProtocol } from '../net/task-service.js'
import type { ModelTransfer } from '../net/model-service.js'
import type { AdvertTableOptions } from '../core/discovery/table.js'
import type { PacerOptions } from '../core/discovery/pacer.js'

export const MODELS_DIR = fileURLToPath(new URL('../../public/models/', import.meta.url))

/** Where Node peers cache models they fetched, unless told otherwise. */
export const DEFAULT_MODEL_CACHE = fileURLToPath(new URL('../../.data/models/', import.meta.url))

/** A built-in model's bytes from public/models, by sha256. */
export async function builtinModelBytes (sha256: string): Promise<Uint8Array | undefined> {
  const m = builtinBySha(sha256)
  return m == null ? undefined : new Uint8Array(await readFile(MODELS_DIR + m.file))
}

/** Serves built-in models from public/models by sha256. */
export const builtinModelFiles: ModelFetcher = async (ref) => {
  const bytes = await builtinModelBytes(ref.sha256)
  if (bytes == null) throw new TaskError('model-unavailable', `model ${ref.name || ref.sha256} is not one this worker has`)
  return bytes
}

export interface NodePeerOptions {
  /** Relay multiaddrs, in order of preference (up to two are held at once). */
  relays: string[]
  privateKey?: PrivateKey
  /** Run tasks for others (default true). */
  work?: boolean
  /** onnxruntime threads; above 1 the worker measures 1 vs this many per model and keeps the faster. */
  threads?: number
  queue?: WorkQueueOptions
  /** Model cache (default: files under .data/models; tests pass a temporary directory or memory). */
  modelStore?: ModelStore
  /** Largest model this peer fetches from others (default 256 MiB; 0 runs only models it has). */
  maxModelBytes?: number
  onModelEvent?: (e: ModelEvent) => void
  onBackendChoice?: (sha256: string, choice: BackendChoice) => void
  client?: TaskClientOptions
  connections?: DirectConnectionsInit
  discovery?: { table?: AdvertTableOptions, pacer?: PacerOptions }
  /** Replaces the whole model lookup (built-ins, cache, transfers): tests of odd fetchers. */
  fetchModel?: ModelFetcher
  /** Resident memory one inference process may use, MiB (default DEFAULT_MAX_MEMORY_MB); past it the task fails and the process restarts. */
  maxMemoryMb?: number
  /** Model bytes of onnxruntime sessions each inference process keeps (default DEFAULT_SESSION_BUDGET_BYTES). */
  sessionBudgetBytes?: number
  /**
   * Run onnxruntime in this process instead of child processes: no memory cap and a run past its
   * deadline cannot be stopped. Only for trusted work with many peers in one process (benches).
   */
  inProcess?: boolean
  /** An inference process was lost while running a task (memory cap, crash), with the reason. */
  onInferenceRestart?: (reason: string) => void
  /** Wraps the onnxruntime-node executor the queue runs tasks on (tests: a worker that lies, or is slow). */
  wrapExecutor?: (executor: Executor) => Executor
  /** Resolve once started, without waiting for a relay (a relay that is down is retried in the background). */
  noWait?: boolean
}

export interface NodePeer extends ComputePeer {
  discovery: Discovery
  connections: DirectConnections
  tasks: TaskProtocol
  modelTransfer: ModelTransfer
  /** The picker's candidates (one per thread count) and the models each holds a session for. */
  runners: Array<{ backend: string, readonly cachedModels: string[] }>
  /** The inference processes (absent with `inProcess` or without `work`). */
  inference?: InferencePool
}

export async function startNodePeer (options: NodePeerOptions): Promise<NodePeer> {
  const runners: NodePeer['runners'] = []
  let pool: InferencePool | undefined
  const maxModelBytes = options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES
  const peer = await createComputePeer({
    kind: 'node',
    privateKey: options.privateKey,
    relays: options.relays,
    allowPrivateAddresses: true,
    modelStore: options.modelStore ?? new FileModelStore(DEFAULT_MODEL_CACHE),
    builtin: builtinModelBytes,
    maxModelBytes,
    receiptKeys: nodeReceiptKeys,
    client: options.client,
    connections: options.connections,
    discovery: options.discovery,
    onModelEvent: options.onModelEvent,
    worker: options.work === false
      ? undefined
      : async (models) => {
          const threads = Math.min(options.threads ?? 1, availableParallelism())
          const threadCounts = threads > 1 ? [1, threads] : [1]
          const fetchModel = options.fetchModel ?? (async (ref, from) => await models.get(ref, from))
          let candidates: BackendCandidate[]
          if (options.inProcess === true) {
            // Loaded only here: an isolated worker never loads onnxruntime in its own process.
            const ort = await import('onnxruntime-node')
            candidates = threadCounts.map(n => {
              const runner = new OrtRunner(ort as unknown as OrtModule, fetchModel, {
                backend: nodeBackendName(n),
                threads: n,
                sessionOptions: { intraOpNumThreads: n, interOpNumThreads: 1 },
                sessionBudgetBytes: options.sessionBudgetBytes
              })
              runners.push(runner)
              return runnerCandidate(runner)
            })
          } else {
            const inference = new InferencePool({
              size: options.queue?.slots ?? 1,
              threads: threadCounts,
              fetchModel,
              maxMemoryMb: options.maxMemoryMb,
              sessionBudgetBytes: options.sessionBudgetBytes,
              onRestart: options.onInferenceRestart
            })
            pool = inference
            candidates = inference.candidates
            for (const n of threadCounts) runners.push({ backend: nodeBackendName(n), get cachedModels () { return inference.cachedModels(n) } })
          }
          return {
            candidates,
            threads,
            onChoice: (sha, c) => { options.onBackendChoice?.(sha, c) },
            queue: options.queue,
            wrapExecutor: options.wrapExecutor,
            builtins: BUILTIN_MODELS.map(m => m.sha256)
          }
        }
  })
  const { services } = peer.node
  const nodePeer: NodePeer = {
    ...peer,
    discovery: services.discovery,
    connections: services.connections,
    tasks: services.tasks,
    modelTransfer: services.models,
    runners,
    inference: pool,
    stop: async () => {
      pool?.stop()
      await peer.stop()
    }
  }
  if (options.noWait === true) {
    peer.join().catch(() => {})
    return nodePeer
  }
  try {
    await peer.join()
  } catch (err) {
    await nodePeer.stop()
    throw err
  }
  return nodePeer
}

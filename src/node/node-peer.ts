/** A headless Node peer (WebRTC via node-datachannel): a worker on onnxruntime-node, a requester, or both. */
import './polyfill.js'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { availableParallelism } from 'node:os'
import * as ort from 'onnxruntime-node'
import { createPeer } from '../net/peer.js'
import { DirectoryClient } from '../net/directory-client.js'
import { TaskService } from '../net/task-service.js'
import { WorkQueue } from '../core/work-queue.js'
import { OrtRunner } from '../runtime/ort-runner.js'
import { TaskError } from '../core/errors.js'
import { BUILTIN_MODELS, builtinBySha } from '../models/catalog.js'
import { AdvertService } from '../net/advert-service.js'
import { WorkerAdvertiser } from '../net/worker-advertiser.js'
import { ModelService } from '../net/model-service.js'
import { ModelProvider } from '../core/model-store.js'
import { BackendPicker } from '../core/backend-picker.js'
import { DEFAULT_MAX_MODEL_BYTES } from '../core/model-transfer/codec.js'
import { FileModelStore } from './file-model-store.js'
import type { ModelEvent, ModelStore } from '../core/model-store.js'
import type { BackendCandidate, BackendChoice } from '../core/backend-picker.js'
import type { ModelFetcher, OrtModule } from '../runtime/ort-runner.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Peer } from '../net/peer.js'
import type { TaskClientOptions } from '../core/task/client.js'
import type { Executor, WorkQueueOptions } from '../core/work-queue.js'

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
  relay: string
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
  /** Replaces the whole model lookup (built-ins, cache, transfers): tests of odd fetchers. */
  fetchModel?: ModelFetcher
  /** Wraps the onnxruntime-node executor the queue runs tasks on (tests: a worker that lies, or is slow). */
  wrapExecutor?: (executor: Executor) => Executor
}

export interface NodePeer {
  node: Peer
  directory: DirectoryClient
  tasks: TaskService
  adverts: AdvertService
  queue?: WorkQueue
  /** The executor tasks run on: picks the faster of its onnxruntime candidates per model. */
  picker?: BackendPicker
  /** The picker's candidates (one per thread count). */
  runners: OrtRunner[]
  /** Built-ins, this peer's model cache, and transfers from peers. */
  models: ModelProvider
  modelService: ModelService
  /** Publishes this worker's advert; `setPaused` pauses its queue and tells requesters. */
  advertiser?: WorkerAdvertiser
  stop(): Promise<void>
}

export async function startNodePeer (options: NodePeerOptions): Promise<NodePeer> {
  const node = await createPeer({ privateKey: options.privateKey, allowPrivateAddresses: true })
  const tasks = new TaskService(node, { client: options.client })
  const adverts = new AdvertService(node)
  await adverts.start()
  const maxModelBytes = options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES
  const modelService = new ModelService(node, { maxModelBytes })
  let advertiser: WorkerAdvertiser | undefined
  const models = new ModelProvider({
    store: options.modelStore ?? new FileModelStore(DEFAULT_MODEL_CACHE),
    builtin: builtinModelBytes,
    fetchFrom: maxModelBytes > 0 ? async (peer, ref, onProgress) => await modelService.fetch(peer, ref, onProgress) : undefined,
    holders: (sha) => [...adverts.adverts].filter(([, a]) => a.models.includes(sha)).map(([peer]) => peer),
    onEvent: (e) => {
      if (e.type === 'cached') advertiser?.publish()
      options.onModelEvent?.(e)
    }
  })
  await models.init()
  await modelService.serve(async (sha) => await models.local(sha))
  let queue: WorkQueue | undefined
  let picker: BackendPicker | undefined
  const runners: OrtRunner[] = []
  if (options.work !== false) {
    const threads = Math.min(options.threads ?? 1, availableParallelism())
    const fetchModel = options.fetchModel ?? (async (ref, from) => await models.get(ref, from))
    const candidate = (n: number): BackendCandidate => {
      const runner = new OrtRunner(ort as unknown as OrtModule, fetchModel, {
        backend: `onnxruntime-node cpu ${n} thread${n > 1 ? 's' : ''}`,
        threads: n,
        sessionOptions: { intraOpNumThreads: n, interOpNumThreads: 1 }
      })
      runners.push(runner)
      return { name: runner.backend, execute: async (r, from) => await runner.execute(r, from), release: async (sha) => { await runner.release(sha) } }
    }
    picker = new BackendPicker(threads > 1 ? [candidate(1), candidate(threads)] : [candidate(1)], {
      onChoice: (sha, c) => { advertiser?.publish(); options.onBackendChoice?.(sha, c) }
    })
    const onEvent = options.queue?.onEvent
    queue = new WorkQueue(options.wrapExecutor?.(picker) ?? picker, { slots: 1, ...options.queue, onEvent: (e) => { advertiser?.onWork(e); onEvent?.(e) } })
    const chooser = picker
    advertiser = new WorkerAdvertiser(adverts, queue, {
      backend: chooser.names.join(' | '),
      threads,
      models: () => [...new Set([...BUILTIN_MODELS.map(m => m.sha256), ...models.cached])],
      maxModelBytes,
      backends: () => Object.fromEntries([...chooser.choices].map(([sha, c]) => [sha, c.backend]))
    })
    await tasks.serve(queue)
  }
  const directory = new DirectoryClient(node, options.relay)
  try {
    await directory.start()
  } catch (err) {
    await node.stop()
    throw err
  }
  return {
    node,
    directory,
    tasks,
    adverts,
    queue,
    picker,
    runners,
    models,
    modelService,
    advertiser,
    stop: async () => {
      directory.stop()
      await node.stop()
    }
  }
}

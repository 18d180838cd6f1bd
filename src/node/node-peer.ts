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
import type { ModelFetcher, OrtModule } from '../runtime/ort-runner.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Peer } from '../net/peer.js'
import type { TaskClientOptions } from '../core/task-client.js'
import type { Executor, WorkQueueOptions } from '../core/work-queue.js'

export const MODELS_DIR = fileURLToPath(new URL('../../public/models/', import.meta.url))

/** Serves built-in models from public/models by sha256. */
export const builtinModelFiles: ModelFetcher = async (ref) => {
  const m = builtinBySha(ref.sha256)
  if (m == null) throw new TaskError('model-unavailable', `model ${ref.name || ref.sha256} is not one this worker has`)
  return new Uint8Array(await readFile(MODELS_DIR + m.file))
}

export interface NodePeerOptions {
  relay: string
  privateKey?: PrivateKey
  /** Run tasks for others (default true). */
  work?: boolean
  threads?: number
  queue?: WorkQueueOptions
  client?: TaskClientOptions
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
  runner?: OrtRunner
  /** Publishes this worker's advert; `setPaused` pauses its queue and tells requesters. */
  advertiser?: WorkerAdvertiser
  stop(): Promise<void>
}

export async function startNodePeer (options: NodePeerOptions): Promise<NodePeer> {
  const node = await createPeer({ privateKey: options.privateKey, allowPrivateAddresses: true })
  const tasks = new TaskService(node, { client: options.client })
  const adverts = new AdvertService(node)
  await adverts.start()
  let queue: WorkQueue | undefined
  let runner: OrtRunner | undefined
  let advertiser: WorkerAdvertiser | undefined
  if (options.work !== false) {
    const threads = options.threads ?? 1
    runner = new OrtRunner(ort as unknown as OrtModule, options.fetchModel ?? builtinModelFiles, {
      backend: 'onnxruntime-node (cpu)',
      threads,
      sessionOptions: { intraOpNumThreads: Math.min(threads, availableParallelism()), interOpNumThreads: 1 }
    })
    const onEvent = options.queue?.onEvent
    queue = new WorkQueue(options.wrapExecutor?.(runner) ?? runner, { slots: 1, ...options.queue, onEvent: (e) => { advertiser?.onWork(e); onEvent?.(e) } })
    advertiser = new WorkerAdvertiser(adverts, queue, { backend: runner.backend, threads, models: BUILTIN_MODELS.map(m => m.sha256) })
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
    runner,
    advertiser,
    stop: async () => {
      directory.stop()
      await node.stop()
    }
  }
}

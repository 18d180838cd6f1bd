/** Main-thread side of an inference worker: a backend candidate that forwards tasks to its Web Worker. */
import * as Comlink from 'comlink'
import { TaskError, toTaskError } from '../core/errors.js'
import type { ExecutionResult } from '../core/work-queue.js'
import type { BackendCandidate } from '../core/backend-picker.js'
import type { ModelRef, TaskRequest } from '../core/task-types.js'
import type { WireTensor } from '../core/tensor.js'
import type { ModelFetcher } from './ort-runner.js'
import type { InferenceWorkerApi, ModelBytesReply, WorkerInfo, WorkerInit } from './inference-worker.js'

export interface InferenceWorker extends BackendCandidate {
  info: WorkerInfo
  /** Loads (and, given sample inputs, warms up) a model's session; resolves false if that failed (the first task will say why). */
  preload(ref: ModelRef, warmup?: WireTensor[]): Promise<boolean>
  release(sha256: string): Promise<void>
  terminate(): void
}

/** Starts a worker for one backend; its models come from `fetchModel` on this (the page's) side. */
export async function startInferenceWorker (init: WorkerInit, fetchModel: ModelFetcher): Promise<InferenceWorker> {
  const worker = new Worker(new URL('./inference-worker.ts', import.meta.url), { type: 'module', name: `p2p-inference-${init.backend}-${init.threads}` })
  const remote = Comlink.wrap<InferenceWorkerApi>(worker)
  const pageFetch = async (ref: ModelRef, from?: string): Promise<ModelBytesReply> => {
    try {
      const bytes = await fetchModel(ref, from)
      // Copied, not transferred: concurrent loads of one model (one per backend) share these bytes.
      return { bytes }
    } catch (err) {
      const e = toTaskError(err, 'model-unavailable')
      return { error: { code: e.code, message: e.message } }
    }
  }
  let info: WorkerInfo
  try {
    info = await remote.init(init, Comlink.proxy(pageFetch))
  } catch (err) {
    worker.terminate()
    throw err
  }
  return {
    name: info.backend,
    info,
    async execute (request: TaskRequest, requester: string): Promise<ExecutionResult> {
      // Compact copies: received tensors may be views into a larger network buffer shared with other frames.
      const inputs = request.inputs.map(t => ({ ...t, data: t.data.slice() }))
      try {
        return await remote.execute(Comlink.transfer({ ...request, inputs }, inputs.map(t => t.data.buffer)), requester)
      } catch (err) {
        // The worker throws { code, message } (see inference-worker.ts); anything else is a crash.
        const e = err as { code?: TaskError['code'], message?: string }
        throw new TaskError(e.code ?? 'inference-failed', e.message ?? String(err))
      }
    },
    preload: async (ref, warmup) => await remote.preload(ref, warmup).then(() => true, () => false),
    release: async (sha256) => { await remote.release(sha256) },
    terminate: () => { worker.terminate() }
  }
}

/** Main-thread side of the inference worker: an Executor that forwards tasks to the Web Worker. */
import * as Comlink from 'comlink'
import { TaskError } from '../core/errors.js'
import type { Executor, ExecutionResult } from '../core/work-queue.js'
import type { ModelRef, TaskRequest } from '../core/codec.js'
import type { WireTensor } from '../core/tensor.js'
import type { InferenceWorkerApi, WorkerInfo, WorkerInit } from './inference-worker.js'

export interface InferenceWorker {
  executor: Executor
  info: WorkerInfo
  /** Loads (and, given sample inputs, warms up) a model's session; resolves false if that failed (the first task will say why). */
  preload(ref: ModelRef, warmup?: WireTensor[]): Promise<boolean>
  terminate(): void
}

export async function startInferenceWorker (init: WorkerInit): Promise<InferenceWorker> {
  const worker = new Worker(new URL('./inference-worker.ts', import.meta.url), { type: 'module', name: 'p2p-inference' })
  const remote = Comlink.wrap<InferenceWorkerApi>(worker)
  const info = await remote.init(init)
  const executor: Executor = {
    async execute (request: TaskRequest): Promise<ExecutionResult> {
      // Compact copies: received tensors may be views into a larger network buffer shared with other frames.
      const inputs = request.inputs.map(t => ({ ...t, data: t.data.slice() }))
      try {
        return await remote.execute(Comlink.transfer({ ...request, inputs }, inputs.map(t => t.data.buffer)))
      } catch (err) {
        // The worker throws { code, message } (see inference-worker.ts); anything else is a crash.
        const e = err as { code?: TaskError['code'], message?: string }
        throw new TaskError(e.code ?? 'inference-failed', e.message ?? String(err))
      }
    }
  }
  const preload = async (ref: ModelRef, warmup?: WireTensor[]): Promise<boolean> => await remote.preload(ref, warmup).then(() => true, () => false)
  return { executor, info, preload, terminate: () => { worker.terminate() } }
}

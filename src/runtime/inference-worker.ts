/**
 * Web Worker entry: runs onnxruntime-web off the page's main thread, one backend per worker
 * (WASM at a fixed thread count, or WebGPU), exposed with comlink. Model bytes come from the page
 * (built-ins, the tab's model cache, or a peer-to-peer transfer), already verified there, with the
 * call that needs a session for them: once per model per worker. The worker never asks the page
 * back and never hashes them again; a call for a model whose session is gone (the session budget
 * released it) and that brings no bytes fails with `needsModel`, and the page calls again with them.
 */
import * as Comlink from 'comlink'
import { OrtRunner, TAB_SESSION_BUDGET } from './ort-runner.js'
import { crossing } from './batch-outcome.js'
import type { CrossingOutcome } from './batch-outcome.js'
import { backendLabel, findAdapter } from './backends.js'
import { TaskError, toTaskError } from '../core/errors.js'
import type { OrtModule } from './ort-runner.js'
import type { TaskErrorCode } from '../core/errors.js'
import type { ModelRef, TaskRequest } from '../core/task-types.js'
import type { WireTensor } from '../core/tensor.js'
import type { ExecutionResult } from '../core/work-queue.js'

export interface WorkerInit {
  backend: 'wasm' | 'webgpu'
  /** Accept a software (fallback) WebGPU adapter: only to exercise the code path in tests. */
  allowFallbackAdapter: boolean
  /** WASM threads (fixed for the worker's life: onnxruntime reads it once). */
  threads: number
}

/** An error as the worker throws it (comlink drops an Error's fields): `needsModel` asks the page for the model's bytes. */
export interface WorkerError { code: TaskErrorCode, message: string, needsModel?: boolean }

export interface WorkerInfo {
  backend: string
  threads: number
  adapter?: string
}

/** A call needed a session for a model the page did not send (it believed this worker had it). */
class ModelNotHanded extends TaskError {
  constructor (ref: ModelRef) {
    super('model-unavailable', `model ${ref.name || ref.sha256} has no session in this worker and came without its bytes`)
  }
}

let runner: OrtRunner | undefined
let info: WorkerInfo | undefined
/** Bytes handed with calls still running, by sha256: dropped once the call ends (the session holds the model then). */
const handed = new Map<string, Uint8Array>()

/** Runs `call` with `model` (the bytes of `ref`, if the page sent them) available to the session it loads. */
async function withModel<T> (ref: ModelRef, model: Uint8Array | undefined, call: (r: OrtRunner) => Promise<T>): Promise<T> {
  if (runner == null) throw new Error('inference worker not initialised')
  if (model != null) handed.set(ref.sha256, model)
  try {
    return await call(runner)
  } catch (err) {
    const e = toTaskError(err)
    // Thrown as a plain object so comlink carries the error code across (it drops Error fields).
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    throw { code: e.code, message: e.message, ...(err instanceof ModelNotHanded ? { needsModel: true } : {}) } satisfies WorkerError
  } finally {
    if (model != null && handed.get(ref.sha256) === model) handed.delete(ref.sha256)
  }
}

const api = {
  async init (init: WorkerInit): Promise<WorkerInfo> {
    if (info != null) return info
    let adapterName: string | undefined
    if (init.backend === 'webgpu') {
      const found = await findAdapter(init.allowFallbackAdapter)
      if (found.adapter == null) throw new Error(`WebGPU unavailable: ${found.reason}`)
      adapterName = found.name
    }
    const ort = init.backend === 'webgpu'
      ? await import('onnxruntime-web/webgpu')
      : await import('onnxruntime-web/wasm')
    const threads = self.crossOriginIsolated ? Math.max(1, init.threads) : 1
    ort.env.wasm.numThreads = threads
    ort.env.wasm.proxy = false
    ort.env.logLevel = 'error'
    if (init.backend === 'webgpu') (ort.env.webgpu as { adapter?: unknown }).adapter = await (navigator as unknown as { gpu: { requestAdapter(): Promise<unknown> } }).gpu.requestAdapter()
    const handedBytes = async (ref: ModelRef): Promise<Uint8Array> => {
      const bytes = handed.get(ref.sha256)
      if (bytes == null) throw new ModelNotHanded(ref)
      return bytes
    }
    runner = new OrtRunner(ort as unknown as OrtModule, handedBytes, {
      backend: backendLabel({ backend: init.backend, threads, adapter: adapterName }),
      threads,
      sessionOptions: { executionProviders: [init.backend], graphOptimizationLevel: 'all' },
      // The page verified the bytes before handing them over.
      prevalidated: true,
      sessionBudgetBytes: TAB_SESSION_BUDGET.bytes,
      maxSessions: TAB_SESSION_BUDGET.maxSessions
    })
    info = { backend: runner.backend, threads, adapter: adapterName }
    return info
  },

  /** `model`: the bytes of `ref` when the page has not handed them to this worker yet. */
  async preload (ref: ModelRef, model: Uint8Array | undefined, warmup?: WireTensor[]): Promise<void> {
    await withModel(ref, model, async (r) => { await r.preload(ref, warmup) })
  },

  async release (sha256: string): Promise<void> {
    await runner?.release(sha256)
  },

  /** sha256 of the models this worker has sessions of (or is creating) now. */
  cachedModels (): string[] {
    return runner?.cachedModels ?? []
  },

  /** `model`: the bytes of the task's model when the page has not handed them to this worker yet. */
  async execute (request: TaskRequest, requester: string, model?: Uint8Array): Promise<ExecutionResult> {
    const result = await withModel(request.model, model, async (r) => await r.execute(request, requester))
    // Outputs are fresh buffers owned by onnxruntime's result: hand them over instead of copying.
    const buffers = [...new Set(result.outputs.map(o => o.data.buffer as ArrayBuffer))]
    return Comlink.transfer(result, buffers)
  },

  /** Tasks of one model and requester in one call (OrtRunner.executeMany); errors as data, one outcome per task. */
  async executeMany (requests: TaskRequest[], requester: string, model?: Uint8Array): Promise<CrossingOutcome[]> {
    const ref = requests[0].model
    const outcomes = await withModel(ref, model, async (r) => {
      const all = await r.executeMany(requests, requester)
      // The model came without bytes: the page calls again with them (every task of the batch with it).
      if (all.some(o => o instanceof ModelNotHanded)) throw new ModelNotHanded(ref)
      return all
    })
    const answers = outcomes.map(crossing)
    const buffers = [...new Set(outcomes.flatMap(o => o instanceof Error ? [] : o.outputs.map(t => t.data.buffer as ArrayBuffer)))]
    return Comlink.transfer(answers, buffers)
  }
}

export type InferenceWorkerApi = typeof api

// onnxruntime starts its pthreads from this same bundle; only the real worker exposes the API.
if (!self.name.startsWith('em-pthread')) Comlink.expose(api)

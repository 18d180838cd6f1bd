/**
 * Web Worker entry: runs onnxruntime-web off the page's main thread, one backend per worker
 * (WASM at a fixed thread count, or WebGPU), exposed with comlink. Model bytes come from the
 * page (built-ins, the tab's model cache, or a peer-to-peer transfer) through a proxied callback.
 */
import * as Comlink from 'comlink'
import { OrtRunner, TAB_SESSION_BUDGET } from './ort-runner.js'
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

/** What the page answers when the worker asks for a model's bytes (errors as data: comlink drops an Error's code). */
export type ModelBytesReply = { bytes: Uint8Array } | { error: { code: TaskErrorCode, message: string } }
export type PageModelFetcher = (ref: ModelRef, from?: string) => Promise<ModelBytesReply>

export interface WorkerInfo {
  backend: string
  threads: number
  adapter?: string
}

let runner: OrtRunner | undefined
let info: WorkerInfo | undefined

const api = {
  async init (init: WorkerInit, fetchModel: PageModelFetcher): Promise<WorkerInfo> {
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
    const fetchBytes = async (ref: ModelRef, from?: string): Promise<Uint8Array> => {
      const reply = await fetchModel(ref, from)
      if ('error' in reply) throw new TaskError(reply.error.code, reply.error.message)
      return reply.bytes
    }
    runner = new OrtRunner(ort as unknown as OrtModule, fetchBytes, {
      backend: backendLabel({ backend: init.backend, threads, adapter: adapterName }),
      threads,
      sessionOptions: { executionProviders: [init.backend], graphOptimizationLevel: 'all' },
      sessionBudgetBytes: TAB_SESSION_BUDGET.bytes,
      maxSessions: TAB_SESSION_BUDGET.maxSessions
    })
    info = { backend: runner.backend, threads, adapter: adapterName }
    return info
  },

  async preload (ref: ModelRef, warmup?: WireTensor[]): Promise<void> {
    await runner?.preload(ref, warmup)
  },

  async release (sha256: string): Promise<void> {
    await runner?.release(sha256)
  },

  async execute (request: TaskRequest, requester: string): Promise<ExecutionResult> {
    if (runner == null) throw new Error('inference worker not initialised')
    let result: ExecutionResult
    try {
      result = await runner.execute(request, requester)
    } catch (err) {
      // Thrown as a plain object so comlink carries the error code across (it drops Error fields).
      const e = toTaskError(err)
      // eslint-disable-next-line @typescript-eslint/only-throw-error
      throw { code: e.code, message: e.message }
    }
    // Outputs are fresh buffers owned by onnxruntime's result: hand them over instead of copying.
    const buffers = [...new Set(result.outputs.map(o => o.data.buffer as ArrayBuffer))]
    return Comlink.transfer(result, buffers)
  }
}

export type InferenceWorkerApi = typeof api

// onnxruntime starts its pthreads from this same bundle; only the real worker exposes the API.
if (!self.name.startsWith('em-pthread')) Comlink.expose(api)

/**
 * Web Worker entry: runs onnxruntime-web off the page's main thread. Exposed with comlink.
 * WebGPU only on a real (non-fallback) adapter unless a test asks for the fallback; otherwise the
 * 14 MB WASM build, multi-threaded when the page is cross-origin isolated.
 */
import * as Comlink from 'comlink'
import { OrtRunner } from './ort-runner.js'
import { toTaskError } from '../core/errors.js'
import type { OrtModule } from './ort-runner.js'
import type { ModelRef, TaskRequest } from '../core/codec.js'
import type { WireTensor } from '../core/tensor.js'
import type { ExecutionResult } from '../core/work-queue.js'

export type BackendChoice = 'auto' | 'wasm' | 'webgpu'

export interface WorkerInit {
  backend: BackendChoice
  /** Accept a software (fallback) WebGPU adapter: only to exercise the code path in tests. */
  allowFallbackAdapter: boolean
  threads: number
  /** sha256 → URL of the built-in models this worker may load. */
  modelUrls: Record<string, string>
}

export interface WorkerInfo {
  backend: string
  threads: number
  adapter?: string
  webgpuSkipped?: string
}

interface GpuAdapterLike {
  info?: { vendor?: string, architecture?: string, description?: string, isFallbackAdapter?: boolean }
  isFallbackAdapter?: boolean
}

async function findAdapter (allowFallback: boolean): Promise<{ adapter?: GpuAdapterLike, reason?: string }> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }).gpu
  if (gpu == null) return { reason: 'no WebGPU in this browser' }
  const adapter = await gpu.requestAdapter().catch(() => null)
  if (adapter == null) return { reason: 'no WebGPU adapter' }
  const fallback = adapter.info?.isFallbackAdapter === true || adapter.isFallbackAdapter === true
  if (fallback && !allowFallback) return { reason: 'only a software (fallback) WebGPU adapter' }
  return { adapter }
}

let runner: OrtRunner | undefined
let info: WorkerInfo | undefined

const api = {
  async init (init: WorkerInit): Promise<WorkerInfo> {
    if (info != null) return info
    let backend: 'wasm' | 'webgpu' = 'wasm'
    let adapterName: string | undefined
    let webgpuSkipped: string | undefined
    if (init.backend !== 'wasm') {
      const found = await findAdapter(init.allowFallbackAdapter)
      if (found.adapter != null) {
        backend = 'webgpu'
        const i = found.adapter.info
        adapterName = [i?.vendor, i?.architecture, i?.description].filter(Boolean).join(' ') || 'unknown adapter'
      } else {
        webgpuSkipped = found.reason
        if (init.backend === 'webgpu') throw new Error(`WebGPU requested but unavailable: ${found.reason}`)
      }
    }
    const ort = backend === 'webgpu'
      ? await import('onnxruntime-web/webgpu')
      : await import('onnxruntime-web/wasm')
    const threads = self.crossOriginIsolated ? Math.max(1, init.threads) : 1
    ort.env.wasm.numThreads = threads
    ort.env.wasm.proxy = false
    ort.env.logLevel = 'error'
    if (backend === 'webgpu') (ort.env.webgpu as { adapter?: unknown }).adapter = await (navigator as unknown as { gpu: { requestAdapter(): Promise<unknown> } }).gpu.requestAdapter()
    const fetchModel = async (ref: { sha256: string }): Promise<Uint8Array> => {
      const url = init.modelUrls[ref.sha256]
      if (url == null) throw new Error('not a model this peer has')
      const res = await fetch(url)
      if (!res.ok) throw new Error(`GET ${url}: ${res.status}`)
      return new Uint8Array(await res.arrayBuffer())
    }
    runner = new OrtRunner(ort as unknown as OrtModule, fetchModel, {
      backend: backend === 'webgpu' ? `webgpu (${adapterName})` : `wasm${threads > 1 ? ' threads' : ''} simd`,
      threads,
      sessionOptions: { executionProviders: [backend], graphOptimizationLevel: 'all' }
    })
    info = { backend: runner.backend, threads, adapter: adapterName, webgpuSkipped }
    return info
  },

  async preload (ref: ModelRef, warmup?: WireTensor[]): Promise<void> {
    await runner?.preload(ref, warmup)
  },

  async execute (request: TaskRequest): Promise<ExecutionResult> {
    if (runner == null) throw new Error('inference worker not initialised')
    let result: ExecutionResult
    try {
      result = await runner.execute(request)
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

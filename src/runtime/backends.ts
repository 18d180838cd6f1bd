/** Which onnxruntime-web backends a tab can offer: WebGPU adapters worth using, and backend names. */

export interface GpuAdapterLike {
  info?: { vendor?: string, architecture?: string, description?: string, isFallbackAdapter?: boolean }
  isFallbackAdapter?: boolean
}

/** A real adapter, or why there is none. A software (fallback) adapter counts only when allowed: it is ~100× slower than WASM. */
export async function findAdapter (allowFallback: boolean): Promise<{ adapter?: GpuAdapterLike, name?: string, reason?: string }> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }).gpu
  if (gpu == null) return { reason: 'no WebGPU in this browser' }
  const adapter = await gpu.requestAdapter().catch(() => null)
  if (adapter == null) return { reason: 'no WebGPU adapter' }
  const fallback = adapter.info?.isFallbackAdapter === true || adapter.isFallbackAdapter === true
  if (fallback && !allowFallback) return { reason: 'only a software (fallback) WebGPU adapter' }
  const i = adapter.info
  return { adapter, name: [i?.vendor, i?.architecture, i?.description].filter(Boolean).join(' ') || 'unknown adapter' }
}

export interface BackendSpec {
  backend: 'wasm' | 'webgpu'
  threads: number
  adapter?: string
}

/** How results and adverts name a backend (the same on the page and in its worker). */
export function backendLabel (s: BackendSpec): string {
  return s.backend === 'webgpu' ? `webgpu (${s.adapter ?? 'unknown adapter'})` : `wasm simd ${s.threads > 1 ? `${s.threads} threads` : '1 thread'}`
}

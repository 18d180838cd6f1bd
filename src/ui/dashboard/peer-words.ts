/**
 * A peer's advert in a person's words: what kind of peer, what it computes on, what it holds, how
 * loaded it is. Pure (no DOM): the dashboard and the compact peer list both use it.
 */
import { builtinBySha } from '../../models/catalog.js'
import { queueDepthOf } from '../../core/discovery/advert.js'
import type { Advert } from '../../core/discovery/advert.js'

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

/** "tab", "Node worker", "relay"; a peer that runs nothing for others is a requester. */
export function kindWords (a: Advert | undefined): string {
  if (a == null) return 'unknown (no advert yet)'
  if (a.kind === 'relay') return 'relay'
  const what = a.kind === 'tab' ? 'tab' : a.kind === 'node' ? 'Node' : 'peer'
  if (!a.worker) return `${what} (requester only)`
  return a.kind === 'tab' ? 'tab' : `${what} worker`
}

/**
 * The advertised backend label ("wasm simd 2 threads | wasm simd 1 thread", "onnxruntime-node cpu 2
 * threads | …", "webgpu (adapter)") as "CPU (WASM), 2 threads", "CPU (Node), 2 threads", "WebGPU".
 * A peer measures every candidate per model and keeps the fastest; the largest thread count is what
 * it gives at most.
 */
export function backendWords (a: Advert | undefined): string {
  if (a == null || !a.worker) return '—'
  const parts = a.backend.split('|').map(p => p.trim().toLowerCase()).filter(p => p !== '')
  const threads = Math.max(1, a.threads, ...parts.map(p => Number(/(\d+) threads?/.exec(p)?.[1] ?? 0)))
  const out: string[] = []
  if (parts.some(p => p.startsWith('webgpu'))) out.push('WebGPU')
  if (parts.some(p => p.startsWith('onnxruntime-node'))) out.push(`CPU (Node), ${plural(threads, 'thread')}`)
  else if (parts.some(p => p.startsWith('wasm'))) out.push(`CPU (WASM), ${plural(threads, 'thread')}`)
  if (out.length === 0) return a.backend.slice(0, 40) || '—'
  // Models where it measured WebGPU fastest say so: "WebGPU (chosen for 2 models)".
  const gpuChosen = Object.values(a.backends).filter(b => b.toLowerCase().startsWith('webgpu')).length
  if (out.length > 1 && gpuChosen > 0) out[0] = `WebGPU (fastest for ${plural(gpuChosen, 'model')})`
  return out.join(' + ')
}

/** A model's name: the built-in's id ("digits", "ocr-det"), else the start of its sha256. */
export function modelName (sha256: string): string {
  return builtinBySha(sha256)?.id ?? `${sha256.slice(0, 8)}…`
}

/** "2 running of 1 slot (+1 queued)", "idle, 2 slots", "paused". */
export function loadWords (a: Advert | undefined): string {
  if (a == null || !a.worker) return '—'
  if (a.paused) return 'paused'
  // Advertised credits are execution slots plus `queueDepth` queued on top (so it never idles):
  // a batch's worth per run while its tasks are quick, which are no more slots to run them in.
  const slots = Math.max(1, a.slots - queueDepthOf(a))
  const busy = Math.max(0, a.slots - a.freeSlots)
  if (busy === 0) return `idle, ${plural(slots, 'slot')}`
  const running = Math.min(busy, slots)
  return `${running} running of ${plural(slots, 'slot')}${busy > running ? ` (+${busy - running} queued)` : ''}`
}

/** "12.3 ms", "1.2 s": a latency at the precision a person reads. */
export function msWords (ms: number | undefined | null): string {
  if (ms == null || !Number.isFinite(ms)) return '—'
  if (ms < 10) return `${ms.toFixed(1)} ms`
  if (ms < 1000) return `${Math.round(ms)} ms`
  return `${(ms / 1000).toFixed(1)} s`
}

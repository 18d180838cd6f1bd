/**
 * What the tab's state means, in a volunteer's words rather than in the engine's labels: where it
 * computes, whether it reaches its relay, what the tab title says. Pure: tested without a browser.
 */
import type { RelayView } from '../net/relays.js'
import type { BackendSpec } from '../runtime/backends.js'
import type { PauseReason } from './volunteer-settings.js'

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

/**
 * "CPU (WebAssembly), 2 threads · GPU (WebGPU, <adapter>) · 1 task at a time", and why WebGPU is
 * not used when it is not. The tab measures each of these per model and keeps the fastest.
 */
export function backendsInWords (specs: readonly BackendSpec[], slots: number, webgpuSkipped?: string): string {
  const wasm = specs.filter(s => s.backend === 'wasm')
  const gpu = specs.find(s => s.backend === 'webgpu')
  const parts: string[] = []
  if (wasm.length > 0) parts.push(`CPU (WebAssembly), ${plural(Math.max(...wasm.map(s => s.threads)), 'thread')}`)
  if (gpu != null) parts.push(`GPU (WebGPU${gpu.adapter != null ? `, ${gpu.adapter}` : ''})`)
  parts.push(`${plural(slots, 'task')} at a time`)
  const words = parts.join(' · ')
  return webgpuSkipped != null && gpu == null ? `${words}; WebGPU not available: ${webgpuSkipped}` : words
}

/** A dial error as people read it: libp2p's aggregate errors can carry no message (shown as "undefined" before). */
function reason (error: string | undefined): string {
  const text = error?.trim()
  return text == null || text === '' || text === 'undefined' ? 'no answer' : text
}

/**
 * The relays' state in a sentence, naming the ones that cannot be reached. `tried`: the tab's
 * first join has ended, so no relay ready means an outage (a relay being redialled shows as
 * connecting between failures), not a tab still starting.
 */
export function relaysInWords (relays: readonly RelayView[], tried: boolean): string {
  const ready = relays.filter(r => r.state === 'ready')
  if (ready.length > 0) return `connected to the network through ${ready.length === 1 ? `the relay at ${ready[0].addr}` : plural(ready.length, 'relay')}`
  const trying = relays.filter(r => r.state === 'connecting' || r.state === 'reserving')
  const down = relays.filter(r => r.state === 'disconnected')
  if (tried && (down.length > 0 || trying.length > 0)) {
    const why = (r: RelayView): string => r.state === 'disconnected' ? ` (${reason(r.error)})` : ' (redialling)'
    return `relay unreachable, retrying: ${[...down, ...trying].map(r => `${r.addr}${why(r)}`).join('; ')}`
  }
  if (trying.length > 0) {
    const downNote = down.length > 0 ? `; unreachable so far: ${down.map(r => `${r.addr} (${reason(r.error)})`).join('; ')}` : ''
    return `connecting to ${trying.map(r => r.addr).join(' and ')}…${downNote}`
  }
  return 'connecting…'
}

/** The tab title: paused and why, or how many tasks it is working on, before the app's name. */
export function tabTitle (base: string, state: { reasons: readonly PauseReason[], running: number }): string {
  if (state.reasons.length > 0) return `⏸ Paused (${state.reasons.join(', ')}) · ${base}`
  if (state.running > 0) return `▶ Working on ${plural(state.running, 'task')} · ${base}`
  return base
}

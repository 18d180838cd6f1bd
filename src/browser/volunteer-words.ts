/**
 * What the tab's state means, in a volunteer's words rather than in the engine's labels: where it
 * computes, whether it reaches its relay, what the tab title says. Pure: tested without a browser.
 */
import { RELAY_UNREACHABLE } from '../core/job-blocked.js'
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

/**
 * Why a relay cannot be reached, as people read it: its dial error; libp2p's aggregate errors can
 * carry no message (shown as "undefined" before), and a redial with no error yet is just that.
 */
export function relayWhy (relay: Pick<RelayView, 'state' | 'error'>): string {
  const text = relay.error?.trim()
  if (text != null && text !== '' && text !== 'undefined') return text
  return relay.state === 'disconnected' ? 'no answer' : 'redialling'
}

/**
 * "relay unreachable, retrying: <addr> (<why>); …": the one wording of an outage, said by the status
 * bar, a blocked job (the tab's connectivity), a task that could not be sent and the dashboard. The
 * relays in their configured order (never reordered by which is being redialled), standbys left out.
 */
export function relayUnreachableWords (relays: ReadonlyArray<Pick<RelayView, 'addr' | 'state' | 'error'>>): string {
  const tried = relays.filter(r => r.state !== 'standby' && r.state !== 'ready')
  const down = tried.length > 0 ? tried : relays
  return `${RELAY_UNREACHABLE}: ${down.map(r => `${r.addr} (${relayWhy(r)})`).join('; ')}`
}

/**
 * The relays with each one's last dial error kept while it is redialled: the relay set clears the
 * error at every attempt, so words made from its views would change with each redial (and a blocked
 * job's reason flicker). `last` is the caller's memory, updated here; a ready relay forgets its error.
 */
export function keepRelayErrors (relays: readonly RelayView[], last: Map<string, string>): RelayView[] {
  return relays.map(r => {
    if (r.state === 'ready') last.delete(r.peerId)
    else if (r.error != null && r.error !== '') last.set(r.peerId, r.error)
    const kept = last.get(r.peerId)
    return r.state !== 'ready' && (r.error == null || r.error === '') && kept != null ? { ...r, error: kept } : r
  })
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
  if (tried && (down.length > 0 || trying.length > 0)) return relayUnreachableWords(relays)
  if (trying.length > 0) {
    const downNote = down.length > 0 ? `; unreachable so far: ${down.map(r => `${r.addr} (${relayWhy(r)})`).join('; ')}` : ''
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

/** Where this tab finds its relay and how it runs: /config.json from the server, URL parameters override. */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { VolunteerSettings } from './volunteer-settings.js'

/** auto: measure WASM (1 and N threads) and WebGPU per model; wasm: WASM only; webgpu: WebGPU only. */
export type BackendSetting = 'auto' | 'wasm' | 'webgpu'

export interface TabConfig {
  /** Relay multiaddrs in order of preference; up to two are held at once. */
  relays: string[]
  backend: BackendSetting
  allowFallbackAdapter: boolean
  /** Allow dialling loopback/private addresses (LAN and tests). */
  allowPrivateAddresses: boolean
  iceServers: RTCIceServer[]
  threads: number
  /** Tasks run at once (an inference worker each). */
  slots: number
  /** Most tasks one inference call takes (`?batch=`; 1 turns batching off; default: the WorkQueue's). */
  batch?: number
}

/** What a relay address looks like, for messages about a wrong one. */
export const RELAY_EXAMPLE = '/ip4/192.168.1.10/tcp/9090/ws/p2p/12D3KooW… (npm start prints it; /dns4/<host>/tcp/443/wss/p2p/… behind TLS)'

export class RelayAddressError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'RelayAddressError'
  }
}

/**
 * Checks one relay address before the tab dials it, so a wrong one is named with what was expected
 * instead of a bare multiaddr parse error: a multiaddr over WebSockets (ws/wss, the only transport
 * a tab dials a relay with) that ends with the relay's peer id.
 */
export function checkRelayAddress (text: string): string {
  const bad = (why: string): RelayAddressError => new RelayAddressError(`relay address "${text}" ${why}; a relay address looks like ${RELAY_EXAMPLE}`)
  let components
  try {
    components = multiaddr(text).getComponents()
  } catch (err) {
    throw bad(`is not a multiaddr (${(err as Error).message})`)
  }
  const names = components.map(c => c.name)
  if (!names.includes('ws') && !names.includes('wss')) throw bad('has no /ws or /wss part (a browser reaches a relay over WebSockets)')
  const id = components.findLast(c => c.name === 'p2p')?.value
  if (id == null || names.at(-1) !== 'p2p') throw bad('does not end with /p2p/<the relay\'s peer id>')
  try {
    peerIdFromString(id)
  } catch {
    throw bad(`ends with "${id}", which is not a peer id`)
  }
  return text
}

/** `volunteer`: the threads and slots the volunteer chose in the page (`?threads=` still wins). */
export async function loadConfig (volunteer?: Pick<VolunteerSettings, 'threads' | 'slots'>): Promise<TabConfig> {
  const params = new URLSearchParams(location.search)
  let served: Partial<TabConfig> & { relay?: string } = {}
  try {
    const res = await fetch('/config.json', { cache: 'no-store' })
    if (res.ok) served = await res.json() as Partial<TabConfig>
  } catch {
    // offline or served without the relay: rely on URL parameters
  }
  const fromUrl = params.getAll('relay').flatMap(r => r.split(',')).map(r => r.trim()).filter(r => r !== '')
  const relays = fromUrl.length > 0 ? fromUrl : (served.relays ?? (served.relay != null ? [served.relay] : []))
  if (relays.length === 0) throw new RelayAddressError(`no relay address: serve the app with \`npm start\` or add ?relay=<address> to the URL; a relay address looks like ${RELAY_EXAMPLE}`)
  relays.forEach(checkRelayAddress)
  const backend = (params.get('backend') ?? 'auto') as BackendSetting
  const ice = params.get('ice') ?? savedIceServers()
  return {
    relays,
    backend: ['auto', 'wasm', 'webgpu'].includes(backend) ? backend : 'auto',
    allowFallbackAdapter: params.get('allowFallbackAdapter') === '1',
    // Local and LAN use is the point of `npm start`; ?private=0 turns it off for internet deployments.
    allowPrivateAddresses: params.get('private') !== '0',
    iceServers: ice != null ? parseIceServers(ice) : (served.iceServers ?? []),
    threads: wholeParam(params.get('threads')) ?? volunteer?.threads ?? Math.min(4, navigator.hardwareConcurrency || 1),
    slots: volunteer?.slots ?? 1,
    batch: wholeParam(params.get('batch'))
  }
}

function wholeParam (value: string | null): number | undefined {
  const n = Number(value ?? '')
  return value != null && Number.isInteger(n) && n >= 1 ? n : undefined
}

const ICE_KEY = 'p2p-ai-agents:ice'

/** ICE servers the user set in the page (kept in localStorage), as the `?ice=` text. */
export function savedIceServers (): string | null {
  try {
    return localStorage.getItem(ICE_KEY)
  } catch {
    return null
  }
}

/** Saves the page's ICE servers (empty clears them); they apply from the next load. */
export function saveIceServers (text: string): void {
  const value = text.trim()
  if (value === '') localStorage.removeItem(ICE_KEY)
  else {
    parseIceServers(value)
    localStorage.setItem(ICE_KEY, value)
  }
}

/**
 * `stun:host:port,turn:user:pass@host:port,…` → RTCIceServer[]. Credentials in a TURN URL are
 * split out, since browsers refuse them inside `urls`. Throws on anything that is not stun:/turn:/turns:.
 */
export function parseIceServers (text: string): RTCIceServer[] {
  return text.split(',').map(s => s.trim()).filter(s => s !== '').map(url => {
    const m = /^(stun|turns?):(?:([^:@]+):([^@]+)@)?(.+)$/.exec(url)
    if (m == null) throw new Error(`not an ICE server URL: ${url} (expected stun:host:port or turn:user:pass@host:port)`)
    const [, scheme, username, credential, rest] = m
    return username != null ? { urls: `${scheme}:${rest}`, username, credential } : { urls: `${scheme}:${rest}` }
  })
}

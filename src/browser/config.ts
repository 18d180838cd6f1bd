/** Where this tab finds its relay and how it runs: /config.json from the server, URL parameters override. */
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
}

export async function loadConfig (): Promise<TabConfig> {
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
  if (relays.length === 0) throw new Error('no relay address: serve the app with `npm start` or add ?relay=<multiaddr> to the URL')
  const backend = (params.get('backend') ?? 'auto') as BackendSetting
  const ice = params.get('ice') ?? savedIceServers()
  return {
    relays,
    backend: ['auto', 'wasm', 'webgpu'].includes(backend) ? backend : 'auto',
    allowFallbackAdapter: params.get('allowFallbackAdapter') === '1',
    // Local and LAN use is the point of `npm start`; ?private=0 turns it off for internet deployments.
    allowPrivateAddresses: params.get('private') !== '0',
    iceServers: ice != null ? parseIceServers(ice) : (served.iceServers ?? []),
    threads: Number(params.get('threads') ?? Math.min(4, navigator.hardwareConcurrency || 1))
  }
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

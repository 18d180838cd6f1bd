/** Where this tab finds its relay and how it runs: /config.json from the server, URL parameters override. */
/** auto: measure WASM (1 and N threads) and WebGPU per model; wasm: WASM only; webgpu: WebGPU only. */
export type BackendSetting = 'auto' | 'wasm' | 'webgpu'

export interface TabConfig {
  relay: string
  backend: BackendSetting
  allowFallbackAdapter: boolean
  /** Allow dialling loopback/private addresses (LAN and tests). */
  allowPrivateAddresses: boolean
  iceServers: RTCIceServer[]
  threads: number
}

export async function loadConfig (): Promise<TabConfig> {
  const params = new URLSearchParams(location.search)
  let served: Partial<TabConfig> = {}
  try {
    const res = await fetch('/config.json', { cache: 'no-store' })
    if (res.ok) served = await res.json() as Partial<TabConfig>
  } catch {
    // offline or served without the relay: rely on URL parameters
  }
  const relay = params.get('relay') ?? served.relay
  if (relay == null || relay === '') throw new Error('no relay address: serve the app with `npm start` or add ?relay=<multiaddr> to the URL')
  const backend = (params.get('backend') ?? 'auto') as BackendSetting
  const ice = params.get('ice')
  return {
    relay,
    backend: ['auto', 'wasm', 'webgpu'].includes(backend) ? backend : 'auto',
    allowFallbackAdapter: params.get('allowFallbackAdapter') === '1',
    // Local and LAN use is the point of `npm start`; ?private=0 turns it off for internet deployments.
    allowPrivateAddresses: params.get('private') !== '0',
    iceServers: ice != null ? ice.split(',').map(urls => ({ urls })) : (served.iceServers ?? []),
    threads: Number(params.get('threads') ?? Math.min(4, navigator.hardwareConcurrency || 1))
  }
}

/**
 * The relay's libp2p node: WebSockets listener (wss with a certificate), circuit relay v2 server,
 * identify, ping, and discovery (gossipsub backbone, advert table, sync for joining peers); linked
 * to the other relays of the network.
 */
import { createLibp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { Circuit, WebSockets, WebSocketsSecure } from '@multiformats/multiaddr-matcher'
import { discoveryGossip } from '../src/net/gossip.js'
import { discovery } from '../src/net/discovery-service.js'
import { NOT_A_WORKER } from '../src/core/discovery/advert.js'
import { RelayLinks } from './relay-links.js'
import { AddressAdmission } from './admission.js'
import type { AdmissionLimits } from './admission.js'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Discovery } from '../src/net/discovery-service.js'
import type { PacerOptions } from '../src/core/discovery/pacer.js'
import type { AdvertTableOptions } from '../src/core/discovery/table.js'

/**
 * New connections a second accepted from one IP address. libp2p's default of 5 refuses the 6th tab
 * of one browser, or the 6th worker on one host, joining within a second; 50 still caps a flood.
 */
export const DEFAULT_INBOUND_PER_SECOND = 50
/**
 * How long an inbound connection may take to finish its handshake (Noise and yamux: a few round
 * trips). libp2p's 10 s let each silent socket hold a handshake slot twice as long.
 */
export const INBOUND_HANDSHAKE_TIMEOUT_MS = 5_000
/** Handshakes in progress for the whole relay; each address gets its own share (see admission.ts). */
const MAX_PENDING_HANDSHAKES = 256

export interface RelayNodeOptions {
  host: string
  port: number
  privateKey?: PrivateKey
  /** New connections accepted per second from one IP address (default DEFAULT_INBOUND_PER_SECOND). */
  inboundConnectionThreshold?: number
  /** Per-address caps on handshakes in progress and on connections held (admission.ts has the defaults). */
  admission?: AdmissionLimits
  /** Other relays to link to (multiaddrs with /p2p/<id>). */
  bootstrap?: string[]
  /** PEM certificate and key: listen on wss instead of ws. */
  tls?: { cert: string, key: string }
  discovery?: { table?: AdvertTableOptions, pacer?: PacerOptions }
}

export interface RelayServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  relay: unknown
  pubsub: GossipSub
  discovery: Discovery
}

export interface RelayNode {
  node: Libp2p<RelayServices>
  links: RelayLinks
  admission: AddressAdmission
  stop(): Promise<void>
}

/** A relay advertises the WebSocket addresses peers and other relays dial it on. */
function relayDialable (addrs: Multiaddr[]): Multiaddr[] {
  return addrs.filter(a => (WebSockets.matches(a) || WebSocketsSecure.matches(a)) && !Circuit.matches(a))
}

export async function startRelayNode (options: RelayNodeOptions): Promise<RelayNode> {
  const secure = options.tls != null
  const admission = new AddressAdmission(options.admission)
  // A socket that opens TCP and never finishes its HTTP upgrade request holds no handshake slot,
  // but is dropped after this long instead of Node's 60 s.
  const http = { headersTimeout: INBOUND_HANDSHAKE_TIMEOUT_MS, requestTimeout: INBOUND_HANDSHAKE_TIMEOUT_MS }
  const node = await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: [`/ip4/${options.host}/tcp/${options.port}/${secure ? 'tls/ws' : 'ws'}`] },
    transports: [webSockets(secure ? { https: { ...http, cert: options.tls!.cert, key: options.tls!.key } } : { http })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // libp2p's 10 handshakes at once, each up to 10 s, let a dozen silent sockets lock everyone out:
    // a larger pool, a shorter handshake, and a per-address share of it (the gater).
    connectionManager: {
      maxConnections: 4096,
      maxIncomingPendingConnections: MAX_PENDING_HANDSHAKES,
      inboundUpgradeTimeout: INBOUND_HANDSHAKE_TIMEOUT_MS,
      inboundConnectionThreshold: options.inboundConnectionThreshold ?? DEFAULT_INBOUND_PER_SECOND
    },
    connectionGater: admission.gater(),
    services: {
      identify: identify(),
      ping: ping(),
      // Relayed circuits carry only WebRTC signalling, so the default data/time limits stay.
      // A requester dialling many workers through this relay opens one hop stream per dial:
      // libp2p's default of 32 per connection capped it at 32 workers per relay.
      relay: circuitRelayServer({ reservations: { maxReservations: 4096 }, maxInboundHopStreams: 256 }),
      pubsub: discoveryGossip('relay'),
      discovery: discovery({ kind: 'relay', dialable: relayDialable, ...options.discovery })
    }
  })
  node.services.discovery.advertise(() => ({ ...NOT_A_WORKER, kind: 'relay' }))
  const links = new RelayLinks(node)
  links.start(options.bootstrap ?? [], node.services.discovery.table)
  return {
    node,
    links,
    admission,
    stop: async () => {
      links.stop()
      await node.stop()
    }
  }
}

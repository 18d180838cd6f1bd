/** The libp2p node of a tab or a Node peer: same code in both places, every protocol a service. */
import { createLibp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { webRTC } from '@libp2p/webrtc'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { discoveryGossip } from './gossip.js'
import { discovery } from './discovery-service.js'
import { directConnections } from './direct-connections.js'
import { taskProtocol } from './task-service.js'
import { modelTransfer } from './model-service.js'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Discovery, DiscoveryInit } from './discovery-service.js'
import type { DirectConnections, DirectConnectionsInit } from './direct-connections.js'
import type { TaskProtocol, TaskProtocolInit } from './task-service.js'
import type { ModelTransfer, ModelTransferInit } from './model-service.js'

/** Relays held at once: one reservation per `/p2p-circuit` listen address. */
export const RELAYS_HELD = 2

export interface PeerOptions {
  privateKey?: PrivateKey
  /** ICE servers for WebRTC; [] on a LAN or loopback, STUN/TURN across the internet. */
  iceServers?: RTCIceServer[]
  /** Let the node dial loopback/private addresses (tests and LAN use); libp2p refuses them by default. */
  allowPrivateAddresses?: boolean
  discovery: DiscoveryInit
  connections?: DirectConnectionsInit
  tasks?: TaskProtocolInit
  models: ModelTransferInit
}

export interface PeerServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  discovery: Discovery
  connections: DirectConnections
  tasks: TaskProtocol
  models: ModelTransfer
}

export type Peer = Libp2p<PeerServices>

export async function createPeer (options: PeerOptions): Promise<Peer> {
  return await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: [...Array<string>(RELAYS_HELD).fill('/p2p-circuit'), '/webrtc'] },
    transports: [
      webSockets(),
      webRTC({ rtcConfiguration: { iceServers: options.iceServers ?? [] } }),
      circuitRelayTransport()
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: options.allowPrivateAddresses === true ? { denyDialMultiaddr: () => false } : undefined,
    // Every peer dialling us over WebRTC first reaches us through a relayed (signalling) connection
    // whose remote address is the relay's: libp2p's default limit of 5 inbound connections a second
    // per address would refuse the 6th requester that dials us within a second.
    // A WebRTC dial is signalling through a relay, ICE and DTLS: on a loaded machine that can take
    // longer than libp2p's 6 s per address, and the caller bounds the whole dial anyway.
    connectionManager: { inboundConnectionThreshold: 100, addressDialTimeout: 15_000, dialTimeout: 30_000 },
    // Order matters: each service may use the ones before it.
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: discoveryGossip('peer'),
      discovery: discovery(options.discovery),
      connections: directConnections(options.connections),
      tasks: taskProtocol(options.tasks),
      models: modelTransfer(options.models)
    }
  })
}

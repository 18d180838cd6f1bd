/** The libp2p node of a tab or a Node worker: same code in both places. */
import { createLibp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { webRTC } from '@libp2p/webrtc'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'

export interface PeerOptions {
  privateKey?: PrivateKey
  /** ICE servers for WebRTC; [] on a LAN or loopback, STUN/TURN across the internet. */
  iceServers?: RTCIceServer[]
  /** Let the node dial loopback/private addresses (tests and LAN use); libp2p refuses them by default. */
  allowPrivateAddresses?: boolean
}

export type Peer = Libp2p<{ identify: Identify, ping: Ping }>

export async function createPeer (options: PeerOptions = {}): Promise<Peer> {
  return await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: ['/p2p-circuit', '/webrtc'] },
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
    // per address would refuse the 6th peer that dials us within a second (a newcomer is dialled by
    // every peer with a lower id at once).
    connectionManager: { inboundConnectionThreshold: 100 },
    services: {
      identify: identify(),
      ping: ping()
    }
  })
}

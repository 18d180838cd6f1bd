/** The relay's libp2p node: WebSockets listener, circuit relay v2 server, identify, ping, directory. */
import { createLibp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { DirectoryServer } from '../src/net/directory-server.js'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

/**
 * New connections a second accepted from one IP address. libp2p's default of 5 refuses the 6th tab
 * of one browser, or the 6th worker on one host, joining within a second; 50 still caps a flood.
 */
export const DEFAULT_INBOUND_PER_SECOND = 50

export interface RelayNodeOptions {
  host: string
  port: number
  privateKey?: PrivateKey
  /** New connections accepted per second from one IP address (default DEFAULT_INBOUND_PER_SECOND). */
  inboundConnectionThreshold?: number
}

export interface RelayNode {
  node: Libp2p
  directory: DirectoryServer
}

export async function startRelayNode (options: RelayNodeOptions): Promise<RelayNode> {
  const node = await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: [`/ip4/${options.host}/tcp/${options.port}/ws`] },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 4096, inboundConnectionThreshold: options.inboundConnectionThreshold ?? DEFAULT_INBOUND_PER_SECOND },
    services: {
      identify: identify(),
      ping: ping(),
      // Relayed circuits carry only WebRTC signalling, so the default data/time limits stay.
      relay: circuitRelayServer({ reservations: { maxReservations: 4096 } })
    }
  })
  const directory = new DirectoryServer()
  await directory.start(node)
  return { node, directory }
}

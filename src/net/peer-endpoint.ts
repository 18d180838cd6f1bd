/**
 * Where a worker's direct connection really comes from, for telling workers apart
 * (core/diversity.ts): the remote address of the ICE candidate pair WebRTC selected, and the relay
 * the connection was signalled through. A peer id costs nothing; an address does.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { directWebRTC } from './connection-kind.js'
import type { Connection, PeerId } from '@libp2p/interface'
import type { PeerEndpoint } from '../core/diversity.js'

interface StatsLike { forEach(cb: (value: Record<string, unknown>) => void): void }
interface PeerConnectionLike { getStats(): Promise<StatsLike> }

/**
 * libp2p does not expose the RTCPeerConnection under a WebRTC connection; its multiaddr
 * connection holds it (@libp2p/webrtc's RTCPeerConnectionMultiaddrConnection). Read defensively:
 * a missing field means the address is unknown, never an error.
 */
function peerConnectionOf (connection: Connection): PeerConnectionLike | undefined {
  const pc = (connection as unknown as { maConn?: { peerConnection?: unknown } }).maConn?.peerConnection as PeerConnectionLike | undefined
  return typeof pc?.getStats === 'function' ? pc : undefined
}

/** The remote address of the selected candidate pair, if WebRTC reports one. */
async function remoteIp (connection: Connection): Promise<string | undefined> {
  const pc = peerConnectionOf(connection)
  if (pc == null) return undefined
  const stats = await pc.getStats()
  const all = new Map<string, Record<string, unknown>>()
  let pairId: string | undefined
  stats.forEach(v => {
    if (typeof v.id === 'string') all.set(v.id, v)
    if (v.type === 'transport' && typeof v.selectedCandidatePairId === 'string') pairId = v.selectedCandidatePairId
  })
  let pair = pairId != null ? all.get(pairId) : undefined
  pair ??= [...all.values()].find(v => v.type === 'candidate-pair' && v.state === 'succeeded' && v.nominated === true)
  const remote = typeof pair?.remoteCandidateId === 'string' ? all.get(pair.remoteCandidateId) : undefined
  const ip = remote?.address ?? remote?.ip
  return typeof ip === 'string' && ip !== '' ? ip : undefined
}

/** The relay in a circuit address (/p2p/<relay>/p2p-circuit/...), if any. */
function relayOf (connection: Connection): string | undefined {
  const components = connection.remoteAddr.getComponents()
  const circuit = components.findIndex(c => c.name === 'p2p-circuit')
  const relay = circuit > 0 ? components[circuit - 1] : undefined
  return relay?.name === 'p2p' ? relay.value : undefined
}

/** The endpoint of our direct WebRTC connection to `peer`, or undefined without one. */
export async function peerEndpoint (connections: Connection[]): Promise<PeerEndpoint | undefined> {
  const connection = directWebRTC(connections)
  if (connection == null) return undefined
  return { ip: await remoteIp(connection).catch(() => undefined), relay: relayOf(connection) }
}

/** Binds peerEndpoint to a node's connections, as JobRunner's `endpoint` option wants it. */
export function endpointLookup (node: { getConnections(peer?: PeerId): Connection[] }): (peerId: string) => Promise<PeerEndpoint | undefined> {
  return async (peerId) => await peerEndpoint(node.getConnections(peerIdFromString(peerId)))
}

/** How we reach a peer: tasks only ever go over a direct WebRTC connection. */
import type { Connection } from '@libp2p/interface'

export type ConnectionKind = 'direct WebRTC' | 'relayed' | 'direct'

export function connectionKind (connection: Connection): ConnectionKind {
  const protos = connection.remoteAddr.getComponents().map(c => c.name)
  if (connection.limits != null || (protos.includes('p2p-circuit') && !protos.includes('webrtc'))) return 'relayed'
  return protos.includes('webrtc') ? 'direct WebRTC' : 'direct'
}

/** Open, unlimited WebRTC connections to a peer, newest first (an older one may be dying unnoticed). */
export function directWebRTCs (connections: Connection[]): Connection[] {
  return connections
    .filter(c => c.status === 'open' && connectionKind(c) === 'direct WebRTC')
    .sort((a, b) => b.timeline.open - a.timeline.open)
}

/** The newest open, unlimited WebRTC connection to a peer, if any. */
export function directWebRTC (connections: Connection[]): Connection | undefined {
  return directWebRTCs(connections)[0]
}

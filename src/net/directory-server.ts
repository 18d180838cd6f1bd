/** The relay's side of the peer directory: who is registered, pushed to everyone on each change. */
import { logger } from '@libp2p/logger'
import { DIRECTORY_PROTOCOL, MAX_DIRECTORY_FRAME, decodeRegister, encodeSnapshot } from '../core/directory-codec.js'
import { lengthPrefixed, LengthPrefixedReader } from '../core/framing.js'
import type { Libp2p, Stream } from '@libp2p/interface'
import type { DirectoryPeer } from '../core/directory-codec.js'

const log = logger('p2p-ai-agents:directory-server')

export class DirectoryServer {
  private readonly entries = new Map<string, { peer: DirectoryPeer, stream: Stream }>()
  private scheduled = false

  get size (): number {
    return this.entries.size
  }

  async start (node: Libp2p): Promise<void> {
    await node.handle(DIRECTORY_PROTOCOL, (stream, connection) => {
      const peerId = connection.remotePeer.toString()
      const reader = new LengthPrefixedReader(MAX_DIRECTORY_FRAME)
      stream.addEventListener('message', (evt) => {
        try {
          for (const body of reader.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())) {
            const addrs = decodeRegister(body).filter(a => a.includes(peerId))
            this.entries.get(peerId)?.stream.abort(new Error('replaced by a newer registration'))
            this.entries.set(peerId, { peer: { peerId, addrs }, stream })
            log('registered %s', peerId)
            this.broadcast()
          }
        } catch (err) {
          stream.abort(err as Error)
        }
      })
      stream.addEventListener('close', () => {
        if (this.entries.get(peerId)?.stream === stream) {
          this.entries.delete(peerId)
          log('left %s', peerId)
          this.broadcast()
        }
      })
    }, { maxInboundStreams: 2 })
  }

  /** Coalesces bursts of joins/leaves into one snapshot per tick. */
  private broadcast (): void {
    if (this.scheduled) return
    this.scheduled = true
    setTimeout(() => {
      this.scheduled = false
      const frame = lengthPrefixed(encodeSnapshot([...this.entries.values()].map(e => e.peer)))
      for (const { stream } of this.entries.values()) {
        if (stream.status === 'open') stream.send(frame)
      }
    }, 5)
  }
}

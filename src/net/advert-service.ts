/**
 * Capability adverts over libp2p: when a direct WebRTC connection opens, each side subscribes to
 * the other's adverts by opening `/p2p-ai-agents/advert/1.0.0`; the publisher writes its current
 * advert at once and again whenever it changes (coalesced), so requesters always know who can run
 * what, how fast, and who is paused.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { ADVERT_PROTOCOL, MAX_ADVERT_FRAME, NOT_A_WORKER, decodeAdvert, encodeAdvert } from '../core/discovery/advert.js'
import { lengthPrefixed, LengthPrefixedReader } from '../core/framing.js'
import { connectionKind } from './connection-kind.js'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { Advert } from '../core/discovery/advert.js'

export class AdvertService extends EventTarget {
  /** The latest advert of each directly connected peer. */
  readonly adverts = new Map<string, Advert>()
  private readonly node: Libp2p
  /** Builds our advert when it is sent: changes within `coalesceMs` cost one build and one encode. */
  private source: () => Advert = () => NOT_A_WORKER
  private readonly subscribers = new Set<Stream>()
  private flushTimer?: ReturnType<typeof setTimeout>
  private readonly coalesceMs: number

  constructor (node: Libp2p, options: { coalesceMs?: number } = {}) {
    super()
    this.node = node
    this.coalesceMs = options.coalesceMs ?? 100
  }

  async start (): Promise<void> {
    await this.node.handle(ADVERT_PROTOCOL, (stream) => {
      this.subscribers.add(stream)
      stream.addEventListener('close', () => { this.subscribers.delete(stream) })
      if (stream.status === 'open') stream.send(this.frame())
    }, { runOnLimitedConnection: false, maxInboundStreams: 2 })
    this.node.addEventListener('connection:open', (evt) => { void this.subscribe(evt.detail) })
    this.node.addEventListener('connection:close', (evt) => { this.onClose(evt.detail) })
    for (const c of this.node.getConnections()) void this.subscribe(c)
  }

  /** Says what we advertise (called again whenever it changes); subscribers get it within `coalesceMs`. */
  publish (source: () => Advert): void {
    this.source = source
    if (this.flushTimer != null) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      const frame = this.frame()
      for (const s of this.subscribers) if (s.status === 'open') s.send(frame)
    }, this.coalesceMs)
  }

  private frame (): Uint8Array {
    return lengthPrefixed(encodeAdvert(this.source()))
  }

  private async subscribe (connection: Connection, attempt = 1): Promise<void> {
    if (connectionKind(connection) !== 'direct WebRTC') return
    const peerId = connection.remotePeer.toString()
    let stream: Stream
    try {
      stream = await connection.newStream(ADVERT_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    } catch {
      // Without its advert a connected worker would never get batch work: try again while the
      // connection lives (a peer that does not speak adverts at all is only asked three times).
      if (connection.status === 'open' && attempt < 3) setTimeout(() => { void this.subscribe(connection, attempt + 1) }, 1000 * attempt)
      return
    }
    const reader = new LengthPrefixedReader(MAX_ADVERT_FRAME)
    stream.addEventListener('message', (evt) => {
      try {
        for (const body of reader.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())) {
          const advert = decodeAdvert(body)
          this.adverts.set(peerId, advert)
          this.dispatchEvent(new CustomEvent('advert', { detail: { peerId, advert } }))
        }
      } catch (err) {
        stream.abort(err as Error)
      }
    })
  }

  private onClose (connection: Connection): void {
    const peerId = connection.remotePeer.toString()
    const stillDirect = this.node.getConnections(peerIdFromString(peerId)).some(c => c !== connection && c.status === 'open' && connectionKind(c) === 'direct WebRTC')
    if (stillDirect || !this.adverts.has(peerId)) return
    this.adverts.delete(peerId)
    this.dispatchEvent(new CustomEvent('gone', { detail: { peerId } }))
  }
}

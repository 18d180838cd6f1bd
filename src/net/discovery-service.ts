/**
 * Discovery as a libp2p service: capability adverts over gossipsub (topic DISCOVERY_TOPIC, relays
 * as the backbone mesh), each signed by its publisher and checked by every peer and relay before
 * it is passed on; an expiring table of the newest advert per peer; and a one-shot sync protocol
 * through which a peer that just reached a relay gets that relay's table instead of waiting for
 * heartbeats. `start()` subscribes and registers, `stop()` says goodbye and removes all of it.
 */
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { WebRTC } from '@multiformats/multiaddr-matcher'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import {
  DISCOVERY_SYNC_PROTOCOL, DISCOVERY_TOPIC, MAX_ADVERT_BYTES, decodeAdvertBody, decodeSigned, encodeAdvertBody, encodeSigned, signingBytes
} from '../core/discovery/codec.js'
import { AdvertTable } from '../core/discovery/table.js'
import { PublishPacer } from '../core/discovery/pacer.js'
import { lengthPrefixed, LengthPrefixedReader } from '../core/framing.js'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, PrivateKey, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Advert, PeerKind } from '../core/discovery/advert.js'
import type { AcceptResult, AdvertTableOptions } from '../core/discovery/table.js'
import type { PacerOptions } from '../core/discovery/pacer.js'

/** Largest public key accepted in an advert: Ed25519 and secp256k1 fit, RSA (costly to verify) does not. */
const MAX_PUBLIC_KEY_BYTES = 64
const SYNC_TIMEOUT_MS = 10_000
/** A peer gets one sync answer per this long (it asks once per relay it reaches). */
export const SYNC_COOLDOWN_MS = 5_000
/** Peers remembered for the cooldown at once: a flood of new identities is refused beyond it. */
const MAX_SYNC_CLIENTS = 4096
/**
 * Most bytes in one sync answer, on both sides: 10,000 adverts of 1.6 KiB (real ones are a few
 * hundred bytes). The sender stops there (gossip brings the rest); the reader aborts past it
 * instead of reading on, since it ingests adverts as they arrive and never holds the whole answer.
 */
export const MAX_SYNC_ANSWER_BYTES = 16 * 1024 * 1024

/** A sync answer broke a bound (too many adverts or bytes) or did not finish in time. */
export class DiscoverySyncError extends Error {
  override readonly name = 'DiscoverySyncError'
}

export interface DiscoveryInit {
  kind: PeerKind
  table?: AdvertTableOptions
  pacer?: PacerOptions
  /** Which of our addresses an advert lists (default: relayed WebRTC addresses; relays pass their own). */
  dialable?: (addrs: Multiaddr[]) => Multiaddr[]
}

export interface DiscoveryComponents {
  peerId: PeerId
  privateKey: PrivateKey
  registrar: Registrar
  addressManager: AddressManager
  connectionManager: ConnectionManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  pubsub: GossipSub
}

/** Discovery traffic counters, for the scale bench and /metrics. */
export interface DiscoveryStats {
  published: number
  publishedBytes: number
  received: number
  receivedBytes: number
  rejected: number
  synced: number
}

export class Discovery implements Startable {
  readonly table: AdvertTable
  readonly stats: DiscoveryStats = { published: 0, publishedBytes: 0, received: 0, receivedBytes: 0, rejected: 0, synced: 0 }
  private readonly components: DiscoveryComponents
  private readonly init: DiscoveryInit
  private readonly log: Logger
  private readonly pacer: PublishPacer
  private source?: () => Advert
  /** When each peer last got a sync answer from us. */
  private readonly syncedAt = new Map<string, number>()
  /** Our last advert went to no peer (we published before any gossip peer subscribed). */
  private reachedNobody = false
  /** Our own latest signed advert, served in sync answers too. */
  private latest?: Uint8Array
  private seq = 0
  private publicKey?: Uint8Array
  private started = false

  constructor (components: DiscoveryComponents, init: DiscoveryInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('p2p-ai-agents:discovery')
    this.table = new AdvertTable(init.table)
    this.pacer = new PublishPacer(() => {
      const advert = this.advertNow(false)
      if (advert == null) return false
      this.publishNow(advert).catch(err => { this.log.error('publishing our advert failed: %e', err) })
    }, init.pacer)
  }

  readonly [Symbol.toStringTag] = 'p2p-ai-agents/discovery'

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    this.publicKey = publicKeyToProtobuf(this.components.privateKey.publicKey)
    await this.components.registrar.handle(DISCOVERY_SYNC_PROTOCOL, this.serveSync, { maxInboundStreams: 4, runOnLimitedConnection: false })
    this.started = true
  }

  /** gossipsub starts alongside us: subscribe once every service is up. */
  afterStart (): void {
    const { pubsub } = this.components
    pubsub.topicValidators.set(DISCOVERY_TOPIC, this.validate)
    pubsub.subscribe(DISCOVERY_TOPIC)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.components.events.addEventListener('self:peer:update', this.onSelfUpdate)
    this.pacer.start()
  }

  /** Tells the network we are leaving while gossipsub can still carry it. */
  async beforeStop (): Promise<void> {
    this.pacer.stop()
    const goodbye = this.advertNow(true)
    if (goodbye != null) await this.publishNow(goodbye).catch(() => {})
  }

  async stop (): Promise<void> {
    this.pacer.stop()
    this.table.stop()
    const { pubsub } = this.components
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    this.components.events.removeEventListener('self:peer:update', this.onSelfUpdate)
    if (pubsub.topicValidators.get(DISCOVERY_TOPIC) === this.validate) pubsub.topicValidators.delete(DISCOVERY_TOPIC)
    try { pubsub.unsubscribe(DISCOVERY_TOPIC) } catch {}
    await this.components.registrar.unhandle(DISCOVERY_SYNC_PROTOCOL)
    this.started = false
  }

  /** What we advertise, read at each publication; undefined publishes nothing. */
  advertise (source: (() => Advert) | undefined): void {
    this.source = source
    this.pacer.changed()
  }

  /** Something material in our advert changed: publish it soon (rate-limited). */
  changed (): void {
    this.pacer.changed()
  }

  /** The addresses a peer's advert lists, if we know it. */
  addrsOf (peerId: string): string[] | undefined {
    return this.table.get(peerId)?.advert.addrs
  }

  /**
   * Asks `peer` (a relay) for the newest advert of every peer it knows; each one is verified like
   * a gossiped one. Resolves with how many were new to us.
   */
  async sync (peer: PeerId): Promise<number> {
    const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS)
    const stream = await this.components.connectionManager.openStream(peer, DISCOVERY_SYNC_PROTOCOL, { signal })
    // We send nothing: close our writing end now, so the stream closes once the relay has written.
    stream.close({ signal }).catch(() => {})
    const reader = new LengthPrefixedReader(MAX_ADVERT_BYTES)
    const maxEntries = this.init.table?.maxEntries ?? 10_000
    let seen = 0
    let bytes = 0
    let fresh = 0
    const work: Array<Promise<void>> = []
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { stream.abort(new DiscoverySyncError('discovery sync timed out')); reject(new DiscoverySyncError('discovery sync timed out')) }
      signal.addEventListener('abort', onAbort, { once: true })
      stream.addEventListener('message', (evt) => {
        try {
          bytes += evt.data.byteLength
          if (bytes > MAX_SYNC_ANSWER_BYTES) throw new DiscoverySyncError(`sync answer over ${MAX_SYNC_ANSWER_BYTES} bytes`)
          for (const body of reader.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())) {
            if (++seen > maxEntries) throw new DiscoverySyncError(`sync sent more than ${maxEntries} adverts`)
            work.push(this.ingest(body).then(r => { if (r === 'accepted') fresh++ }))
          }
        } catch (err) {
          stream.abort(err as Error)
        }
      })
      stream.addEventListener('close', (evt) => {
        signal.removeEventListener('abort', onAbort)
        if (evt.error != null) reject(evt.error)
        else resolve()
      })
    })
    await Promise.all(work)
    this.stats.synced += fresh
    return fresh
  }

  private readonly validate = async (_from: PeerId, msg: Message): Promise<TopicValidatorResult> => {
    this.stats.received++
    this.stats.receivedBytes += msg.data.byteLength
    const result = await this.ingest(msg.data)
    if (result === 'invalid') {
      this.stats.rejected++
      return TopicValidatorResult.Reject
    }
    // Only news travels on: a stale or flooding copy stops here.
    return result === 'accepted' || result === 'left' ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore
  }

  /** Verifies a signed advert and files it in the table. */
  private async ingest (signed: Uint8Array): Promise<AcceptResult | 'invalid' | 'self'> {
    try {
      const s = decodeSigned(signed)
      if (s.publicKey.byteLength > MAX_PUBLIC_KEY_BYTES) return 'invalid'
      const key = publicKeyFromProtobuf(s.publicKey)
      const peerId = peerIdFromPublicKey(key)
      if (peerId.equals(this.components.peerId)) return 'self'
      if (!(await key.verify(signingBytes(s.body), s.signature))) return 'invalid'
      const { envelope, addrs } = decodeAdvertBody(s.body)
      const id = peerId.toString()
      const parsed = addrs.map(bytes => multiaddr(bytes))
      // An advert may only list addresses that lead to its own publisher.
      if (parsed.some(ma => lastPeerId(ma) !== id)) return 'invalid'
      return this.table.accept(id, { ...envelope, advert: { ...envelope.advert, addrs: parsed.map(ma => ma.toString()) } }, signed)
    } catch (err) {
      this.log('dropping an advert: %e', err)
      return 'invalid'
    }
  }

  /** The advert body to publish now, or undefined when there is nothing to say yet. */
  private advertNow (leaving: boolean): Uint8Array | undefined {
    const advert = this.source?.()
    if (advert == null || this.publicKey == null) return
    const own = this.components.addressManager.getAddresses()
    const addrs = (this.init.dialable ?? defaultDialable)(own)
    // A peer nobody can dial yet publishes once a relay reservation gives it an address.
    if (!leaving && addrs.length === 0) return
    this.seq = Math.max(this.seq + 1, Date.now())
    return encodeAdvertBody({ seq: this.seq, leaving, advert }, addrs.map(a => a.bytes))
  }

  private async publishNow (body: Uint8Array): Promise<void> {
    if (this.publicKey == null) return
    const signature = await this.components.privateKey.sign(signingBytes(body))
    const signed = encodeSigned({ publicKey: this.publicKey, body, signature })
    this.latest = signed
    const { recipients } = await this.components.pubsub.publish(DISCOVERY_TOPIC, signed)
    this.reachedNobody = recipients.length === 0
    this.stats.published++
    this.stats.publishedBytes += signed.byteLength
  }

  private readonly serveSync = (stream: Stream, connection: Connection): void => {
    // A whole table per request: one answer per peer per SYNC_COOLDOWN_MS, so asking in a loop amplifies nothing.
    const now = Date.now()
    const peer = connection.remotePeer.toString()
    if (now - (this.syncedAt.get(peer) ?? Number.NEGATIVE_INFINITY) < SYNC_COOLDOWN_MS) {
      stream.abort(new Error('discovery sync asked again too soon'))
      return
    }
    if (this.syncedAt.size >= MAX_SYNC_CLIENTS) {
      for (const [id, at] of this.syncedAt) if (now - at >= SYNC_COOLDOWN_MS) this.syncedAt.delete(id)
    }
    if (this.syncedAt.size >= MAX_SYNC_CLIENTS) {
      stream.abort(new Error('too many discovery syncs at once'))
      return
    }
    this.syncedAt.set(peer, now)
    const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS)
    // Our own first, then the table, up to the byte budget; the deadline bounds a reader that stalls.
    const entries = [...(this.latest != null ? [this.latest] : []), ...[...this.table.all()].map(e => e.signed)]
    void (async () => {
      let budget = MAX_SYNC_ANSWER_BYTES
      for (const signed of entries) {
        const frame = lengthPrefixed(signed)
        budget -= frame.byteLength
        if (budget < 0) break
        if (!stream.send(frame)) await stream.onDrain({ signal })
      }
      await stream.close({ signal })
    })().catch(err => { stream.abort(err as Error) })
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    // A peer that just joined our topic (a relay we reconnected to) has not heard our advert.
    if (!evt.detail.subscriptions.some(s => s.topic === DISCOVERY_TOPIC && s.subscribe)) return
    if (this.reachedNobody) {
      this.reachedNobody = false
      this.pacer.retry()
    } else {
      this.pacer.changed()
    }
  }

  private readonly onSelfUpdate = (): void => {
    this.pacer.changed()
  }
}

function lastPeerId (ma: Multiaddr): string | undefined {
  return ma.getComponents().findLast(c => c.name === 'p2p')?.value
}

/** Relayed WebRTC addresses: what another peer dials to reach us directly. */
function defaultDialable (addrs: Multiaddr[]): Multiaddr[] {
  return addrs.filter(a => WebRTC.matches(a))
}

/** The discovery service factory for `createLibp2p({ services: { discovery: discovery({...}) } })`; needs `pubsub` before it. */
export function discovery (init: DiscoveryInit): (components: DiscoveryComponents) => Discovery {
  return (components) => new Discovery(components, init)
}

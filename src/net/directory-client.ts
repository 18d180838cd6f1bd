/**
 * Joins the network through a relay: connects to it, waits for our relayed WebRTC address,
 * registers in the relay's peer directory and dials the peers it announces over direct WebRTC.
 * Reconnects with backoff when the relay goes away; direct connections to peers survive that.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { WebRTC } from '@multiformats/multiaddr-matcher'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { DIRECTORY_PROTOCOL, MAX_DIRECTORY_FRAME, decodeSnapshot, encodeRegister } from '../core/directory-codec.js'
import { lengthPrefixed, LengthPrefixedReader } from '../core/framing.js'
import { connectionKind, directWebRTC, directWebRTCs } from './connection-kind.js'
import { pingConnection } from './liveness.js'
import type { DirectoryPeer } from '../core/directory-codec.js'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Peer } from './peer.js'

const log = logger('p2p-ai-agents:directory')
/** How often direct connections are pinged, and after how many missed pings one is dropped. */
const HEALTH_INTERVAL_MS = 2000
const HEALTH_MISSES = 2

export type RelayStatus = 'connecting' | 'reserving' | 'ready' | 'disconnected'

export interface DirectoryClientOptions {
  /** Dial peers we learn about (the lower peer id dials, so each pair connects once). */
  autoDial?: boolean
  /** Give up waiting for a relay reservation after this long. */
  reservationTimeoutMs?: number
}

export class DirectoryClient extends EventTarget {
  readonly relay: Multiaddr
  status: RelayStatus = 'disconnected'
  peers: DirectoryPeer[] = []
  /** Peer id of the relay, once connected. */
  relayPeerId?: string
  private readonly node: Peer
  private readonly options: Required<DirectoryClientOptions>
  private stopped = false
  private retryDelay = 250
  private readonly dialing = new Set<string>()
  /** How long each successful direct dial took, in ms (for the bench). */
  readonly dialTimes: number[] = []
  /** Latest round-trip time per directly connected peer, ms. */
  readonly rtt = new Map<string, number>()
  /** Consecutive missed pings per connection id. */
  private readonly misses = new Map<string, number>()
  private healthTimer?: ReturnType<typeof setInterval>

  constructor (node: Peer, relay: string | Multiaddr, options: DirectoryClientOptions = {}) {
    super()
    this.node = node
    this.relay = typeof relay === 'string' ? multiaddr(relay) : relay
    this.options = { autoDial: true, reservationTimeoutMs: 10_000, ...options }
  }

  /**
   * Connects and registers; resolves once we are dialable and listed. If that fails it rejects,
   * and keeps retrying in the background: the 'status' event says when it succeeds.
   */
  async start (): Promise<void> {
    this.stopped = false
    // A connection can look open while nothing gets through (libp2p-webrtc sometimes hands one out
    // already dead): ping each direct connection, drop the silent ones, and redial listed peers.
    this.healthTimer ??= setInterval(() => { void this.checkHealth() }, HEALTH_INTERVAL_MS)
    this.node.addEventListener('connection:close', (evt) => { this.onConnectionClosed(evt.detail.remotePeer.toString()) })
    try {
      await this.join()
    } catch (err) {
      this.onRelayLost()
      throw err
    }
  }

  stop (): void {
    clearInterval(this.healthTimer)
    this.healthTimer = undefined
    this.stopped = true
  }

  /** Our own addresses other peers can reach us on (relayed WebRTC signalling addresses). */
  webrtcAddrs (): Multiaddr[] {
    return this.node.getMultiaddrs().filter(ma => WebRTC.matches(ma))
  }

  private setStatus (status: RelayStatus): void {
    this.status = status
    this.dispatchEvent(new CustomEvent('status', { detail: status }))
  }

  private async join (): Promise<void> {
    this.setStatus('connecting')
    const connection = await this.node.dial(this.relay, { signal: AbortSignal.timeout(10_000) })
    this.setStatus('reserving')
    const relayId = connection.remotePeer.toString()
    this.relayPeerId = relayId
    const addrs = await this.waitForAddrs(relayId)
    const stream = await connection.newStream(DIRECTORY_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    const reader = new LengthPrefixedReader(MAX_DIRECTORY_FRAME)
    stream.addEventListener('message', (evt) => {
      try {
        for (const body of reader.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())) {
          this.onSnapshot(decodeSnapshot(body))
        }
      } catch (err) {
        stream.abort(err as Error)
      }
    })
    stream.addEventListener('close', () => { this.onRelayLost() })
    stream.send(lengthPrefixed(encodeRegister(addrs.map(a => a.toString()))))
    this.retryDelay = 250
    this.setStatus('ready')
  }

  private async waitForAddrs (relayId: string): Promise<Multiaddr[]> {
    // self:peer:update is debounced by ~1 s; polling finds the reservation as soon as it exists.
    const deadline = Date.now() + this.options.reservationTimeoutMs
    for (;;) {
      const addrs = this.webrtcAddrs().filter(a => a.toString().includes(relayId))
      if (addrs.length > 0) return addrs
      if (Date.now() > deadline) throw new Error('relay accepted the connection but gave no reservation')
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }

  private onSnapshot (peers: DirectoryPeer[]): void {
    const self = this.node.peerId.toString()
    const before = new Set(this.peers.map(p => p.peerId))
    this.peers = peers.filter(p => p.peerId !== self)
    const now = new Set(this.peers.map(p => p.peerId))
    this.dispatchEvent(new CustomEvent('peers', { detail: this.peers }))
    // A peer that left or came back (a closed or reloaded tab) may have left a dead WebRTC
    // connection behind that we have not noticed yet: check it before relying on it.
    for (const id of before) if (!now.has(id)) void this.verifyDirect(id)
    for (const p of this.peers) {
      if (before.has(p.peerId)) {
        if (this.options.autoDial && self < p.peerId) void this.dialPeer(p)
      } else {
        void this.verifyDirect(p.peerId).then(() => { if (this.options.autoDial && self < p.peerId) void this.dialPeer(p) })
      }
    }
  }

  /** Pings our direct connections to a peer and closes the ones that do not answer. */
  private async verifyDirect (peerId: string): Promise<void> {
    await Promise.all(directWebRTCs(this.node.getConnections(peerIdFromString(peerId))).map(async c => {
      try {
        this.rtt.set(peerId, await pingConnection(c, 1500))
      } catch {
        log('closing dead connection to %s', peerId)
        c.abort(new Error('peer stopped answering'))
      }
    }))
  }

  private async checkHealth (): Promise<void> {
    const direct = this.node.getConnections().filter(c => c.status === 'open' && connectionKind(c) === 'direct WebRTC')
    await Promise.all(direct.map(async c => {
      const peerId = c.remotePeer.toString()
      try {
        this.rtt.set(peerId, await pingConnection(c, HEALTH_INTERVAL_MS))
        this.misses.delete(c.id)
      } catch {
        const missed = (this.misses.get(c.id) ?? 0) + 1
        this.misses.set(c.id, missed)
        if (missed >= HEALTH_MISSES && c.status === 'open') {
          log('closing connection to %s: %d pings unanswered', peerId, missed)
          c.abort(new Error(`peer stopped answering pings (${missed} missed)`))
        }
      }
    }))
    for (const id of this.misses.keys()) if (!direct.some(c => c.id === id)) this.misses.delete(id)
  }

  /** A direct connection closed: if the peer is still listed and it is ours to dial, dial again. */
  private onConnectionClosed (peerId: string): void {
    if (this.stopped) return
    const id = peerIdFromString(peerId)
    if (directWebRTC(this.node.getConnections(id)) != null) return
    this.rtt.delete(peerId)
    const entry = this.peers.find(p => p.peerId === peerId)
    if (entry != null && this.options.autoDial && this.node.peerId.toString() < peerId) {
      setTimeout(() => { void this.dialPeer(entry) }, 250)
    }
  }

  /** Opens a direct WebRTC connection to a listed peer unless we already have one. */
  async dialPeer (peer: DirectoryPeer): Promise<void> {
    const id = peerIdFromString(peer.peerId)
    if (directWebRTC(this.node.getConnections(id)) != null || this.dialing.has(peer.peerId)) return
    this.dialing.add(peer.peerId)
    try {
      const targets = peer.addrs.map(a => multiaddr(a)).filter(a => WebRTC.matches(a))
      for (let attempt = 0; attempt < 3 && !this.stopped; attempt++) {
        try {
          const t0 = performance.now()
          await this.node.dial(targets, { signal: AbortSignal.timeout(15_000) })
          this.dialTimes.push(performance.now() - t0)
          return
        } catch (err) {
          log('dial to %s failed (attempt %d): %e', peer.peerId, attempt + 1, err)
          await new Promise(resolve => setTimeout(resolve, 500 * (attempt + 1)))
        }
      }
    } finally {
      this.dialing.delete(peer.peerId)
    }
  }

  private onRelayLost (): void {
    if (this.stopped) return
    this.setStatus('disconnected')
    const retry = (): void => {
      if (this.stopped) return
      this.join().catch(() => {
        this.setStatus('disconnected')
        this.retryDelay = Math.min(this.retryDelay * 2, 5000)
        setTimeout(retry, this.retryDelay)
      })
    }
    setTimeout(retry, this.retryDelay)
  }
}

/**
 * The relays a peer holds: it stays connected to up to `maxActive` of them (in the order given,
 * falling back to the next when one cannot be reached), holds a circuit-relay reservation on each
 * (libp2p's transport makes one per `/p2p-circuit` listen address on any relay we connect to), and
 * when a relay goes away redials it with backoff until it is back and the reservation with it.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { WebRTC } from '@multiformats/multiaddr-matcher'
import { logger } from '@libp2p/logger'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('p2p-ai-agents:relays')
/** Relays learned from adverts kept as fallbacks, beyond those configured. */
const MAX_LEARNED = 16

export type RelayState = 'standby' | 'connecting' | 'reserving' | 'ready' | 'disconnected'

export interface RelayView {
  addr: string
  peerId: string
  state: RelayState
  /** Why it is disconnected, if it is. */
  error?: string
}

export interface RelaySetOptions {
  /** Relays held at once (default 2). */
  maxActive?: number
  /** Give up waiting for a reservation after this long (default 10 s). */
  reservationTimeoutMs?: number
}

interface Entry {
  addr: Multiaddr
  peerId: string
  state: RelayState
  error?: string
  active: boolean
  retryDelay: number
  timer?: ReturnType<typeof setTimeout>
}

/** Events: 'change' (any state changed), 'ready' (CustomEvent<string>: a relay's peer id, newly ready). */
export class RelaySet extends EventTarget {
  private readonly node: Libp2p
  private readonly entries: Entry[] = []
  private readonly maxActive: number
  private readonly reservationTimeoutMs: number
  private stopped = false
  /** How many relays were given (the rest were learned from adverts). */
  private readonly configured: number

  constructor (node: Libp2p, relays: Array<string | Multiaddr>, options: RelaySetOptions = {}) {
    super()
    this.node = node
    this.maxActive = options.maxActive ?? 2
    this.reservationTimeoutMs = options.reservationTimeoutMs ?? 10_000
    for (const r of relays) this.add(r)
    this.configured = this.entries.length
  }

  /**
   * A relay heard advertising itself: kept to fall back on, up to MAX_LEARNED of them (anyone can
   * claim to be a relay; a bogus one only costs a failed dial when ours are down).
   */
  learn (relay: string): void {
    if (this.entries.length >= this.configured + MAX_LEARNED) return
    try {
      this.add(relay)
    } catch (err) {
      log('ignoring relay %s: %e', relay, err)
    }
  }

  /** Adds a relay to fall back on (no effect if already known). */
  add (relay: string | Multiaddr): void {
    const addr = typeof relay === 'string' ? multiaddr(relay) : relay
    const peerId = addr.getComponents().findLast(c => c.name === 'p2p')?.value
    if (peerId == null) throw new Error(`relay address ${addr.toString()} has no /p2p/<peer id>`)
    if (this.entries.some(e => e.peerId === peerId)) return
    this.entries.push({ addr, peerId, state: 'standby', active: false, retryDelay: 250 })
  }

  get views (): RelayView[] {
    return this.entries.map(e => ({ addr: e.addr.toString(), peerId: e.peerId, state: e.state, error: e.error }))
  }

  /** Peer ids of the relays we hold a reservation on. */
  get ready (): string[] {
    return this.entries.filter(e => e.state === 'ready').map(e => e.peerId)
  }

  isRelay (peerId: string): boolean {
    return this.entries.some(e => e.peerId === peerId)
  }

  /**
   * Connects to the first relays; resolves once one is ready. If none can be reached it rejects
   * with the first relay's error and keeps trying in the background ('ready' says when).
   */
  async start (): Promise<void> {
    this.stopped = false
    this.node.addEventListener('connection:close', this.onClose)
    const first = new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.ready.length > 0) { done(); resolve(); return }
        const tried = this.entries.filter(e => e.active)
        if (tried.length > 0 && tried.every(e => e.state === 'disconnected') && this.entries.every(e => e.active)) {
          done()
          reject(new Error(tried[0].error ?? 'no relay reachable'))
        }
      }
      const done = (): void => { this.removeEventListener('change', check) }
      this.addEventListener('change', check)
    })
    this.fill()
    await first
  }

  stop (): void {
    this.stopped = true
    this.node.removeEventListener('connection:close', this.onClose)
    for (const e of this.entries) clearTimeout(e.timer)
  }

  /** Keeps `maxActive` relays that are not down active, promoting standbys in order. */
  private fill (): void {
    if (this.stopped) return
    const healthy = this.entries.filter(e => e.active && e.state !== 'disconnected').length
    let missing = this.maxActive - healthy
    for (const e of this.entries) {
      if (missing <= 0) break
      if (!e.active) {
        e.active = true
        missing--
        this.connect(e).catch(err => { log('relay %s: %e', e.addr.toString(), err) })
      }
    }
  }

  private set (e: Entry, state: RelayState, error?: string): void {
    e.state = state
    e.error = error
    this.dispatchEvent(new Event('change'))
    if (state === 'ready') this.dispatchEvent(new CustomEvent('ready', { detail: e.peerId }))
  }

  private async connect (e: Entry): Promise<void> {
    if (this.stopped) return
    clearTimeout(e.timer)
    try {
      this.set(e, 'connecting')
      await this.node.dial(e.addr, { signal: AbortSignal.timeout(10_000) })
      this.set(e, 'reserving')
      await this.waitForReservation(e)
      e.retryDelay = 250
      this.set(e, 'ready')
      this.trim()
    } catch (err) {
      if (this.stopped) return
      log('relay %s: %e', e.addr.toString(), err)
      this.lost(e, (err as Error).message ?? String(err))
    }
  }

  /** The reservation shows as a relayed WebRTC address of ours through this relay. */
  private async waitForReservation (e: Entry): Promise<void> {
    // self:peer:update is debounced by ~1 s; polling finds the reservation as soon as it exists.
    const deadline = Date.now() + this.reservationTimeoutMs
    while (!this.hasReservation(e)) {
      if (this.stopped) throw new Error('stopped')
      if (this.node.getConnections().every(c => c.remotePeer.toString() !== e.peerId)) throw new Error('the relay closed the connection')
      if (Date.now() > deadline) throw new Error('the relay accepted the connection but gave no reservation')
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  }

  private hasReservation (e: Entry): boolean {
    return this.node.getMultiaddrs().some(a => WebRTC.matches(a) && a.toString().includes(`/p2p/${e.peerId}/p2p-circuit`))
  }

  private lost (e: Entry, error: string): void {
    this.set(e, 'disconnected', error)
    this.fill()
    e.timer = setTimeout(() => { this.connect(e).catch(err => { log('relay %s: %e', e.addr.toString(), err) }) }, e.retryDelay)
    e.retryDelay = Math.min(e.retryDelay * 2, 5000)
  }

  /** Drops our connection to a relay that stopped working for us; it is redialled like a lost one. */
  reconnect (peerId: string): void {
    for (const c of this.node.getConnections().filter(c => c.remotePeer.toString() === peerId)) {
      c.close().catch(() => { c.abort(new Error('closing a stuck relay connection failed')) })
    }
  }

  /** More relays ready than we need (a fallback came up, then the first one returned): let the last go. */
  private trim (): void {
    const ready = this.entries.filter(e => e.state === 'ready')
    for (const e of ready.slice(this.maxActive)) {
      e.active = false
      clearTimeout(e.timer)
      this.set(e, 'standby')
      for (const c of this.node.getConnections().filter(c => c.remotePeer.toString() === e.peerId)) {
        c.close().catch(() => { c.abort(new Error('closing a surplus relay connection failed')) })
      }
    }
  }

  private readonly onClose = (evt: CustomEvent<{ remotePeer: { toString: () => string } }>): void => {
    const id = evt.detail.remotePeer.toString()
    const e = this.entries.find(x => x.peerId === id)
    if (e == null || !e.active || this.stopped) return
    if (this.node.getConnections().some(c => c.remotePeer.toString() === id)) return
    if (e.state === 'ready') this.lost(e, 'connection closed')
  }
}

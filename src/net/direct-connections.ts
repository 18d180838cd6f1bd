/**
 * Direct WebRTC connections on demand, as a libp2p service: a peer dials another only when it has
 * work for it (addresses from the discovery table), holds at most `maxDirect` direct connections
 * (inbound ones count too: workers cap what requesters open to them), and closes the ones that sat
 * idle for `idleMs`. Loss is noticed from connection close events and from the task stream's own
 * heartbeats, never from a separate ping that a busy CPU could answer late.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { WebRTC } from '@multiformats/multiaddr-matcher'
import { connectionsToClose } from '../core/connection-budget.js'
import { TaskError } from '../core/errors.js'
import { connectionKind, directWebRTCs } from './connection-kind.js'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Discovery } from './discovery-service.js'

export const DEFAULT_MAX_DIRECT = 32
export const DEFAULT_IDLE_MS = 120_000
const DIAL_ATTEMPTS = 3
/**
 * WebRTC dials in flight at once. Each is an SDP/ICE exchange plus DTLS and SCTP handshakes that
 * cost CPU: fifty at once on a small machine all time out together, four at a time all succeed.
 */
const PARALLEL_DIALS = 4

export interface DirectConnectionsInit {
  /** Most direct connections held at once (default 32). */
  maxDirect?: number
  /** A direct connection unused this long is closed (default 2 min). */
  idleMs?: number
  /** Bound on dialling one peer, every try included (default 30 s). */
  dialTimeoutMs?: number
}

export interface DirectConnectionsComponents {
  connectionManager: ConnectionManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  discovery: Discovery
}

export interface ConnectionStats {
  dials: number
  dialFailures: number
  /** ms of each successful dial. */
  dialTimes: number[]
  /** Most direct connections held at once so far. */
  maxHeld: number
}

export class DirectConnections implements Startable {
  readonly maxDirect: number
  readonly stats: ConnectionStats = { dials: 0, dialFailures: 0, dialTimes: [], maxHeld: 0 }
  private readonly components: DirectConnectionsComponents
  private readonly idleMs: number
  private readonly dialTimeoutMs: number
  private readonly log: Logger
  private readonly lastUsed = new Map<string, number>()
  private readonly busy = new Map<string, number>()
  private readonly dialing = new Map<string, Promise<Connection>>()
  /** Dials waiting for one of the PARALLEL_DIALS places, and how many are taken. */
  private readonly dialQueue: Array<() => void> = []
  private dialsInFlight = 0
  private sweepTimer?: ReturnType<typeof setInterval>
  private started = false

  constructor (components: DirectConnectionsComponents, init: DirectConnectionsInit = {}) {
    this.components = components
    this.maxDirect = init.maxDirect ?? DEFAULT_MAX_DIRECT
    this.idleMs = init.idleMs ?? DEFAULT_IDLE_MS
    this.dialTimeoutMs = init.dialTimeoutMs ?? 30_000
    this.log = components.logger.forComponent('p2p-ai-agents:connections')
  }

  readonly [Symbol.toStringTag] = 'p2p-ai-agents/direct-connections'

  isStarted (): boolean {
    return this.started
  }

  start (): void {
    this.components.events.addEventListener('connection:open', this.onOpen)
    this.components.events.addEventListener('connection:close', this.onClose)
    this.sweepTimer = setInterval(() => { this.enforce() }, Math.max(1000, Math.min(15_000, this.idleMs / 4)))
    this.started = true
  }

  stop (): void {
    clearInterval(this.sweepTimer)
    this.components.events.removeEventListener('connection:open', this.onOpen)
    this.components.events.removeEventListener('connection:close', this.onClose)
    this.started = false
  }

  /** Open direct WebRTC connections, all peers. */
  held (): Connection[] {
    return directWebRTCs(this.components.connectionManager.getConnections())
  }

  /** Whether one more direct connection fits without closing a busy one. */
  get hasRoom (): boolean {
    return this.held().length < this.maxDirect
  }

  /** Our newest direct connection to `peer`, dialling it (addresses from its advert) when there is none. */
  async connect (peer: PeerId, signal?: AbortSignal): Promise<Connection> {
    const existing = directWebRTCs(this.components.connectionManager.getConnections(peer))[0]
    if (existing != null) return existing
    const id = peer.toString()
    let dial = this.dialing.get(id)
    if (dial == null) {
      dial = this.dial(peer, signal).finally(() => { this.dialing.delete(id) })
      this.dialing.set(id, dial)
    }
    return await dial
  }

  /** Marks `connection` as carrying work until the returned function is called. */
  use (connection: Connection): () => void {
    this.busy.set(connection.id, (this.busy.get(connection.id) ?? 0) + 1)
    this.touch(connection)
    let released = false
    return () => {
      if (released) return
      released = true
      const n = (this.busy.get(connection.id) ?? 1) - 1
      if (n > 0) this.busy.set(connection.id, n)
      else this.busy.delete(connection.id)
      this.touch(connection)
    }
  }

  /** `peer` is unreachable (a dial failed, or it went silent mid-task): stop offering it work until it advertises again. */
  lost (peer: PeerId): void {
    this.components.discovery.table.forget(peer.toString())
  }

  /** Records that `connection` just carried something. */
  touch (connection: Connection): void {
    if (this.lastUsed.has(connection.id)) this.lastUsed.set(connection.id, Date.now())
  }

  /**
   * Dials `peer` on its advertised WebRTC addresses. A WebRTC dial on a loaded machine sometimes
   * fails once (ICE or DTLS giving up mid-way) and works at the next try: three tries, then the
   * peer counts as unreachable.
   */
  private async dial (peer: PeerId, signal?: AbortSignal): Promise<Connection> {
    const addrs = (this.components.discovery.addrsOf(peer.toString()) ?? []).map(a => multiaddr(a)).filter(a => WebRTC.matches(a))
    if (addrs.length === 0) throw new TaskError('no-peer', `no address to dial ${peer.toString()}: it has not advertised one`)
    await this.dialPlace(signal)
    try {
      return await this.dialNow(peer, addrs, signal)
    } finally {
      this.dialsInFlight--
      this.dialQueue.shift()?.()
    }
  }

  /** Waits for a place among the dials in flight. */
  private async dialPlace (signal?: AbortSignal): Promise<void> {
    if (this.dialsInFlight < PARALLEL_DIALS) {
      this.dialsInFlight++
      return
    }
    await new Promise<void>((resolve, reject) => {
      const take = (): void => {
        signal?.removeEventListener('abort', onAbort)
        this.dialsInFlight++
        resolve()
      }
      const onAbort = (): void => {
        const i = this.dialQueue.indexOf(take)
        if (i >= 0) this.dialQueue.splice(i, 1)
        reject(new TaskError('peer-gone', 'gave up waiting to dial'))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.dialQueue.push(take)
    })
  }

  private async dialNow (peer: PeerId, addrs: Multiaddr[], signal?: AbortSignal): Promise<Connection> {
    // The time bound starts when the dial does, not while it waits for a place.
    const deadline = AbortSignal.timeout(this.dialTimeoutMs)
    const abort = signal == null ? deadline : AbortSignal.any([signal, deadline])
    let lastError: unknown
    for (let attempt = 1; attempt <= DIAL_ATTEMPTS && !abort.aborted; attempt++) {
      const t0 = performance.now()
      this.stats.dials++
      try {
        const connection = await this.components.connectionManager.openConnection(addrs, { signal: abort })
        if (connectionKind(connection) !== 'direct WebRTC') throw new Error(`got a ${connectionKind(connection)} connection, not direct WebRTC`)
        this.stats.dialTimes.push(performance.now() - t0)
        return connection
      } catch (err) {
        lastError = err
        this.stats.dialFailures++
        this.log('dial %d to %p failed: %e', attempt, peer, err)
        if (attempt < DIAL_ATTEMPTS && !abort.aborted) await new Promise(resolve => setTimeout(resolve, 250 * attempt))
      }
    }
    if (signal?.aborted !== true) this.lost(peer)
    throw new TaskError('peer-gone', `could not connect to ${peer.toString()}: ${(lastError as Error)?.message ?? 'gave up'}`)
  }

  private readonly onOpen = (evt: CustomEvent<Connection>): void => {
    const c = evt.detail
    if (connectionKind(c) !== 'direct WebRTC') return
    this.lastUsed.set(c.id, Date.now())
    this.stats.maxHeld = Math.max(this.stats.maxHeld, this.held().length)
    this.enforce()
  }

  private readonly onClose = (evt: CustomEvent<Connection>): void => {
    this.lastUsed.delete(evt.detail.id)
    this.busy.delete(evt.detail.id)
  }

  /** Closes what is over the budget or idle. */
  private enforce (): void {
    const held = this.held()
    const byId = new Map(held.map(c => [c.id, c]))
    const now = Date.now()
    const ids = connectionsToClose(held.map(c => ({ id: c.id, lastUsed: this.lastUsed.get(c.id) ?? c.timeline.open, busy: this.busy.has(c.id) })), now, { max: this.maxDirect, idleMs: this.idleMs })
    for (const id of ids) {
      const c = byId.get(id)
      if (c == null) continue
      this.log('closing %s direct connection to %p', now - (this.lastUsed.get(id) ?? now) >= this.idleMs ? 'idle' : 'surplus', c.remotePeer)
      c.close().catch(() => { c.abort(new Error('closing an unused connection failed')) })
    }
  }
}

/** The service factory; needs `discovery` before it in the services map. */
export function directConnections (init: DirectConnectionsInit = {}): (components: DirectConnectionsComponents) => DirectConnections {
  return (components) => new DirectConnections(components, init)
}


/**
 * The task protocol on libp2p: serves tasks into a WorkQueue, and keeps one long-lived stream
 * (one TaskClient) per direct WebRTC connection for sending tasks, so a task costs one frame each
 * way rather than a new data channel and protocol negotiation.
 */
import { TASK_PROTOCOL } from '../core/task/codec.js'
import { TaskClient } from '../core/task/client.js'
import { TaskServer } from '../core/task/server.js'
import { TaskError } from '../core/errors.js'
import { directWebRTCs } from './connection-kind.js'
import { streamChannel } from './stream-channel.js'
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import type { TaskRequest } from '../core/task-types.js'
import type { TaskClientOptions, TaskOutcome } from '../core/task/client.js'
import type { WorkQueue } from '../core/work-queue.js'
import type { ProtocolLimits } from '../core/limits.js'

export interface TaskServiceOptions {
  client?: TaskClientOptions
  limits?: ProtocolLimits
  /** How long a task waits for a direct connection to its peer to (re)appear; default 10 s (a dial that meets a dead connection retries after libp2p's 5 s timeout). */
  connectWaitMs?: number
}

export class TaskService {
  private readonly node: Libp2p
  private readonly options: TaskServiceOptions
  private readonly clients = new Map<string, Promise<TaskClient>>()

  constructor (node: Libp2p, options: TaskServiceOptions = {}) {
    this.node = node
    this.options = options
  }

  /** Starts answering task streams from any peer with `queue`. Only direct connections may carry them. */
  async serve (queue: WorkQueue): Promise<void> {
    await this.node.handle(TASK_PROTOCOL, (stream, connection) => {
      // eslint-disable-next-line prefer-const
      let server: TaskServer
      const channel = streamChannel(stream, () => server)
      server = new TaskServer(channel, queue, { requester: connection.remotePeer.toString(), limits: this.options.limits })
    }, { runOnLimitedConnection: false, maxInboundStreams: 8 })
  }

  /**
   * Sends one task to `peer` over our direct WebRTC connection to it. With no usable connection it
   * waits briefly for one (a reloaded tab is usually back within a second) before giving up.
   */
  async run (peer: PeerId, request: TaskRequest, options: { signal?: AbortSignal } = {}): Promise<TaskOutcome> {
    let client: TaskClient
    try {
      client = await this.clientFor(peer)
    } catch {
      await this.waitForDirect(peer, this.options.connectWaitMs ?? 10_000, options.signal)
      client = await this.clientFor(peer)
    }
    return await client.run(request)
  }

  /** Whether we have an open direct WebRTC connection to `peer` right now. */
  hasDirect (peer: PeerId): boolean {
    return directWebRTCs(this.node.getConnections(peer)).length > 0
  }

  /** Resolves once a direct WebRTC connection to `peer` is open, or after `ms` or an abort regardless. */
  private async waitForDirect (peer: PeerId, ms: number, signal?: AbortSignal): Promise<void> {
    if (directWebRTCs(this.node.getConnections(peer)).length > 0 || signal?.aborted === true) return
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.node.removeEventListener('connection:open', onOpen)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      signal?.addEventListener('abort', done)
      const onOpen = (evt: CustomEvent<Connection>): void => {
        if (evt.detail.remotePeer.equals(peer) && directWebRTCs([evt.detail]).length > 0) done()
      }
      const timer = setTimeout(done, ms)
      this.node.addEventListener('connection:open', onOpen)
    })
  }

  /** The task client for a peer, opening the stream on first use or after the last one closed. */
  private async clientFor (peer: PeerId): Promise<TaskClient> {
    const connections = directWebRTCs(this.node.getConnections(peer))
    if (connections.length === 0) throw new TaskError('no-peer', `no direct WebRTC connection to ${peer.toString()}`)
    let lastError: unknown
    for (const connection of connections) {
      try {
        return await this.clientOn(connection)
      } catch (err) {
        // A connection that cannot open a stream is dead but not yet noticed: drop it, try the next.
        lastError = err
        connection.abort(new Error('could not open a task stream'))
      }
    }
    throw new TaskError('peer-gone', `could not open a task stream to ${peer.toString()}: ${lastError instanceof Error ? lastError.message : String(lastError)}`)
  }

  private async clientOn (connection: Connection): Promise<TaskClient> {
    const key = connection.id
    const existing = this.clients.get(key)
    if (existing != null) {
      const client = await existing.catch(() => undefined)
      if (client != null && !client.isClosed) return client
    }
    const created = (async () => {
      const stream = await connection.newStream(TASK_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
      // eslint-disable-next-line prefer-const
      let client: TaskClient
      const channel = streamChannel(stream, () => client)
      client = new TaskClient(channel, { limits: this.options.limits, ...this.options.client })
      stream.addEventListener('close', () => { if (this.clients.get(key) === created) this.clients.delete(key) })
      return client
    })()
    this.clients.set(key, created)
    created.catch(() => { if (this.clients.get(key) === created) this.clients.delete(key) })
    return await created
  }
}

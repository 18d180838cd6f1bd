/**
 * The task protocol as a libp2p service: serves tasks into a WorkQueue (when given one), and sends
 * tasks over one long-lived stream (one TaskClient) per direct WebRTC connection, dialled on demand,
 * so a task costs one frame each way rather than a new data channel and protocol negotiation.
 */
import { TASK_PROTOCOL } from '../core/task/codec.js'
import { TaskClient } from '../core/task/client.js'
import { TaskServer } from '../core/task/server.js'
import { TaskError, toTaskError } from '../core/errors.js'
import { UnfinishedFrames } from '../core/framing.js'
import { directWebRTCs } from './connection-kind.js'
import { sharedEndOfTurn, streamChannel } from './stream-channel.js'
import type { ComponentLogger, Connection, Logger, PeerId, PrivateKey, PublicKey, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { TaskRequest } from '../core/task-types.js'
import type { TaskClientOptions, TaskOutcome } from '../core/task/client.js'
import type { WorkQueue } from '../core/work-queue.js'
import type { ProtocolLimits, UnfinishedFrameLimits } from '../core/limits.js'
import type { DirectConnections } from './direct-connections.js'
import type { TaskErrorCode } from '../core/errors.js'
import type { ReceiptSign, ReceiptVerify } from '../core/receipt.js'

/**
 * How receipts are signed with our key and checked with a worker's: each made once per key, so a
 * platform can import a key once instead of per task (src/node/receipt-keys.ts).
 */
export interface ReceiptKeys {
  signer(key: PrivateKey): ReceiptSign
  verifier(key: PublicKey): ReceiptVerify
}

/** libp2p's own key methods: right everywhere, the key imported again on each call on Node. */
export const libp2pReceiptKeys: ReceiptKeys = {
  signer: (key) => (bytes) => key.sign(bytes),
  verifier: (key) => (bytes, signature) => key.verify(bytes, signature)
}

/** One task this peer sent, finished: for the page's charts (every requester path goes through `run`). */
export interface RoundTrip {
  worker: string
  taskId: string
  modelSha256: string
  ok: boolean
  /** The error's code when it failed. */
  code?: TaskErrorCode
  /** Request sent → response decoded when it succeeded; call → failure otherwise (a dial included). */
  ms: number
}

const ROUND_TRIP = 'roundtrip'

export interface TaskProtocolInit {
  client?: TaskClientOptions
  limits?: ProtocolLimits
  /** Serve tasks from other peers into this queue; without one this peer only sends tasks. */
  queue?: WorkQueue
  /** Deadline of a frame that started to arrive, and the bytes peers may hold in such frames (defaults: DEFAULT_UNFINISHED_FRAME_LIMITS). */
  unfinished?: Partial<UnfinishedFrameLimits>
  /** How receipts are signed and checked (default: libp2p's key methods). */
  receiptKeys?: ReceiptKeys
}

export interface TaskProtocolComponents {
  /** Our identity: receipts are signed with this key and name this peer id. */
  peerId: PeerId
  privateKey: PrivateKey
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
  connections: DirectConnections
}

export class TaskProtocol extends EventTarget implements Startable {
  private readonly components: TaskProtocolComponents
  private readonly init: TaskProtocolInit
  private readonly log: Logger
  private readonly clients = new Map<string, Promise<TaskClient>>()
  private started = false
  private readonly receiptKeys: ReceiptKeys
  private signer?: ReceiptSign
  /** What requesters hold in unfinished frames on our task streams, per peer and in all. */
  readonly unfinishedFrames: UnfinishedFrames
  /** The same for workers' responses on the streams we opened: a trickled answer is cut off too. */
  readonly unfinishedResponses: UnfinishedFrames

  constructor (components: TaskProtocolComponents, init: TaskProtocolInit) {
    super()
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('p2p-ai-agents:task')
    this.unfinishedFrames = new UnfinishedFrames(init.unfinished)
    this.unfinishedResponses = new UnfinishedFrames(init.unfinished)
    this.receiptKeys = init.receiptKeys ?? libp2pReceiptKeys
  }

  readonly [Symbol.toStringTag] = 'p2p-ai-agents/task'

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.init.queue != null) {
      // Receipts are specified as Ed25519 (64-byte signatures), which any verifier can check from the peer id alone.
      if (this.components.privateKey.type !== 'Ed25519') throw new Error(`a worker signs receipts with an Ed25519 key, not ${this.components.privateKey.type}`)
      await this.components.registrar.handle(TASK_PROTOCOL, this.serve, { runOnLimitedConnection: false, maxInboundStreams: 8 })
    }
    this.started = true
  }

  async stop (): Promise<void> {
    if (this.init.queue != null) await this.components.registrar.unhandle(TASK_PROTOCOL)
    this.clients.clear()
    this.started = false
  }

  /**
   * Sends one task to `peer` over a direct WebRTC connection, dialling one if needed. A connection
   * that cannot open a stream is dead but not yet noticed: it is dropped and the peer dialled once more.
   */
  async run (peer: PeerId, request: TaskRequest, options: { signal?: AbortSignal } = {}): Promise<TaskOutcome> {
    const startedAt = performance.now()
    const done = (ok: boolean, ms: number, code?: TaskErrorCode): void => {
      const detail: RoundTrip = { worker: peer.toString(), taskId: request.taskId, modelSha256: request.model.sha256, ok, ms, ...(code != null ? { code } : {}) }
      this.dispatchEvent(new CustomEvent<RoundTrip>(ROUND_TRIP, { detail }))
    }
    try {
      const outcome = await this.send(peer, request, options)
      done(true, outcome.roundTripMs)
      return outcome
    } catch (err) {
      // A dial that failed or an abort is not a TaskError yet: the peer could not be reached.
      done(false, performance.now() - startedAt, toTaskError(err, 'peer-gone').code)
      throw err
    }
  }

  /** Calls `listener` once per task sent through `run`, finished or failed; returns how to stop. */
  onRoundTrip (listener: (r: RoundTrip) => void): () => void {
    const handler = (evt: Event): void => { listener((evt as CustomEvent<RoundTrip>).detail) }
    this.addEventListener(ROUND_TRIP, handler)
    return () => { this.removeEventListener(ROUND_TRIP, handler) }
  }

  private async send (peer: PeerId, request: TaskRequest, options: { signal?: AbortSignal }): Promise<TaskOutcome> {
    const { connections } = this.components
    let connection = await connections.connect(peer, options.signal)
    let client: TaskClient
    try {
      client = await this.clientOn(connection)
    } catch (err) {
      this.log('task stream to %p failed (%e); dialling again', peer, err)
      connection.abort(new Error('could not open a task stream'))
      connection = await connections.connect(peer, options.signal)
      try {
        client = await this.clientOn(connection)
      } catch (again) {
        connection.abort(new Error('could not open a task stream'))
        throw new TaskError('peer-gone', `could not open a task stream to ${peer.toString()}: ${(again as Error).message}`)
      }
    }
    const release = connections.use(connection)
    try {
      return await client.run(request)
    } catch (err) {
      // The worker went silent on this connection: it is dead even if libp2p has not noticed yet.
      if (err instanceof TaskError && err.code === 'peer-gone') {
        connection.abort(new Error(err.message))
        connections.lost(peer)
      }
      throw err
    } finally {
      release()
    }
  }

  /** Whether we have an open direct WebRTC connection to `peer` right now. */
  hasDirect (peer: PeerId): boolean {
    return directWebRTCs(this.components.connectionManager.getConnections(peer)).length > 0
  }

  private readonly serve = (stream: Stream, connection: Connection): void => {
    const queue = this.init.queue
    if (queue == null) {
      stream.abort(new Error('this peer does not run tasks'))
      return
    }
    const requester = connection.remotePeer.toString()
    // A peer already holding its cap in unfinished frames on other streams gets no new one.
    if (!this.unfinishedFrames.admit(requester)) {
      this.log('refusing a task stream from %s: it holds %d bytes in unfinished frames', requester, this.unfinishedFrames.heldBy(requester))
      stream.abort(new Error('too many bytes held in unfinished frames'))
      return
    }
    const frames = this.unfinishedFrames.watch(requester, (err) => {
      this.log('resetting a task stream from %s: %s', requester, err.message)
      stream.abort(err)
    })
    stream.addEventListener('close', () => { frames.close() })
    // eslint-disable-next-line prefer-const
    let server: TaskServer
    const channel = streamChannel(stream, () => server)
    const { peerId, privateKey } = this.components
    this.signer ??= this.receiptKeys.signer(privateKey)
    server = new TaskServer(channel, queue, {
      requester,
      signer: { peerId: peerId.toString(), sign: this.signer },
      limits: this.init.limits,
      frames,
      defer: sharedEndOfTurn()
    })
    stream.addEventListener('message', () => { this.components.connections.touch(connection) })
  }

  /** The task client on a connection, opening the stream on first use or after the last one closed. */
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
      const { publicKey } = connection.remotePeer
      const verify = publicKey != null ? this.receiptKeys.verifier(publicKey) : undefined
      const worker = connection.remotePeer.toString()
      const frames = this.unfinishedResponses.watch(worker, (err) => {
        this.log('resetting the task stream to %s: %s', worker, err.message)
        stream.abort(err)
      })
      stream.addEventListener('close', () => { frames.close() })
      client = new TaskClient(channel, {
        requester: this.components.peerId.toString(),
        worker: connection.remotePeer.toString(),
        // A peer id that embeds no key (RSA) cannot have signed anything we can check: its results are refused.
        verify: (bytes, signature) => verify?.(bytes, signature) ?? false
      }, { limits: this.init.limits, ...this.init.client, frames })
      stream.addEventListener('close', () => { if (this.clients.get(key) === created) this.clients.delete(key) })
      return client
    })()
    this.clients.set(key, created)
    created.catch(() => { if (this.clients.get(key) === created) this.clients.delete(key) })
    return await created
  }
}

/** The task service factory; needs `connections` before it in the services map. */
export function taskProtocol (init: TaskProtocolInit = {}): (components: TaskProtocolComponents) => TaskProtocol {
  return (components) => new TaskProtocol(components, init)
}

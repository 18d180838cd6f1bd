/**
 * The model transfer protocol as a libp2p service: serves this peer's models to peers that ask by
 * sha256, and fetches a model from a given peer, one stream per transfer over a direct WebRTC
 * connection (the one that carried the task, or one dialled for it).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { MODEL_PROTOCOL } from '../core/model-transfer/codec.js'
import { ModelDownload } from '../core/model-transfer/client.js'
import { ModelTransferServer } from '../core/model-transfer/server.js'
import { TaskError } from '../core/errors.js'
import { streamChannel } from './stream-channel.js'
import type { ComponentLogger, Startable, Stream } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import type { ModelRef } from '../core/task-types.js'
import type { ModelSource, TransferProgress } from '../core/model-transfer/codec.js'
import type { DirectConnections } from './direct-connections.js'
import type { TransferLimits } from '../core/model-transfer/limits.js'

export interface ModelTransferInit {
  /** Largest model this peer fetches. */
  maxModelBytes?: number
  /** Total deadline and minimum rate of each transfer, both ways (core/model-transfer/limits.ts has the defaults). */
  limits?: TransferLimits
  /** Where the models this peer serves come from. */
  source: ModelSource
}

export interface ModelTransferComponents {
  registrar: Registrar
  logger: ComponentLogger
  connections: DirectConnections
}

export class ModelTransfer implements Startable {
  private readonly components: ModelTransferComponents
  private readonly init: ModelTransferInit
  private started = false

  constructor (components: ModelTransferComponents, init: ModelTransferInit) {
    this.components = components
    this.init = init
  }

  readonly [Symbol.toStringTag] = 'p2p-ai-agents/model-transfer'

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(MODEL_PROTOCOL, this.serve, { runOnLimitedConnection: false, maxInboundStreams: 4 })
    this.started = true
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(MODEL_PROTOCOL)
    this.started = false
  }

  /** Fetches `ref` from `peer`; resolves with bytes that hash to ref.sha256. `maxBytes` overrides the service's cap for this transfer. */
  async fetch (peer: string, ref: ModelRef, onProgress?: (p: TransferProgress) => void, options: { maxBytes?: number } = {}): Promise<Uint8Array> {
    let connection
    try {
      connection = await this.components.connections.connect(peerIdFromString(peer))
    } catch (err) {
      throw new TaskError('model-unavailable', `no direct connection to ${peer} to fetch the model from: ${(err as Error).message}`)
    }
    let channel: ReturnType<typeof streamChannel> | undefined
    // The download gives up by itself (deadline, minimum rate); the catch below then closes the stream.
    const download = new ModelDownload(ref, { maxBytes: options.maxBytes ?? this.init.maxModelBytes, onProgress, limits: this.init.limits })
    const release = this.components.connections.use(connection)
    try {
      const stream = await connection.newStream(MODEL_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
      channel = streamChannel(stream, () => download)
      await channel.send(download.request)
      const bytes = await download.bytes
      channel.close()
      return bytes
    } catch (err) {
      channel?.close(err as Error)
      throw err
    } finally {
      release()
    }
  }

  private readonly serve = (stream: Stream): void => {
    // eslint-disable-next-line prefer-const
    let server: ModelTransferServer
    const channel = streamChannel(stream, () => server)
    server = new ModelTransferServer(channel, this.init.source, { limits: this.init.limits })
  }
}

/** The model transfer service factory; needs `connections` before it in the services map. */
export function modelTransfer (init: ModelTransferInit): (components: ModelTransferComponents) => ModelTransfer {
  return (components) => new ModelTransfer(components, init)
}

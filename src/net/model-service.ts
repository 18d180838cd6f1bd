/**
 * The model transfer protocol on libp2p: serves this peer's models to peers that ask by sha256,
 * and fetches a model from a given peer, one stream per transfer over a direct WebRTC connection.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { MODEL_PROTOCOL } from '../core/model-transfer/codec.js'
import { ModelDownload } from '../core/model-transfer/client.js'
import { ModelTransferServer } from '../core/model-transfer/server.js'
import { TaskError } from '../core/errors.js'
import { directWebRTCs } from './connection-kind.js'
import { streamChannel } from './stream-channel.js'
import type { Libp2p } from '@libp2p/interface'
import type { ModelRef } from '../core/task-types.js'
import type { ModelSource, TransferProgress } from '../core/model-transfer/codec.js'

export interface ModelServiceOptions {
  /** Largest model this peer fetches. */
  maxModelBytes?: number
  /** Gives up on a transfer that makes no progress for this long (default 15 s). */
  stallMs?: number
}

export class ModelService {
  private readonly node: Libp2p
  private readonly options: ModelServiceOptions

  constructor (node: Libp2p, options: ModelServiceOptions = {}) {
    this.node = node
    this.options = options
  }

  /** Answers transfer requests from `source`. */
  async serve (source: ModelSource): Promise<void> {
    await this.node.handle(MODEL_PROTOCOL, (stream) => {
      // eslint-disable-next-line prefer-const
      let server: ModelTransferServer
      const channel = streamChannel(stream, () => server)
      server = new ModelTransferServer(channel, source)
    }, { runOnLimitedConnection: false, maxInboundStreams: 4 })
  }

  /** Fetches `ref` from `peer`; resolves with bytes that hash to ref.sha256. */
  async fetch (peer: string, ref: ModelRef, onProgress?: (p: TransferProgress) => void): Promise<Uint8Array> {
    const connection = directWebRTCs(this.node.getConnections(peerIdFromString(peer)))[0]
    if (connection == null) throw new TaskError('model-unavailable', `no direct connection to ${peer} to fetch the model from`)
    const stallMs = this.options.stallMs ?? 15_000
    let timer: ReturnType<typeof setTimeout> | undefined
    let channel: ReturnType<typeof streamChannel> | undefined
    const download = new ModelDownload(ref, {
      maxBytes: this.options.maxModelBytes,
      onProgress: (p) => { arm(); onProgress?.(p) }
    })
    const arm = (): void => {
      clearTimeout(timer)
      timer = setTimeout(() => { download.closed(new Error(`no data for ${stallMs / 1000} s`)); channel?.close(new Error('stalled')) }, stallMs)
    }
    try {
      const stream = await connection.newStream(MODEL_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
      channel = streamChannel(stream, () => download)
      arm()
      await channel.send(download.request)
      const bytes = await download.bytes
      channel.close()
      return bytes
    } catch (err) {
      channel?.close(err as Error)
      throw err
    } finally {
      clearTimeout(timer)
    }
  }
}

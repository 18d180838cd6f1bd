/**
 * The shared model transfer conformance suite over the real stack: a relay on 127.0.0.1 and two
 * Node peers with the model transfer service (one holding models, one fetching) over a direct WebRTC connection.
 */
import '../../src/node/polyfill.js'
import { MODEL_PROTOCOL } from '../../src/core/model-transfer/codec.js'
import { ModelDownload } from '../../src/core/model-transfer/client.js'
import { lengthPrefixed } from '../../src/core/framing.js'
import { directWebRTC } from '../../src/net/connection-kind.js'
import { streamChannel } from '../../src/net/stream-channel.js'
import { modelTransferConformance } from '../conformance/model-transfer.js'
import { Cleanup, WAIT_MS, startBarePeer, startRelay, waitForDirect, withTimeout } from './helpers.js'
import type { TaskError } from '../../src/core/errors.js'
import type { TransferHarnessFactory } from '../conformance/model-transfer.js'

const factory: TransferHarnessFactory = async (source) => {
  const cleanup = new Cleanup()
  try {
    const relay = await startRelay(cleanup)
    const holder = await startBarePeer(cleanup, relay.addr, 'holder', { models: { source } })
    const fetcher = await startBarePeer(cleanup, relay.addr, 'fetcher')
    await waitForDirect(fetcher, holder)
    const holderId = holder.peerId.toString()
    return {
      fetch: async (ref, options) => {
        return await withTimeout(fetcher.services.models.fetch(holderId, ref, options?.onProgress, { maxBytes: options?.maxBytes }), WAIT_MS, 'the transfer')
      },
      sendRaw: async (bytes) => {
        const connection = directWebRTC(fetcher.getConnections(holder.peerId))
        if (connection == null) throw new Error('no direct WebRTC connection to the holder')
        const stream = await connection.newStream(MODEL_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
        // Any well-formed ref will do: all we read is the holder's error reply.
        const download = new ModelDownload({ sha256: '0'.repeat(64), size: 1, name: 'raw' })
        const channel = streamChannel(stream, () => download)
        await channel.send(lengthPrefixed(bytes.subarray(1)))
        try {
          return await withTimeout(download.bytes.then(() => { throw new Error('expected an error reply') }, (e: TaskError) => e), WAIT_MS, 'the holder\'s error reply')
        } finally {
          channel.close()
        }
      },
      close: async () => { await cleanup.run() }
    }
  } catch (err) {
    await cleanup.run()
    throw err
  }
}

modelTransferConformance('libp2p over WebRTC (Node)', factory)

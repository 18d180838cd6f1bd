/**
 * Runs the shared task-protocol conformance suite over the in-memory transport, with chunks cut
 * into random small pieces so every frame is reassembled by the decoders.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { FrameDecoder } from '../../src/core/task/codec.js'
import { STREAM_ERROR_ID } from '../../src/core/channel.js'
import { TaskError } from '../../src/core/errors.js'
import { TaskClient } from '../../src/core/task/client.js'
import { TaskServer } from '../../src/core/task/server.js'
import { WorkQueue } from '../../src/core/work-queue.js'
import { memoryChannelPair } from '../helpers/memory-channel.js'
import { taskProtocolConformance } from '../conformance/task-protocol.js'
import type { HarnessFactory, ProtocolHarness } from '../conformance/task-protocol.js'
import type { MemoryEnd } from '../helpers/memory-channel.js'

let seed = 1

const factory: HarnessFactory = async (executor, queueOptions) => {
  const queue = new WorkQueue(executor, queueOptions)
  // Real Ed25519 identities, as libp2p gives them: receipts are signed and checked for real.
  const workerKey = await generateKeyPair('Ed25519')
  const workerId = peerIdFromPrivateKey(workerKey)
  const requesterId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const ends: MemoryEnd[] = []
  const workerEnds: MemoryEnd[] = []
  let rawCount = 0

  /** Opens a channel to the worker and returns the requester's end. */
  function connect (requester: string): { requesterEnd: MemoryEnd, workerEnd: MemoryEnd } {
    const [requesterEnd, workerEnd] = memoryChannelPair({ seed: seed++, maxPiece: 5 })
    const server = new TaskServer(workerEnd, queue, { requester, signer: { peerId: workerId.toString(), sign: (bytes) => workerKey.sign(bytes) } })
    workerEnd.onData(chunk => { server.receive(chunk) })
    workerEnd.onClose(() => { server.closed() })
    ends.push(requesterEnd, workerEnd)
    workerEnds.push(workerEnd)
    return { requesterEnd, workerEnd }
  }

  const main = connect(requesterId)
  const client = new TaskClient(main.requesterEnd, {
    requester: requesterId,
    worker: workerId.toString(),
    verify: (bytes, signature) => workerId.publicKey.verify(bytes, signature)
  }, { heartbeatMs: 20, livenessMs: 150 })
  main.requesterEnd.onData(chunk => { client.receive(chunk) })
  main.requesterEnd.onClose(err => { client.closed(err) })

  const harness: ProtocolHarness = {
    workerPeerId: workerId.toString(),
    requesterPeerId: requesterId,
    run: async (request) => await client.run(request),

    sendRaw: async (bytes) => {
      const { requesterEnd } = connect(`requester-raw-${++rawCount}`)
      return await new Promise<TaskError>((resolve, reject) => {
        const decoder = new FrameDecoder()
        requesterEnd.onData(chunk => {
          try {
            for (const frame of decoder.push(chunk)) {
              if (frame.type === 'response' && !frame.response.ok && frame.response.taskId === STREAM_ERROR_ID) {
                resolve(new TaskError(frame.response.error.code, frame.response.error.message))
              }
            }
          } catch (err) {
            reject(err as Error)
          }
        })
        requesterEnd.onClose(() => { reject(new Error('the worker closed the channel without a stream-level error')) })
        requesterEnd.send(bytes)
      })
    },

    killWorker: async () => {
      // Every channel's worker end drops off the network: no close, no replies, no pongs.
      for (const end of workerEnds) end.vanish()
    },

    close: async () => {
      client.close()
      for (const end of ends) end.close()
    }
  }
  return harness
}

taskProtocolConformance('in-memory', factory)

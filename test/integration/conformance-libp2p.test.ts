/**
 * The shared task-protocol conformance suite over the real stack: a relay on 127.0.0.1, a
 * requester Node peer (the task service, short heartbeats) and a worker Node peer whose
 * WorkQueue runs the suite's executor, talking over a direct WebRTC connection.
 *
 * killWorker aborts the worker's connections without any task-level goodbye (no response, no
 * stream close handshake), then stops its node: in-process, this is as close as we get to a
 * closed tab. A worker that is SIGKILLed mid-task (heartbeat detection) is covered by
 * churn.test.ts.
 */
import '../../src/node/polyfill.js'
import { FrameDecoder, TASK_PROTOCOL } from '../../src/core/task/codec.js'
import { STREAM_ERROR_ID } from '../../src/core/channel.js'
import { TaskError } from '../../src/core/errors.js'
import { directWebRTC } from '../../src/net/connection-kind.js'
import { taskProtocolConformance } from '../conformance/task-protocol.js'
import { Cleanup, FAST_HEARTBEAT, WAIT_MS, startPeer, startRelay, waitForDirect, withTimeout } from './helpers.js'
import type { HarnessFactory, ProtocolHarness } from '../conformance/task-protocol.js'

const factory: HarnessFactory = async (executor, queueOptions) => {
  const cleanup = new Cleanup()
  try {
    const relay = await startRelay(cleanup)

    // The worker: the real libp2p stack serving the suite's executor (no onnxruntime).
    const worker = await startPeer(cleanup, relay.addr, { wrapExecutor: () => executor, queue: queueOptions })
    const workerNode = worker.node

    const requester = await startPeer(cleanup, relay.addr, { work: false, client: FAST_HEARTBEAT })
    await waitForDirect(requester.node, workerNode)

    const harness: ProtocolHarness = {
      workerPeerId: workerNode.peerId.toString(),
      requesterPeerId: requester.node.peerId.toString(),
      run: async (request) => await requester.tasks.run(workerNode.peerId, request),

      sendRaw: async (bytes) => {
        const connection = directWebRTC(requester.node.getConnections(workerNode.peerId))
        if (connection == null) throw new Error('no direct WebRTC connection to the worker')
        const stream = await connection.newStream(TASK_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
        const reply = new Promise<TaskError>((resolve, reject) => {
          const decoder = new FrameDecoder()
          stream.addEventListener('message', (evt) => {
            try {
              for (const frame of decoder.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())) {
                if (frame.type === 'response' && !frame.response.ok && frame.response.taskId === STREAM_ERROR_ID) {
                  resolve(new TaskError(frame.response.error.code, frame.response.error.message))
                }
              }
            } catch (err) {
              reject(err as Error)
            }
          })
          stream.addEventListener('close', (evt) => {
            const why = evt.error != null ? ` (${evt.error.message})` : ''
            reject(new Error(`the worker closed the stream without a stream-level error${why}`))
          })
        })
        stream.send(bytes)
        try {
          return await withTimeout(reply, WAIT_MS, 'the worker\'s stream-level error reply')
        } finally {
          if (stream.status === 'open') stream.abort(new Error('raw exchange finished'))
        }
      },

      killWorker: async () => {
        for (const connection of workerNode.getConnections()) connection.abort(new Error('worker vanished'))
        worker.relays.stop()
        await workerNode.stop()
      },

      close: async () => { await cleanup.run() }
    }
    return harness
  } catch (err) {
    await cleanup.run()
    throw err
  }
}

taskProtocolConformance('libp2p over WebRTC (Node)', factory, { timeoutMs: 30_000 })

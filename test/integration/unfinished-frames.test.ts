/**
 * A requester that starts frames and never finishes them, on many task streams at once, against a
 * real worker peer (real relay, libp2p, direct WebRTC): the streams that would take it past its
 * byte cap are refused with a stream-level error, the ones it keeps are reset when their frames
 * miss their deadline, and all that time an honest requester's tasks to the same worker run.
 * The worker's executor echoes its inputs: what is under test is the task stream, not inference.
 */
import '../../src/node/polyfill.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FrameDecoder, TASK_PROTOCOL } from '../../src/core/task/codec.js'
import { STREAM_ERROR_ID } from '../../src/core/channel.js'
import { WorkQueue } from '../../src/core/work-queue.js'
import { directWebRTC } from '../../src/net/connection-kind.js'
import { Cleanup, WAIT_MS, startBarePeer, startRelay, waitForDirect, withTimeout } from './helpers.js'
import type { Stream } from '@libp2p/interface'
import type { Peer } from '../../src/net/peer.js'
import type { TaskRequest } from '../../src/core/task-types.js'

const KiB = 1024
const MiB = 1024 * KiB
/** Small numbers so the test is quick: 6 s + 1 s per MiB; 2 MiB per peer. */
const UNFINISHED = { floorMs: 6000, minBytesPerSecond: MiB, maxBytesPerPeer: 2 * MiB }
/** Each hostile stream announces a 1.5 MiB frame and sends 600 KiB of it: any four together pass the cap. */
const ANNOUNCED = 1.5 * MiB
const SENT = 600 * KiB
const STREAMS = 6

const cleanup = new Cleanup()
let worker: Peer
let honest: Peer
let mallory: Peer

beforeAll(async () => {
  const relay = await startRelay(cleanup)
  const queue = new WorkQueue({ execute: async (req) => ({ outputs: req.inputs, loadMs: 0, inferenceMs: 0, backend: 'echo', threads: 1 }) }, { slots: 2 })
  worker = await startBarePeer(cleanup, relay.addr, 'worker', { tasks: { queue, unfinished: UNFINISHED } })
  honest = await startBarePeer(cleanup, relay.addr, 'honest')
  mallory = await startBarePeer(cleanup, relay.addr, 'mallory')
  await waitForDirect(honest, worker)
  await waitForDirect(mallory, worker)
})

afterAll(async () => { await cleanup.run() })

let taskCount = 0
async function honestTask (): Promise<void> {
  const data = Uint8Array.from({ length: 16 }, (_, i) => i)
  const request: TaskRequest = {
    taskId: `honest-${++taskCount}`,
    jobId: 'unfinished-frames',
    model: { sha256: 'ab'.repeat(32), size: 1, name: 'echo' },
    inputs: [{ name: 'x', dtype: 'float32', dims: [4], data }],
    timeoutMs: 0,
    outputNames: []
  }
  const outcome = await withTimeout(honest.services.tasks.run(worker.peerId, request), WAIT_MS, `honest task ${request.taskId}`)
  expect(outcome.result.outputs[0].data).toEqual(data)
}

interface HostileStream {
  /** The worker's stream-level error, when it refused the stream. */
  refusal?: string
  /** Resolves when the stream has closed. */
  closed: Promise<void>
}

/** Opens a task stream, writes the start of a frame of ANNOUNCED bytes, and never finishes it. */
async function startUnfinishedFrame (): Promise<HostileStream> {
  const connection = directWebRTC(mallory.getConnections(worker.peerId))
  if (connection == null) throw new Error('mallory has no direct connection to the worker')
  const stream: Stream = await connection.newStream(TASK_PROTOCOL, { signal: AbortSignal.timeout(WAIT_MS) })
  const hostile: HostileStream = {
    closed: new Promise(resolve => {
      stream.addEventListener('close', () => { resolve() })
    })
  }
  const decoder = new FrameDecoder()
  stream.addEventListener('message', (evt) => {
    for (const frame of decoder.push(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())) {
      if (frame.type === 'response' && !frame.response.ok && frame.response.taskId === STREAM_ERROR_ID) hostile.refusal = frame.response.error.message
    }
  })
  const prefix = [0x80 | (ANNOUNCED & 0x7f), 0x80 | ((ANNOUNCED >> 7) & 0x7f), ANNOUNCED >> 14]
  const data = new Uint8Array(SENT)
  data.set(prefix)
  try {
    for (let at = 0; at < data.length; at += 64 * KiB) {
      if (!stream.send(data.subarray(at, at + 64 * KiB))) await stream.onDrain({ signal: AbortSignal.timeout(WAIT_MS) })
    }
  } catch {
    // refused while still writing: the close event says how
  }
  return hostile
}

describe('unfinished frames from a hostile requester', () => {
  it('are cut off (byte cap, then deadline) while an honest requester\'s tasks run', async () => {
    await honestTask()

    // All at once: opened one after another, a loaded machine could take longer than the first
    // frame's deadline (6 s + 1.5 s) to send them, and the cap would never be reached.
    const hostile = await Promise.all(Array.from({ length: STREAMS }, startUnfinishedFrame))

    // while mallory holds what the worker let it keep, honest work goes on
    await honestTask()
    await honestTask()

    await withTimeout(Promise.all(hostile.map(h => h.closed)), WAIT_MS, 'every hostile stream to be closed by the worker')
    const { stats } = worker.services.tasks.unfinishedFrames
    // each stream that took mallory past 2 MiB was refused, with the reason (at least one: how many
    // depends on how the streams' bytes interleave and on the deadlines below)...
    const refused = hostile.filter(h => h.refusal != null)
    expect(refused.length).toBeGreaterThanOrEqual(1)
    for (const h of refused) expect(h.refusal).toMatch(/this peer holds [\d.]+ MiB in unfinished frames, over its 2\.0 MiB cap: stream refused/)
    // ...and every one it kept was reset when its frame missed its deadline (6 s + 1.5 s)
    expect(stats.expired).toBeGreaterThanOrEqual(1)
    expect(stats.refused + stats.expired).toBe(STREAMS)
    expect(worker.services.tasks.unfinishedFrames.held).toBe(0)

    await honestTask()
  })
})

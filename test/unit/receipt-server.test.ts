/** What a worker's receipt states about time: when the task ran on it, by its wall clock, queueing excluded. */
import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TaskClient } from '../../src/core/task/client.js'
import { TaskServer } from '../../src/core/task/server.js'
import { WorkQueue } from '../../src/core/work-queue.js'
import { memoryChannelPair } from '../helpers/memory-channel.js'
import type { Executor } from '../../src/core/work-queue.js'
import type { TaskRequest } from '../../src/core/task-types.js'

const KEY = await generateKeyPair('Ed25519')
const WORKER = peerIdFromPrivateKey(KEY)
const REQUESTER = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

function request (taskId: string): TaskRequest {
  return { taskId, jobId: 'job', model: { sha256: 'a'.repeat(64), size: 1, name: 'm' }, inputs: [], timeoutMs: 0, outputNames: [] }
}

describe('TaskServer receipts', () => {
  it('signs the wall-clock times the task ran, not when it arrived or waited', async () => {
    let wall = 1_700_000_000_000
    /** Per task: resolves when it starts running, with the function that lets it finish. */
    const runs = new Map<string, { started: Promise<() => void>, start: (finish: () => void) => void }>()
    const run = (taskId: string): { started: Promise<() => void>, start: (finish: () => void) => void } => {
      let r = runs.get(taskId)
      if (r == null) {
        let start!: (finish: () => void) => void
        r = { started: new Promise(resolve => { start = resolve }), start }
        runs.set(taskId, r)
      }
      return r
    }
    const started: string[] = []
    const executor: Executor = {
      execute: async (req) => {
        started.push(req.taskId)
        await new Promise<void>(resolve => { run(req.taskId).start(resolve) })
        return { outputs: [], loadMs: 0, inferenceMs: 0, backend: 'gated', threads: 1 }
      }
    }
    const queue = new WorkQueue(executor, { slots: 1, wallClock: () => wall })
    const [requesterEnd, workerEnd] = memoryChannelPair()
    const server = new TaskServer(workerEnd, queue, { requester: REQUESTER, signer: { peerId: WORKER.toString(), sign: (b) => KEY.sign(b) } })
    workerEnd.onData(chunk => { server.receive(chunk) })
    const client = new TaskClient(requesterEnd, { requester: REQUESTER, worker: WORKER.toString(), verify: (b, s) => WORKER.publicKey.verify(b, s) })
    requesterEnd.onData(chunk => { client.receive(chunk) })

    const first = client.run(request('first'))
    const second = client.run(request('second')) // waits in the queue while 'first' holds the only slot
    const finishFirst = await run('first').started
    wall += 100
    finishFirst()
    await first
    const finishSecond = await run('second').started
    wall += 40
    finishSecond()

    const a = (await first).receipt
    const b = (await second).receipt
    expect([a.startedAt, a.endedAt]).toEqual([1_700_000_000_000, 1_700_000_000_100])
    expect([b.startedAt, b.endedAt]).toEqual([1_700_000_000_100, 1_700_000_000_140])
    expect(started).toEqual(['first', 'second'])
    client.close()
  })
})

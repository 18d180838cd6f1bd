/**
 * A Node worker protects itself from the models it runs (real relay, real worker processes,
 * real onnxruntime-node in the worker's inference processes):
 * - a 100-byte model that allocates gigabytes fails its task with inference-failed and a reason,
 *   the worker stays up, a task running on its other slot completes, the next task succeeds;
 * - a task past its deadline is stopped and its slot serves the next task at once;
 * - the inference processes never outlive the worker (stopped, or killed).
 */
import '../../src/node/polyfill.js'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { argmax } from '../../src/models/digits.js'
import { toTypedArray } from '../../src/core/tensor.js'
import { MemoryModelStore } from '../../src/core/model-store.js'
import { memoryBomb, shapeTensor, slowMatMul } from '../helpers/hostile-models.js'
import { Cleanup, digitsTask, heldOutDigits, rejectionOf, spawnWorker, startPeer, startRelay, waitForDirect, withTimeout, WAIT_MS } from './helpers.js'
import type { TaskOutcome } from '../../src/core/task/client.js'
import type { ModelRef, TaskRequest } from '../../src/core/task-types.js'
import type { WireTensor } from '../../src/core/tensor.js'
import type { NodePeer } from '../../src/node/node-peer.js'

const [DIGIT] = heldOutDigits()
const cleanup = new Cleanup()
let relayAddr: string
let requester: NodePeer

beforeAll(async () => {
  relayAddr = (await startRelay(cleanup)).addr
  requester = await startPeer(cleanup, relayAddr, { work: false })
})
afterAll(async () => { await cleanup.run() })

async function startWorker (args: string[], from: NodePeer = requester): ReturnType<typeof spawnWorker> {
  const cache = await mkdtemp(join(tmpdir(), 'p2p-isolation-'))
  const worker = await spawnWorker(cleanup, relayAddr, ['--model-cache', cache, ...args])
  await waitForDirect(from.node, worker.peerId)
  return worker
}

async function offer (bytes: Uint8Array, name: string): Promise<ModelRef> {
  return { sha256: await requester.models.add(bytes), size: bytes.byteLength, name }
}

function task (taskId: string, model: ModelRef, inputs: WireTensor[], timeoutMs = 0): TaskRequest {
  return { taskId, jobId: 'isolation', model, inputs, timeoutMs, outputNames: [] }
}

async function run (workerId: string, request: TaskRequest): Promise<TaskOutcome> {
  return await withTimeout(requester.tasks.run(peerIdFromString(workerId), request), 60_000, `task ${request.taskId}`)
}

const predicted = (o: TaskOutcome): number => argmax(toTypedArray(o.result.outputs.find(t => t.name === 'probs')!) as Float32Array)

/** Process ids whose parent is `pid` (Linux /proc). */
function childrenOf (pid: number): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // Fields after the command name (which may hold spaces), in parentheses: state, ppid, …
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) found.push(Number(entry))
    } catch {} // it exited while we looked
  }
  return found
}

const alive = (pid: number): boolean => {
  try {
    // A zombie still has /proc/<pid>; it has exited.
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** Bound for a worker's inference processes to start (they start in the background after it joins). */
const PROCESS_START_MS = 90_000

/** Waits until `condition` holds, looking every 50 ms (process exits have no event to wait on here). */
async function until (condition: () => boolean, what: string | (() => string), timeoutMs = WAIT_MS): Promise<void> {
  await withTimeout((async () => { while (!condition()) await new Promise(resolve => setTimeout(resolve, 50)) })(), timeoutMs, what)
}

describe('inference isolation on a Node worker', () => {
  it('fails a model that allocates past --max-memory-mb with inference-failed and the reason, while the other slot and later tasks carry on', async () => {
    // This requester holds back one model's bytes until the test lets them go: the honest task
    // that needs them stays in flight in its inference process while the bomb goes off next to it.
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const held = new Set<string>()
    class GatedStore extends MemoryModelStore {
      async get (sha256: string): Promise<Uint8Array | undefined> {
        if (held.has(sha256)) await gate
        return await super.get(sha256)
      }
    }
    const owner = await startPeer(cleanup, relayAddr, { work: false, modelStore: new GatedStore() })
    const worker = await startWorker(['--slots', '2', '--max-memory-mb', '512'], owner)
    const offerHere = async (bytes: Uint8Array, name: string): Promise<ModelRef> => ({ sha256: await owner.models.add(bytes), size: bytes.byteLength, name })
    const runHere = async (request: TaskRequest): Promise<TaskOutcome> =>
      await withTimeout(owner.tasks.run(peerIdFromString(worker.peerId), request), 60_000, `task ${request.taskId}`)

    const bomb = await offerHere(memoryBomb(), 'bomb.onnx')
    expect(bomb.size).toBeLessThan(200)
    const slow = await offerHere(slowMatMul(2, 1 / 2048), 'slow-matmul.onnx')
    held.add(slow.sha256)
    const honest = runHere(task('honest', slow, [shapeTensor([2048, 2048])]))
    await worker.waitForLine(/^task honest running: /)

    // 2^30 float32 ones: 4 GiB, against a cap of 512 MiB.
    const err = await rejectionOf(runHere(task('bomb', bomb, [shapeTensor([2 ** 30])])))
    expect(err.code).toBe('inference-failed')
    expect(err.message).toMatch(/the model used more than 512 MiB on this worker \(cap --max-memory-mb/)
    await worker.waitForLine(/^worker: inference process restarted: the model used more than 512 MiB/)

    // The task on the other slot was in flight all along, and completes with the right answer.
    release()
    const outcome = await honest
    expect((toTypedArray(outcome.result.outputs[0]) as Float32Array)[0]).toBe(2048)

    // The worker is still up and serves the next task.
    expect(predicted(await runHere(digitsTask('after-bomb', DIGIT.pixels)))).toBe(DIGIT.label)
    expect(worker.child.exitCode).toBeNull()
  })

  it('refuses outputs over the frame limit in the inference process, before they cross into the worker', async () => {
    const owner = await startPeer(cleanup, relayAddr, { work: false })
    const worker = await startWorker([], owner)
    const bytes = memoryBomb()
    const bomb: ModelRef = { sha256: await owner.models.add(bytes), size: bytes.byteLength, name: 'big-output.onnx' }
    const runHere = async (request: TaskRequest): Promise<TaskOutcome> =>
      await withTimeout(owner.tasks.run(peerIdFromString(worker.peerId), request), 60_000, `task ${request.taskId}`)
    // 9 Mi float32 ones: 36 MiB of output, under the memory cap but over the 32 MiB frame limit.
    const err = await rejectionOf(runHere(task('big', bomb, [shapeTensor([9 * 2 ** 20])])))
    expect(err.code).toBe('inference-failed')
    expect(err.message).toMatch(/outputs are 37748736 bytes, over the \d+-byte frame limit/)
    expect(predicted(await runHere(digitsTask('after-big', DIGIT.pixels)))).toBe(DIGIT.label)
  })

  it('stops a task at its deadline: its inference process is replaced and the slot serves the next task at once', async () => {
    const worker = await startWorker(['--slots', '1'])
    await until(() => childrenOf(worker.child.pid!).length === 1, 'the worker\'s inference process')
    const [first] = childrenOf(worker.child.pid!)
    // 200 products of 2048×2048 matrices: about a minute of work, far past its 1.5 s deadline.
    const endless = await offer(slowMatMul(200, 1 / 2048), 'endless-matmul.onnx')
    const stuck = run(worker.peerId, task('endless', endless, [shapeTensor([2048, 2048])], 1500))
    stuck.catch(() => {})
    await worker.waitForLine(/^task endless running: /)
    const next = run(worker.peerId, digitsTask('after-deadline', DIGIT.pixels))

    expect((await rejectionOf(stuck)).code).toBe('timeout')
    await worker.waitForLine(/^task endless failed: .*timeout: task did not finish within 1500 ms/)
    // The one slot was given to the next task: before, it stayed held until the minute of work ended.
    expect(predicted(await withTimeout(next, WAIT_MS, 'the task queued behind the one past its deadline'))).toBe(DIGIT.label)
    // The process that ran it was killed (not left computing), and another one serves.
    await until(() => !alive(first), 'the inference process running the stopped task to exit')
    expect(childrenOf(worker.child.pid!)).toHaveLength(1)
  })

  it('leaves no inference process behind when the worker stops or is killed', async () => {
    const stopped = await startWorker(['--slots', '2'])
    // Each process loads tsx and onnxruntime: seconds on an idle machine, far more on a loaded one.
    await until(() => childrenOf(stopped.child.pid!).length === 2, () => `two inference processes (have ${childrenOf(stopped.child.pid!).join(', ')}); worker output:\n${stopped.lines.join('\n')}`, PROCESS_START_MS)
    const stoppedChildren = childrenOf(stopped.child.pid!)
    await stopped.stop()
    expect(await stopped.exited).toEqual({ code: 0, signal: null })
    await until(() => stoppedChildren.every(pid => !alive(pid)), 'the inference processes of a stopped worker to exit')

    // Killed while one of its inference processes is a minute into a run (onnxruntime blocks
    // that process's main thread): it still goes at once.
    const killed = await startWorker(['--slots', '2'])
    // Each process loads tsx and onnxruntime: seconds on an idle machine, far more on a loaded one.
    await until(() => childrenOf(killed.child.pid!).length === 2, () => `two inference processes (have ${childrenOf(killed.child.pid!).join(', ')}); worker output:\n${killed.lines.join('\n')}`, PROCESS_START_MS)
    const orphans = childrenOf(killed.child.pid!)
    const endless = await offer(slowMatMul(200, 1 / 2048), 'endless-matmul.onnx')
    run(killed.peerId, task('endless-when-killed', endless, [shapeTensor([2048, 2048])])).catch(() => {})
    await killed.waitForLine(/^task endless-when-killed running: /)
    killed.child.kill('SIGKILL')
    await killed.exited
    await until(() => orphans.every(pid => !alive(pid)), 'the inference processes of a killed worker to exit', 10_000)
  }, 300_000)
})

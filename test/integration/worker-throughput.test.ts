/**
 * A worker process tuned for tiny tasks (src/node/worker.ts --batch, --quiet) on the real stack:
 * relay on 127.0.0.1, direct WebRTC, the worker's inference child process, a requester peer here.
 * Many tasks sent at once reach the worker in coalesced stream writes and run in batches (the
 * worker's own count of inference calls says so), each task with its own verified receipt (a batch
 * signed once), and the
 * same probabilities local onnxruntime-node gives for it alone.
 */
import '../../src/node/polyfill.js'
import { afterAll, describe, expect, it } from 'vitest'
import { peerIdFromString } from '@libp2p/peer-id'
import * as ort from 'onnxruntime-node'
import { DIGITS_INPUT, DIGITS_OUTPUT_PROBS } from '../../src/models/digits.js'
import { relativeComparator } from '../../src/core/compare.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import { RECEIPT_BATCH_VERSION, verifyReceipt } from '../../src/core/receipt.js'
import type { WireTensor } from '../../src/core/tensor.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { Cleanup, DIGITS_MODEL_FILE, digitsTask, heldOutDigits, spawnWorker, startPeer, startRelay, startWorkerProcess, waitForAdvert, withTimeout } from './helpers.js'

const cleanup = new Cleanup()
afterAll(async () => { await cleanup.run() })

const same = relativeComparator()

describe('worker --batch and --quiet', () => {
  it('refuses --batch 0 with one line and exit status 2', async () => {
    const worker = startWorkerProcess(cleanup, ['--relay', '/ip4/127.0.0.1/tcp/1/ws/p2p/12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X', '--batch', '0'])
    const { code } = await withTimeout(worker.exited, 30_000, 'the worker to exit')
    expect(code).toBe(2)
    expect(worker.lines[0]).toMatch(/^worker: --batch must be a positive integer, got "0"/)
  })

  it('a --quiet worker with --batch 4 answers 24 tasks sent at once in batches, each with its own receipt', async () => {
    const relay = await startRelay(cleanup)
    const requester = await startPeer(cleanup, relay.addr, { work: false })
    const worker = await spawnWorker(cleanup, relay.addr, ['--quiet', '--batch', '4', '--slots', '1'])
    const sha = modelRef(builtinModel('digits')).sha256
    await waitForAdvert(requester, worker.peerId, a => a.worker && a.models.includes(sha), 'the worker\'s advert')
    const digits = heldOutDigits().slice(0, 24)
    const peer = peerIdFromString(worker.peerId)
    const outcomes = await withTimeout(Promise.all(digits.map(async (d, i) => await requester.tasks.run(peer, { ...digitsTask(`t${i}`, d.pixels), outputNames: [DIGITS_OUTPUT_PROBS] }))), 60_000, '24 tasks')
    // What local onnxruntime-node gives for each task run alone: a batch must never mix rows up,
    // and every probability must match, not only the most likely digit.
    const session = await ort.InferenceSession.create(DIGITS_MODEL_FILE, { intraOpNumThreads: 1 })
    const expected: WireTensor[] = []
    for (const d of digits) {
      const out = (await session.run({ [DIGITS_INPUT]: new ort.Tensor('float32', d.pixels, [1, 1, 28, 28]) }))[DIGITS_OUTPUT_PROBS]
      expected.push(fromTypedArray(DIGITS_OUTPUT_PROBS, 'float32', [...out.dims], out.data as Float32Array))
    }
    await session.release()
    outcomes.forEach((o, i) => {
      expect(o.receipt.taskId).toBe(`t${i}`)
      expect(o.receipt.worker).toBe(worker.peerId)
      expect(same(o.result.outputs, [expected[i]]), `task t${i}'s outputs`).toBe(true)
    })
    // A batch's results are signed once (receipt/2), and each receipt still checks alone with the worker's key.
    expect(outcomes.some(o => o.receipt.version === RECEIPT_BATCH_VERSION)).toBe(true)
    expect(new Set(outcomes.map(o => o.receipt.signature)).size).toBeLessThan(24)
    for (const o of outcomes) expect(await verifyReceipt(o.receipt, (b, sig) => peer.publicKey!.verify(b, sig))).toBe(true)
    expect(worker.lines.filter(l => /^task \S+ (running|done):/.test(l))).toEqual([])
    // Batches did form: with every task run alone (--batch 1, or a queue that never batches) the
    // results above would be the same, so the worker's count of inference calls is what tells.
    await worker.stop(30_000)
    const calls = worker.lines.map(l => /^worker: ran (\d+) task\(s\) in (\d+) inference call\(s\), at most (\d+) in one$/.exec(l)).findLast(m => m != null)
    expect(calls, worker.lines.slice(-5).join('\n')).toBeDefined()
    const [tasks, runs, largest] = calls!.slice(1).map(Number)
    expect(tasks).toBe(24)
    expect(runs).toBeLessThan(24)
    expect(largest).toBeGreaterThan(1)
    expect(largest).toBeLessThanOrEqual(4)
  })
})

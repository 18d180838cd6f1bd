/**
 * The digits model end to end on the real stack: a relay on 127.0.0.1, an onnxruntime-node
 * worker and a requester that meet through it and then talk over a direct WebRTC connection.
 * Held-out MNIST digits go over the wire and every answer is checked against onnxruntime-node
 * run locally on the same input.
 */
import '../../src/node/polyfill.js'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { TASK_PROTOCOL } from '../../src/core/task/codec.js'
import { toTypedArray } from '../../src/core/tensor.js'
import { connectionKind } from '../../src/net/connection-kind.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { argmax, DIGITS_INPUT, DIGITS_OUTPUTS } from '../../src/models/digits.js'
import { Cleanup, DIGITS_MODEL_FILE, digitsTask, heldOutDigits, rejectionOf, startPeer, startRelay, waitForDirect } from './helpers.js'
import type { InferenceSession } from 'onnxruntime-node'
import type { Connection } from '@libp2p/interface'
import type { NodePeer } from '../../src/node/node-peer.js'
import type { TaskOutcome } from '../../src/core/task/client.js'
import type { RoundTrip } from '../../src/net/task-service.js'
import type { Digit } from './helpers.js'
import type { TestRelay } from './helpers.js'

const DIGITS = builtinModel('digits')

describe('digits over direct WebRTC between two Node peers', () => {
  const cleanup = new Cleanup()
  let relay: TestRelay
  let worker: NodePeer
  let requester: NodePeer
  /** A worker whose copy of the model file has one byte changed. */
  let tampered: NodePeer
  let tamperedSha: string
  let direct: Connection
  let local: InferenceSession
  let digits: Digit[]

  beforeAll(async () => {
    const modelBytes = new Uint8Array(await readFile(DIGITS_MODEL_FILE))
    const corrupt = modelBytes.slice()
    corrupt[corrupt.length - 16] ^= 0x5a
    tamperedSha = createHash('sha256').update(corrupt).digest('hex')
    // The worker runs one intra-op thread; so does the reference, so the arithmetic is the same.
    local = await ort.InferenceSession.create(modelBytes, { intraOpNumThreads: 1, interOpNumThreads: 1 })
    digits = heldOutDigits().slice(0, 20) // interleaved by class: two of each digit

    relay = await startRelay(cleanup)
    ;[worker, requester, tampered] = await Promise.all([
      startPeer(cleanup, relay.addr),
      startPeer(cleanup, relay.addr, { work: false }),
      startPeer(cleanup, relay.addr, { fetchModel: async () => corrupt.slice() })
    ])
    direct = await waitForDirect(requester.node, worker.node)
    await waitForDirect(requester.node, tampered.node)
  })

  afterAll(async () => {
    await cleanup.run()
    await local?.release()
  })

  async function reference (pixels: Float32Array): Promise<Record<string, Float32Array>> {
    const out = await local.run({ [DIGITS_INPUT]: new ort.Tensor('float32', pixels, [1, 1, 28, 28]) })
    return Object.fromEntries(DIGITS_OUTPUTS.map(name => [name, out[name].data as Float32Array]))
  }

  /** Checks a result against local onnxruntime-node and returns the predicted class. */
  async function expectSameAsLocal (outcome: TaskOutcome, pixels: Float32Array, what: string): Promise<number> {
    const expected = await reference(pixels)
    const outputs = outcome.result.outputs
    expect(outputs.map(t => t.name).sort(), `${what}: output names`).toEqual([...DIGITS_OUTPUTS].sort())
    for (const name of DIGITS_OUTPUTS) {
      const tensor = outputs.find(t => t.name === name)!
      expect({ dtype: tensor.dtype, dims: tensor.dims }, `${what}: ${name}`).toEqual({ dtype: 'float32', dims: [1, 10] })
      const got = toTypedArray(tensor) as Float32Array
      const want = expected[name]
      const bitExact = Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))
      if (!bitExact) {
        const maxDiff = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i])))
        expect(maxDiff, `${what}: ${name} differs from local onnxruntime-node by up to ${maxDiff}`).toBeLessThanOrEqual(1e-6)
      }
    }
    return argmax(toTypedArray(outputs.find(t => t.name === 'probs')!) as Float32Array)
  }

  it('connects requester and worker over a direct WebRTC connection', () => {
    expect(connectionKind(direct)).toBe('direct WebRTC')
    expect(direct.limits).toBeUndefined()
    expect(direct.remoteAddr.toString()).toContain('/webrtc/')
    const back = worker.node.getConnections(requester.node.peerId).filter(c => c.status === 'open').map(connectionKind)
    expect(back).toContain('direct WebRTC')
  })

  it('classifies 20 held-out MNIST digits exactly as local onnxruntime-node does, over the WebRTC connection', async () => {
    const outcomes: TaskOutcome[] = []
    let correct = 0
    for (const [i, digit] of digits.entries()) {
      const outcome = await requester.tasks.run(worker.node.peerId, digitsTask(`digit-${i}`, digit.pixels))
      outcomes.push(outcome)
      if (await expectSameAsLocal(outcome, digit.pixels, `digit #${i} (a ${digit.label})`) === digit.label) correct++
    }
    expect(correct, `${correct}/20 held-out digits classified correctly`).toBeGreaterThanOrEqual(18)

    for (const { result, roundTripMs } of outcomes) {
      expect(result.backend).toBe('onnxruntime-node cpu 1 thread')
      expect(result.threads).toBe(1)
      const t = result.timings
      expect(t.inferenceMs).toBeGreaterThan(0)
      expect(t.totalMs).toBeGreaterThanOrEqual(t.inferenceMs)
      expect(t.totalMs).toBeGreaterThanOrEqual(t.queueMs + t.loadMs + t.inferenceMs - 1e-3)
      expect(roundTripMs).toBeGreaterThanOrEqual(t.totalMs - 1e-3) // same clock: the requester's wait covers the worker's
    }
    // The worker keeps the model's session loaded for later tasks (that a cached session is reused,
    // not created again, is ort-runner.test.ts's "creates one session per model and reuses it"; the
    // tasks' load times are measured, so they are not compared here).
    expect(worker.runners.flatMap(r => r.cachedModels)).toContain(DIGITS.sha256)

    // The relay is not in the data path: the only connection carrying the task stream, on either
    // side, is the direct WebRTC one, and the relay never saw a task stream.
    const carrying = (from: NodePeer, to: NodePeer): string[] => from.node.getConnections(to.node.peerId)
      .filter(c => c.streams.some(s => s.protocol === TASK_PROTOCOL))
      .map(c => `${connectionKind(c)} ${c.remoteAddr.toString()}`)
    expect(carrying(requester, worker)).toEqual([expect.stringMatching(/^direct WebRTC .*\/webrtc\//)])
    expect(carrying(worker, requester)).toEqual([expect.stringMatching(/^direct WebRTC .*\/webrtc\//)])
    expect(relay.node.getConnections().flatMap(c => c.streams.map(s => s.protocol))).not.toContain(TASK_PROTOCOL)
  })

  it('answers model-unavailable for a model the worker does not have', async () => {
    const request = digitsTask('unknown-model', digits[0].pixels)
    request.model = { sha256: 'ab'.repeat(32), size: 4096, name: 'not-on-this-worker.onnx' }
    const err = await rejectionOf(requester.tasks.run(worker.node.peerId, request))
    expect(err.code).toBe('model-unavailable')
    expect(err.message).toContain('not-on-this-worker.onnx')
  })

  it('tells the requester\'s listeners of every finished task (round trip, ok or its code) and counts it in the worker\'s advert', async () => {
    const seen: RoundTrip[] = []
    const stop = requester.tasks.onRoundTrip(r => { seen.push(r) })
    const doneBefore = worker.advertiser!.advert().tasksDone ?? 0
    const outcome = await requester.tasks.run(worker.node.peerId, digitsTask('round-trip-ok', digits[0].pixels))
    const missing = digitsTask('round-trip-failed', digits[0].pixels)
    missing.model = { sha256: 'cd'.repeat(32), size: 4096, name: 'not-anywhere.onnx' }
    await rejectionOf(requester.tasks.run(worker.node.peerId, missing))
    stop()
    await requester.tasks.run(worker.node.peerId, digitsTask('after-stop', digits[0].pixels))
    expect(seen).toEqual([
      { worker: worker.node.peerId.toString(), taskId: 'round-trip-ok', modelSha256: modelRef(DIGITS).sha256, ok: true, ms: outcome.roundTripMs },
      { worker: worker.node.peerId.toString(), taskId: 'round-trip-failed', modelSha256: 'cd'.repeat(32), ok: false, code: 'model-unavailable', ms: expect.any(Number) }
    ])
    // Two tasks ran to a result (one before, one after the listener stopped); the failed one counts as failed.
    expect(worker.advertiser!.advert().tasksDone).toBe(doneBefore + 2)
    expect(worker.advertiser!.advert().tasksFailed ?? 0).toBeGreaterThanOrEqual(1)
  })

  it('answers model-hash-mismatch when the worker\'s model file does not hash to the requested sha256', async () => {
    const err = await rejectionOf(requester.tasks.run(tampered.node.peerId, digitsTask('tampered-model', digits[0].pixels)))
    expect(err.code).toBe('model-hash-mismatch')
    expect(err.message).toContain(modelRef(DIGITS).sha256)
    expect(err.message).toContain(tamperedSha)
    expect(tampered.runners.flatMap(r => r.cachedModels)).toEqual([]) // it never loaded the bad bytes
  })

  it('answers a wrong input shape with a readable error, and keeps working afterwards', async () => {
    const digit = digits[3]
    // 28×27 floats: the byte length matches the dims, so only the model can object.
    const request = digitsTask('wrong-shape', digit.pixels.subarray(0, 28 * 27), { dims: [1, 1, 28, 27] })
    const err = await rejectionOf(requester.tasks.run(worker.node.peerId, request))
    expect(['inference-failed', 'bad-request']).toContain(err.code)
    expect(err.message).toMatch(/dimension|shape/i)
    expect(err.message).toContain('27')

    const outcome = await requester.tasks.run(worker.node.peerId, digitsTask('after-wrong-shape', digit.pixels))
    expect(await expectSameAsLocal(outcome, digit.pixels, 'the digit after the bad one')).toBe(digit.label)
  })
})

/**
 * Fuzzing the task protocol's decoders (decodeFrameBody, FrameDecoder): whatever bytes arrive, a
 * decoder returns a frame that obeys the protocol's limits or throws a `bad-request` TaskError —
 * never another exception, never a value past a limit, never a hang. Inputs: valid frames with
 * random field values encoded by protobufjs (packed dims), those mutated at the wire level, and
 * random bytes. Seeded: a failure prints FUZZ_SEED to replay it (see test/helpers/fuzz.ts).
 */
import { describe, expect, it } from 'vitest'
import protobuf from 'protobufjs'
import { decodeFrameBody, encodeFrame, FrameDecoder } from '../../src/core/task/codec.js'
import { TaskError } from '../../src/core/errors.js'
import { DEFAULT_LIMITS } from '../../src/core/limits.js'
import { DTYPE_BYTES, elementCount } from '../../src/core/tensor.js'
import { MAX_RECEIPT_BATCH, MAX_RECEIPT_PATH } from '../../src/core/receipt.js'
import { concat, fuzz, mutate, pbEncode, Rng, varint } from '../helpers/fuzz.js'
import type { FrameMessage } from '../../src/core/task/codec.js'
import type { ProtocolLimits } from '../../src/core/limits.js'
import type { WireTensor } from '../../src/core/tensor.js'

const root = protobuf.loadSync('src/core/task/pb/task.proto')
const CASES = 12_000
/** Tight limits, so random frames cross them often. */
const SMALL: ProtocolLimits = { maxFrameBytes: 4096, maxTensors: 3, maxDims: 3, maxElements: 64, maxIdLength: 16 }
const DTYPE_SIZES = [0, 4, 8, 2, 1, 2, 4, 8, 1, 2, 4, 8, 1]

function sha (rng: Rng): string {
  if (rng.chance(0.9)) return Array.from({ length: 64 }, () => '0123456789abcdef'[rng.int(16)]).join('')
  return rng.pick(['', 'ABCDEF'.repeat(10) + '0123', 'zz'.repeat(32), '0'.repeat(63)])
}

function tensor (rng: Rng): Record<string, unknown> {
  const dtype = rng.chance(0.9) ? 1 + rng.int(12) : rng.pick([0, 13, 200])
  const dims = Array.from({ length: rng.int(rng.chance(0.9) ? 4 : 12) }, () => rng.chance(0.9) ? rng.int(5) : rng.uint())
  let bytes = elementCount(dims) * (DTYPE_SIZES[dtype] ?? 1)
  if (!(bytes <= 512) || rng.chance(0.1)) bytes = rng.int(64)
  return { name: rng.text(), dtype, dims, data: rng.bytes(bytes) }
}

function tensors (rng: Rng): Array<Record<string, unknown>> {
  return Array.from({ length: rng.int(rng.chance(0.9) ? 4 : 70) }, () => tensor(rng))
}

/** A Frame with random field values, as any conforming peer could send it. */
function randomFrame (rng: Rng): Uint8Array {
  const frame: Record<string, unknown> = {}
  const kinds = rng.chance(0.95) ? [rng.int(5)] : [rng.int(5), rng.int(5)]
  for (const kind of kinds) {
    switch (kind) {
      case 0:
        frame.request = {
          taskId: rng.text(),
          jobId: rng.text(),
          model: { sha256: sha(rng), size: String(rng.uint()), name: rng.text() },
          inputs: tensors(rng),
          timeoutMs: rng.uint() >>> 0,
          outputNames: Array.from({ length: rng.int(4) }, () => rng.text()),
          batchReceipts: rng.chance(0.5)
        }
        break
      case 1: {
        const result = {
          outputs: tensors(rng),
          timings: rng.chance(0.8) ? { queueMs: rng.float() * 10, loadMs: rng.pick([0, 1.5, -1, NaN, Infinity]), inferenceMs: rng.uint(), totalMs: rng.float() * 100 } : undefined,
          backend: rng.text(),
          threads: rng.uint() >>> 0,
          receipt: rng.chance(0.7)
            ? {
                startedAt: String(rng.uint()),
                endedAt: String(rng.uint()),
                signature: rng.bytes(rng.chance(0.8) ? 64 : rng.int(100)),
                ...(rng.chance(0.5) ? { batchIndex: rng.int(70), batchSize: rng.int(70), path: Array.from({ length: rng.int(9) }, () => rng.bytes(rng.chance(0.9) ? 32 : rng.int(40))) } : {})
              }
            : undefined
        }
        const error = { code: rng.int(9), message: rng.text(40) }
        const which = rng.int(4)
        frame.response = { taskId: rng.text(), result: which !== 1 ? result : undefined, error: which >= 1 ? error : undefined }
        break
      }
      case 2: frame.ping = { nonce: String(rng.uint()) }; break
      case 3: frame.pong = { nonce: rng.pick(['0', '18446744073709551615', String(rng.uint())]) }; break
      default: frame.cancel = { taskId: rng.text() }
    }
  }
  return pbEncode(root, 'Frame', frame)
}

function checkTensors (list: WireTensor[], limits: ProtocolLimits, input?: Uint8Array): void {
  expect(list.length).toBeLessThanOrEqual(limits.maxTensors)
  const names = new Set(list.map(t => t.name))
  expect(names.size).toBe(list.length)
  for (const t of list) {
    expect(t.name.length).toBeGreaterThan(0)
    expect(t.name.length).toBeLessThanOrEqual(limits.maxIdLength)
    expect(t.dims.length).toBeLessThanOrEqual(limits.maxDims)
    for (const d of t.dims) expect(Number.isSafeInteger(d) && d >= 0).toBe(true)
    const elements = elementCount(t.dims)
    expect(elements).toBeLessThanOrEqual(limits.maxElements)
    expect(t.data.byteLength).toBe(elements * DTYPE_BYTES[t.dtype])
    // a view of the received bytes, never an allocation of its own
    if (input != null && t.data.byteLength > 0) expect(t.data.buffer).toBe(input.buffer)
  }
}

/** What "a valid value" means for each kind of frame. */
function checkFrame (msg: FrameMessage, limits: ProtocolLimits, input?: Uint8Array): void {
  const id = (s: string, empty = false): void => {
    expect(s.length).toBeLessThanOrEqual(limits.maxIdLength)
    if (!empty) expect(s.length).toBeGreaterThan(0)
  }
  switch (msg.type) {
    case 'request': {
      const r = msg.request
      id(r.taskId); id(r.jobId, true); id(r.model.name, true)
      expect(r.model.sha256).toMatch(/^[0-9a-f]{64}$/)
      expect(Number.isSafeInteger(r.model.size) && r.model.size >= 0).toBe(true)
      expect(r.outputNames.length).toBeLessThanOrEqual(limits.maxTensors)
      for (const n of r.outputNames) id(n)
      checkTensors(r.inputs, limits, input)
      break
    }
    case 'response': {
      id(msg.response.taskId)
      if (!msg.response.ok) break
      const { result } = msg.response
      id(result.backend, true)
      for (const v of Object.values(result.timings)) expect(Number.isFinite(v) && v >= 0).toBe(true)
      if (result.receipt != null) {
        expect(result.receipt.signature.byteLength).toBe(64)
        expect(Number.isSafeInteger(result.receipt.startedAt) && Number.isSafeInteger(result.receipt.endedAt)).toBe(true)
        const batch = result.receipt.batch
        if (batch != null) {
          expect(batch.size >= 2 && batch.size <= MAX_RECEIPT_BATCH && batch.index < batch.size).toBe(true)
          expect(batch.path.length).toBeLessThanOrEqual(MAX_RECEIPT_PATH)
          for (const h of batch.path) expect(h.byteLength).toBe(32)
        }
      }
      checkTensors(result.outputs, limits, input)
      break
    }
    case 'cancel': id(msg.taskId); break
    default: expect(Number.isFinite(msg.nonce)).toBe(true)
  }
}

function expectBadRequest (err: unknown): void {
  if (!(err instanceof TaskError) || err.code !== 'bad-request') throw new Error(`expected a bad-request TaskError, got ${String(err)}`, { cause: err })
}

/** Decodes one body; a returned frame must be valid, anything thrown a bad-request TaskError. */
function decodeChecked (body: Uint8Array, limits: ProtocolLimits): 'ok' | 'bad' {
  let msg: FrameMessage
  try {
    msg = decodeFrameBody(body, limits)
  } catch (err) {
    expectBadRequest(err)
    return 'bad'
  }
  checkFrame(msg, limits, body)
  return 'ok'
}

describe('task protocol fuzzing', () => {
  const corpus = Array.from({ length: 64 }, (_, i) => randomFrame(new Rng(i)))

  it(`decodeFrameBody: ${CASES} structured frames from protobufjs, valid and mutated`, () => {
    const seen = { ok: 0, bad: 0 }
    fuzz('task structured', CASES, (rng) => {
      const frame = randomFrame(rng)
      if (rng.chance(0.25)) return frame
      let m = mutate(rng, frame, corpus)
      if (rng.chance(0.3)) m = mutate(rng, m, corpus)
      return m
    }, (body, i) => { seen[decodeChecked(body, i % 2 === 0 ? DEFAULT_LIMITS : SMALL)]++ })
    // both paths exercised, not just rejection
    expect(seen.ok).toBeGreaterThan(CASES / 20)
    expect(seen.bad).toBeGreaterThan(CASES / 4)
  })

  it(`decodeFrameBody: ${CASES} random byte strings`, () => {
    fuzz('task random', CASES, (rng) => rng.bytes(rng.int(rng.chance(0.9) ? 64 : 2048)), (body, i) => {
      decodeChecked(body, i % 2 === 0 ? DEFAULT_LIMITS : SMALL)
    })
  })

  it(`FrameDecoder: ${CASES / 4} streams of frames (length prefixes mutated too) in random chunks`, () => {
    fuzz('task stream', CASES / 4, (rng) => {
      const parts: Array<number[] | Uint8Array> = []
      for (let n = 1 + rng.int(4); n > 0; n--) {
        const body = rng.chance(0.5) ? randomFrame(rng) : mutate(rng, randomFrame(rng), corpus)
        parts.push(rng.chance(0.9) ? varint(body.length) : rng.pick([varint(0), varint(2 ** 28), varint(SMALL.maxFrameBytes + 1), [0xff, 0xff, 0xff, 0xff, 0xff, 0x01], varint(body.length + rng.int(5))]), body)
      }
      return concat(parts)
    }, (stream, i) => {
      const limits = i % 2 === 0 ? DEFAULT_LIMITS : SMALL
      const decoder = new FrameDecoder(limits)
      const rng = new Rng(i)
      for (let at = 0; at < stream.length;) {
        const size = 1 + rng.int(rng.chance(0.5) ? 8 : 600)
        let frames: FrameMessage[]
        try {
          frames = decoder.push(stream.slice(at, at + size))
        } catch (err) {
          expectBadRequest(err)
          return
        }
        for (const f of frames) checkFrame(f, limits)
        // what stays buffered is at most one unfinished frame within the limit (and its prefix)
        expect(decoder.pending).toBeLessThan(limits.maxFrameBytes + 5)
        at += size
      }
    })
  })

  it('regressions found by the fuzzer', () => {
    const model = { sha256: 'ab'.repeat(32), size: 1, name: '' }
    // timings that are not finite, non-negative numbers would poison speed measurements downstream
    for (const bad of [NaN, -1, Infinity]) {
      const body = encodeFrame({ type: 'response', response: { taskId: 't', ok: true, result: { outputs: [], timings: { queueMs: 0, loadMs: bad, inferenceMs: 0, totalMs: 0 }, backend: '', threads: 1 } } }).subarray(1)
      expect(decodeChecked(body, DEFAULT_LIMITS)).toBe('bad')
    }
    // a model size past 2^53 cannot be compared exactly with the bytes a transfer announces
    const big = pbEncode(root, 'Frame', { request: { taskId: 't', model: { ...model, size: '18446744073709551615' } } })
    expect(decodeChecked(big, DEFAULT_LIMITS)).toBe('bad')
    // unknown fields as groups nested a million deep: protons skips groups recursively, and the
    // stack overflow that ends it must still read as a bad frame
    expect(decodeChecked(new Uint8Array(1 << 20).fill(0x7b), DEFAULT_LIMITS)).toBe('bad')
  })
})

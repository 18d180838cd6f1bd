/**
 * Fuzzing the model transfer protocol's decoders: the holder's request decoding and the fetcher's
 * reply decoding, alone and inside ModelTransferServer / ModelDownload. Whatever arrives, a decoder
 * returns a checked value or throws a TaskError (`bad-request` when the bytes are malformed); the
 * two ends never throw out of `receive`, settle with a TaskError or verified bytes, and allocate
 * nothing beyond the size the task named. Seeded: a failure prints FUZZ_SEED to replay it.
 */
import { describe, expect, it } from 'vitest'
import protobuf from 'protobufjs'
import { decodeModelReply, decodeModelRequest, MODEL_CHUNK_BYTES } from '../../src/core/model-transfer/codec.js'
import { ModelDownload } from '../../src/core/model-transfer/client.js'
import { ModelTransferServer } from '../../src/core/model-transfer/server.js'
import { LengthPrefixedReader, lengthPrefixed } from '../../src/core/framing.js'
import { sha256Hex } from '../../src/core/hash.js'
import { TaskError } from '../../src/core/errors.js'
import { concat, fuzz, FUZZ_SEED, mutate, pbEncode, Rng, varint } from '../helpers/fuzz.js'
import type { FrameChannel } from '../../src/core/channel.js'
import type { ModelRef } from '../../src/core/task-types.js'

const root = protobuf.loadSync('src/core/model-transfer/pb/model.proto')
const CASES = 12_000
const MODEL = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff)
const SHA = await sha256Hex(MODEL)
const REF: ModelRef = { sha256: SHA, size: MODEL.length, name: 'fuzz.onnx' }

function hex (rng: Rng): string {
  if (rng.chance(0.3)) return SHA
  if (rng.chance(0.8)) return Array.from({ length: 64 }, () => '0123456789abcdef'[rng.int(16)]).join('')
  return rng.pick(['', SHA.toUpperCase(), SHA.slice(1), `${SHA}0`, rng.text()])
}

function randomRequest (rng: Rng): Uint8Array {
  return pbEncode(root, 'ModelRequest', { sha256: hex(rng), offset: String(rng.chance(0.5) ? rng.int(MODEL.length + 2) : rng.uint()) })
}

/** One ModelReply with random values; mostly a plausible step of a transfer of MODEL. */
function randomReply (rng: Rng, at = 0): Uint8Array {
  const reply: Record<string, unknown> = {}
  const fields = rng.chance(0.9) ? [rng.int(3)] : [rng.int(3), rng.int(3)]
  for (const f of fields) {
    if (f === 0) reply.header = { size: String(rng.chance(0.7) ? MODEL.length : rng.uint()) }
    else if (f === 1) reply.chunk = rng.chance(0.7) ? MODEL.subarray(at, at + 1 + rng.int(1200)) : rng.bytes(rng.int(rng.chance(0.95) ? 600 : MODEL_CHUNK_BYTES + 10))
    else reply.error = { code: rng.pick(['model-unavailable', 'bad-request', 'busy', 'timeout', '', rng.text()]), message: rng.text(40) }
  }
  return pbEncode(root, 'ModelReply', reply)
}

function expectTaskError (err: unknown, codes: readonly string[] = ['bad-request']): void {
  if (!(err instanceof TaskError) || !codes.includes(err.code)) throw new Error(`expected a TaskError (${codes.join('|')}), got ${String(err)}`, { cause: err })
}

describe('model transfer fuzzing', () => {
  const requests = Array.from({ length: 32 }, (_, i) => randomRequest(new Rng(i)))
  const replies = Array.from({ length: 32 }, (_, i) => randomReply(new Rng(i)))

  it(`decodeModelRequest: ${CASES} structured (protobufjs, mutated) and random requests`, () => {
    const seen = { ok: 0, bad: 0 }
    fuzz('model request', CASES, (rng) => {
      const kind = rng.int(4)
      if (kind === 0) return randomRequest(rng)
      if (kind === 1) return rng.bytes(rng.int(200))
      return mutate(rng, randomRequest(rng), requests)
    }, (body) => {
      try {
        const r = decodeModelRequest(body)
        expect(r.sha256).toMatch(/^[0-9a-f]{64}$/)
        expect(Number.isSafeInteger(r.offset) && r.offset >= 0).toBe(true)
        seen.ok++
      } catch (err) {
        expectTaskError(err)
        seen.bad++
      }
    })
    expect(seen.ok).toBeGreaterThan(CASES / 10)
    expect(seen.bad).toBeGreaterThan(CASES / 10)
  })

  it(`decodeModelReply: ${CASES} structured (protobufjs, mutated) and random replies`, () => {
    const seen = { ok: 0, bad: 0 }
    fuzz('model reply', CASES, (rng) => {
      const kind = rng.int(4)
      if (kind === 0) return randomReply(rng)
      if (kind === 1) return rng.bytes(rng.int(200))
      return mutate(rng, randomReply(rng), replies)
    }, (body) => {
      try {
        const r = decodeModelReply(body)
        expect([r.header, r.chunk, r.error].filter(x => x != null)).toHaveLength(1)
        if (r.header != null) expect(r.header.size).toBeLessThanOrEqual(BigInt(Number.MAX_SAFE_INTEGER))
        if (r.chunk != null) expect(r.chunk.byteLength).toBeLessThanOrEqual(body.byteLength)
        seen.ok++
      } catch (err) {
        expectTaskError(err)
        seen.bad++
      }
    })
    expect(seen.ok).toBeGreaterThan(CASES / 10)
    expect(seen.bad).toBeGreaterThan(CASES / 10)
  })

  it(`ModelDownload: ${CASES / 4} reply streams in random chunks settle with verified bytes or a TaskError`, async () => {
    const downloads: Array<{ download: ModelDownload, input: Uint8Array }> = []
    fuzz('model download', CASES / 4, (rng) => {
      // a plausible transfer (header, chunks in order) with random faults along the way
      const frames: Array<ArrayLike<number>> = []
      let at = 0
      if (rng.chance(0.8)) frames.push(lengthPrefixed(randomReply(rng)))
      for (let n = rng.int(8); n > 0; n--) {
        if (rng.chance(0.7)) {
          const size = 1 + rng.int(1200)
          frames.push(lengthPrefixed(pbEncode(root, 'ModelReply', { chunk: MODEL.subarray(at, at + size) })))
          at += size
        } else {
          const body = rng.chance(0.5) ? randomReply(rng, at) : mutate(rng, randomReply(rng, at), replies)
          frames.push(rng.chance(0.9) ? varint(body.length) : rng.pick([varint(0), varint(2 ** 31), varint(MODEL_CHUNK_BYTES + 2000)]), body)
        }
      }
      return concat(frames)
    }, (stream, i) => {
      const download = new ModelDownload(REF, { maxBytes: MODEL.length * 2 })
      const rng = new Rng(i)
      for (let at = 0; at < stream.length;) {
        const size = 1 + rng.int(700)
        // never throws, whatever it is fed: a bad frame settles `bytes` instead
        download.receive(stream.slice(at, at + size))
        at += size
      }
      download.closed()
      downloads.push({ download, input: stream })
    })
    let verified = 0
    for (const [i, { download, input }] of downloads.entries()) {
      try {
        const bytes = await download.bytes
        expect(await sha256Hex(bytes)).toBe(SHA)
        verified++
      } catch (err) {
        try {
          expectTaskError(err, ['bad-request', 'model-unavailable', 'model-hash-mismatch', 'busy'])
        } catch (e) {
          throw new Error(`model download case ${i} (FUZZ_SEED=${FUZZ_SEED}): ${(e as Error).message}\ninput: ${Buffer.from(input).toString('hex').slice(0, 1024)}`)
        }
      }
    }
    expect(verified).toBeGreaterThan(0)
  })

  it(`ModelTransferServer: ${CASES / 4} request streams answer only well-formed replies, never throw`, async () => {
    const servers: Array<{ done: Promise<Uint8Array[]>, input: Uint8Array }> = []
    fuzz('model server', CASES / 4, (rng) => {
      const body = rng.chance(0.3) ? randomRequest(rng) : rng.chance(0.7) ? mutate(rng, randomRequest(rng), requests) : rng.bytes(rng.int(100))
      const prefix = rng.chance(0.9) ? varint(body.length) : rng.pick([varint(0), varint(2000), [0xff, 0xff, 0xff, 0xff, 0xff, 0x01]])
      return concat([prefix, body, rng.chance(0.2) ? rng.bytes(rng.int(50)) : []])
    }, (input, i) => {
      const sent: Uint8Array[] = []
      const done = new Promise<Uint8Array[]>((resolve) => {
        const channel: FrameChannel = { send: (bytes) => { sent.push(bytes) }, close: () => { resolve(sent) } }
        const server = new ModelTransferServer(channel, async (sha) => sha === SHA ? MODEL : undefined)
        const rng = new Rng(i)
        for (let at = 0; at < input.length;) {
          const size = 1 + rng.int(40)
          server.receive(input.slice(at, at + size))
          at += size
        }
        // a request cut short is answered only when the stream closes: nothing more to check then
        if (sent.length === 0) setTimeout(() => { server.closed(); resolve(sent) }, 0)
      })
      servers.push({ done, input })
    })
    let served = 0
    for (const [i, { done, input }] of servers.entries()) {
      const frames = await done
      try {
        const reader = new LengthPrefixedReader(MODEL_CHUNK_BYTES + 1024)
        const replies = frames.flatMap(f => reader.push(f)).map(b => decodeModelReply(b))
        expect(reader.pending).toBe(0)
        if (replies.some(r => r.chunk != null)) served++
        if (replies.length > 0 && replies[0].error != null) expect(replies).toHaveLength(1)
      } catch (err) {
        throw new Error(`model server case ${i} (FUZZ_SEED=${FUZZ_SEED}): ${(err as Error).message}\ninput: ${Buffer.from(input).toString('hex')}`)
      }
    }
    expect(served).toBeGreaterThan(0)
  })
})

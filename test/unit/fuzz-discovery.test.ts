/**
 * Fuzzing the discovery decoders: signed adverts (decodeSigned), advert bodies (decodeAdvertBody)
 * and a sync answer as a peer reads it (length-prefixed signed adverts, MAX_ADVERT_BYTES each, the
 * reader and codec functions the discovery service uses). Whatever arrives, a decoder returns a value
 * within every advert limit or throws a `bad-request` TaskError; nothing else escapes, nothing
 * is allocated past the limits. Seeded: a failure prints FUZZ_SEED to replay it.
 */
import { describe, expect, it } from 'vitest'
import protobuf from 'protobufjs'
import { decodeAdvertBody, decodeSigned, MAX_ADVERT_ADDRS, MAX_ADVERT_BYTES, MAX_ADVERT_MODELS } from '../../src/core/discovery/codec.js'
import { LengthPrefixedReader } from '../../src/core/framing.js'
import { TaskError } from '../../src/core/errors.js'
import { concat, fuzz, mutate, pbEncode, Rng, varint } from '../helpers/fuzz.js'

const root = protobuf.loadSync('src/core/discovery/pb/advert.proto')
const CASES = 12_000

function randomBody (rng: Rng): Uint8Array {
  const addrs = Array.from({ length: rng.int(rng.chance(0.9) ? 4 : 12) }, () => rng.bytes(rng.chance(0.95) ? 8 + rng.int(60) : 250 + rng.int(100)))
  const models = Array.from({ length: rng.int(rng.chance(0.9) ? 5 : 40) }, () => ({
    sha256: rng.bytes(rng.chance(0.9) ? 32 : rng.int(40)),
    loaded: rng.chance(0.5),
    ms: rng.chance(0.8) ? rng.float() * 50 : rng.pick([0, -1, NaN, Infinity, -Infinity, 3.4e38]),
    backend: rng.chance(0.9) ? rng.text() : 'y'.repeat(97)
  }))
  const slots = rng.uint() >>> 0
  return pbEncode(root, 'AdvertBody', {
    seq: rng.chance(0.9) ? String(rng.uint()) : '18446744073709551615',
    kind: rng.int(6),
    addrs,
    leaving: rng.chance(0.1),
    worker: rng.chance(0.7),
    paused: rng.chance(0.2),
    backend: rng.text(),
    threads: rng.uint() >>> 0,
    slots,
    freeSlots: rng.uint() >>> 0,
    maxModelBytes: String(rng.uint()),
    models,
    tasksDone: rng.chance(0.9) ? String(rng.uint()) : '18446744073709551615',
    tasksFailed: rng.chance(0.9) ? String(rng.int(1000)) : '9007199254740992',
    queueDepth: rng.chance(0.9) ? rng.int(slots + 1) : rng.uint() >>> 0
  })
}

function randomSigned (rng: Rng): Uint8Array {
  const body = rng.chance(0.8) ? randomBody(rng) : mutate(rng, randomBody(rng), [])
  return pbEncode(root, 'SignedAdvert', { publicKey: rng.bytes(rng.chance(0.9) ? 36 : rng.int(100)), body, signature: rng.bytes(rng.chance(0.9) ? 64 : rng.int(100)) })
}

function expectBadRequest (err: unknown): void {
  if (!(err instanceof TaskError) || err.code !== 'bad-request') throw new Error(`expected a bad-request TaskError, got ${String(err)}`, { cause: err })
}

/** Decodes a body; what comes back must be within every advert limit. */
function bodyChecked (bytes: Uint8Array): 'ok' | 'bad' {
  let decoded: ReturnType<typeof decodeAdvertBody>
  try {
    decoded = decodeAdvertBody(bytes)
  } catch (err) {
    expectBadRequest(err)
    return 'bad'
  }
  const { envelope, addrs } = decoded
  expect(Number.isSafeInteger(envelope.seq) && envelope.seq >= 0).toBe(true)
  expect(addrs.length).toBeLessThanOrEqual(MAX_ADVERT_ADDRS)
  for (const a of addrs) expect(a.byteLength).toBeLessThanOrEqual(300)
  const a = envelope.advert
  expect(['unknown', 'tab', 'node', 'relay']).toContain(a.kind)
  expect(a.backend.length).toBeLessThanOrEqual(96)
  expect(a.models.length).toBeLessThanOrEqual(MAX_ADVERT_MODELS)
  for (const sha of a.models) expect(sha).toMatch(/^[0-9a-f]{64}$/)
  for (const ms of Object.values(a.speeds)) expect(Number.isFinite(ms) && ms > 0).toBe(true)
  for (const b of Object.values(a.backends)) expect(b.length).toBeLessThanOrEqual(96)
  expect(Number.isFinite(a.maxModelBytes) && a.maxModelBytes >= 0).toBe(true)
  for (const n of [a.tasksDone, a.tasksFailed]) if (n !== undefined) expect(Number.isSafeInteger(n) && n > 0).toBe(true)
  if (a.queueDepth !== undefined) expect(a.queueDepth > 0 && a.queueDepth <= a.slots).toBe(true)
  return 'ok'
}

function signedChecked (bytes: Uint8Array): 'ok' | 'bad' {
  try {
    const s = decodeSigned(bytes)
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_ADVERT_BYTES)
    for (const part of [s.publicKey, s.body, s.signature]) expect(part.byteLength).toBeLessThanOrEqual(bytes.byteLength)
    return bodyChecked(s.body)
  } catch (err) {
    expectBadRequest(err)
    return 'bad'
  }
}

describe('discovery fuzzing', () => {
  const bodies = Array.from({ length: 32 }, (_, i) => randomBody(new Rng(i)))
  const signed = Array.from({ length: 32 }, (_, i) => randomSigned(new Rng(i)))

  it(`decodeAdvertBody: ${CASES} structured (protobufjs, mutated) and random bodies`, () => {
    const seen = { ok: 0, bad: 0 }
    fuzz('advert body', CASES, (rng) => {
      const kind = rng.int(5)
      if (kind === 0) return randomBody(rng)
      if (kind === 1) return rng.bytes(rng.int(rng.chance(0.9) ? 200 : 4000))
      return mutate(rng, randomBody(rng), bodies)
    }, (bytes) => { seen[bodyChecked(bytes)]++ })
    expect(seen.ok).toBeGreaterThan(CASES / 10)
    expect(seen.bad).toBeGreaterThan(CASES / 10)
  })

  it(`decodeSigned: ${CASES} structured (protobufjs, mutated) and random signed adverts`, () => {
    const seen = { ok: 0, bad: 0 }
    fuzz('signed advert', CASES, (rng) => {
      const kind = rng.int(5)
      if (kind === 0) return randomSigned(rng)
      if (kind === 1) return rng.bytes(rng.int(rng.chance(0.9) ? 200 : MAX_ADVERT_BYTES + 100))
      return mutate(rng, randomSigned(rng), signed)
    }, (bytes) => { seen[signedChecked(bytes)]++ })
    expect(seen.ok).toBeGreaterThan(CASES / 20)
    expect(seen.bad).toBeGreaterThan(CASES / 10)
  })

  it(`a sync answer: ${CASES / 4} streams of length-prefixed adverts in random chunks`, () => {
    fuzz('sync answer', CASES / 4, (rng) => {
      const parts: Array<ArrayLike<number>> = []
      for (let n = 1 + rng.int(6); n > 0; n--) {
        const advert = rng.chance(0.6) ? randomSigned(rng) : mutate(rng, randomSigned(rng), signed)
        const prefix = rng.chance(0.9) ? varint(advert.length) : rng.pick([varint(0), varint(MAX_ADVERT_BYTES + 1), varint(2 ** 32 - 1), [0x80, 0x80, 0x80, 0x80, 0x80, 0x01], varint(advert.length + 3)])
        parts.push(prefix, advert)
      }
      return concat(parts)
    }, (stream, i) => {
      const reader = new LengthPrefixedReader(MAX_ADVERT_BYTES)
      const rng = new Rng(i)
      for (let at = 0; at < stream.length;) {
        const size = 1 + rng.int(rng.chance(0.5) ? 16 : 2000)
        let entries: Uint8Array[]
        try {
          entries = reader.push(stream.slice(at, at + size))
        } catch (err) {
          expectBadRequest(err)
          return
        }
        for (const entry of entries) signedChecked(entry)
        expect(reader.pending).toBeLessThan(MAX_ADVERT_BYTES + 5)
        at += size
      }
    })
  })
})

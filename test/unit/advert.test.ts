/** Capability adverts: what a peer publishes on the discovery topic, and how receivers read it. */
import { describe, expect, it } from 'vitest'
import { canRun, hasModel, NOT_A_WORKER, SpeedTracker } from '../../src/core/discovery/advert.js'
import {
  decodeAdvertBody, decodeSigned, encodeAdvertBody, encodeSigned, MAX_ADVERT_ADDRS, MAX_ADVERT_BYTES, MAX_ADVERT_MODELS, signingBytes
} from '../../src/core/discovery/codec.js'
import { AdvertBody, ModelInfo } from '../../src/core/discovery/pb/advert.js'
import { TaskError } from '../../src/core/errors.js'
import { seededRandom } from '../../src/core/random.js'
import { failure } from '../helpers/errors.js'
import type { Advert, PeerKind } from '../../src/core/discovery/advert.js'
import type { AdvertEnvelope } from '../../src/core/discovery/codec.js'

const sha = (n: number): string => n.toString(16).padStart(64, '0')
/** The 32 bytes `sha(n)` stands for. */
const shaBytes = (n: number): Uint8Array<ArrayBuffer> => Uint8Array.from(Buffer.from(sha(n), 'hex'))
const bytes = (...b: number[]): Uint8Array<ArrayBuffer> => Uint8Array.from(b)

const worker: Advert = {
  kind: 'node',
  addrs: [],
  worker: true,
  paused: false,
  backend: 'wasm simd 2 threads | wasm simd 1 thread',
  threads: 2,
  slots: 2,
  freeSlots: 1,
  models: [sha(1), sha(2), 'ab'.repeat(32)],
  cached: [sha(1)],
  // Speeds travel as float32: these are exact.
  speeds: { [sha(1)]: 0.25, [sha(2)]: 1234.5 },
  maxModelBytes: 256 * 1024 * 1024,
  backends: { [sha(1)]: 'wasm simd 1 thread', [sha(2)]: 'webgpu' }
}

/** What decodeAdvertBody gives back for an advert: everything but `addrs`, which come separately as bytes. */
function withoutAddrs (a: Advert): Omit<Advert, 'addrs'> {
  const { addrs: _addrs, ...rest } = a
  return rest
}

function body (advert: Advert, opts: { seq?: number, leaving?: boolean, addrs?: Uint8Array[] } = {}): Uint8Array {
  return encodeAdvertBody({ seq: opts.seq ?? 1, leaving: opts.leaving ?? false, advert }, opts.addrs ?? [])
}

function roundTrip (advert: Advert, opts: { seq?: number, leaving?: boolean, addrs?: Uint8Array[] } = {}): ReturnType<typeof decodeAdvertBody> {
  return decodeAdvertBody(body(advert, opts))
}

/** A full AdvertBody as the generated code takes it, for bodies our encoder would never write. */
function rawBody (overrides: Partial<AdvertBody> = {}): Uint8Array {
  return AdvertBody.encode({ seq: 1n, kind: 2, worker: true, models: [{ sha256: shaBytes(1), loaded: false, ms: 0, backend: '' }], ...overrides })
}

function model (overrides: Partial<ModelInfo> = {}): ModelInfo {
  return { sha256: shaBytes(1), loaded: false, ms: 0, backend: '', ...overrides }
}

/** Minimal protobuf writer, to write bodies field by field the way any other proto3 writer may. */
const pb = {
  varint (n: number | bigint): number[] {
    let v = BigInt(n)
    const out: number[] = []
    while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n }
    out.push(Number(v))
    return out
  },
  int (field: number, value: number | bigint): number[] { return [...pb.varint(field << 3), ...pb.varint(value)] },
  bytes (field: number, payload: number[] | Uint8Array): number[] { return [...pb.varint((field << 3) | 2), ...pb.varint(payload.length), ...payload] },
  str (field: number, s: string): number[] { return pb.bytes(field, new TextEncoder().encode(s)) },
  float (field: number, f: number): number[] {
    const b = new Uint8Array(4)
    new DataView(b.buffer).setFloat32(0, f, true)
    return [...pb.varint((field << 3) | 5), ...b]
  }
}

function expectBadAdvert (fn: () => unknown, message: RegExp): void {
  const f = failure(fn)
  expect(f).toMatch(/^bad-request: malformed advert: /)
  expect(f).toMatch(message)
}

describe('advert body round trip', () => {
  it('carries every field: hex sha256 as 32 bytes, loaded as cached, speeds, backends, seq, addrs as bytes', () => {
    const addrs = [bytes(4, 127, 0, 0, 1, 6, 0x1f, 0x90), bytes(), bytes(0xff, 0, 0xfe)]
    const b = body(worker, { seq: 41, addrs })
    const back = decodeAdvertBody(b)
    expect(back.envelope).toEqual({ seq: 41, leaving: false, advert: withoutAddrs(worker) })
    expect(back.addrs).toEqual(addrs)

    // On the wire each model's sha256 is its 32 raw bytes, loaded mirrors `cached`.
    const wire = AdvertBody.decode(b)
    expect(wire.models.map(m => m.sha256)).toEqual([shaBytes(1), shaBytes(2), new Uint8Array(32).fill(0xab)])
    expect(wire.models.map(m => m.loaded)).toEqual([true, false, false])
    expect(wire.maxModelBytes).toBe(256n * 1024n * 1024n)
  })

  it('carries a non-worker advert unchanged', () => {
    expect(roundTrip(NOT_A_WORKER)).toEqual({ envelope: { seq: 1, leaving: false, advert: withoutAddrs(NOT_A_WORKER) }, addrs: [] })
  })

  it.each<PeerKind>(['tab', 'node', 'relay', 'unknown'])('carries kind %s', (kind) => {
    expect(roundTrip({ ...worker, kind }).envelope.advert.kind).toBe(kind)
  })

  it('carries leaving, a paused worker, seq 0 and the largest safe seq', () => {
    const paused = { ...worker, paused: true, freeSlots: 0 }
    expect(roundTrip(paused, { seq: 7, leaving: true }).envelope).toEqual({ seq: 7, leaving: true, advert: withoutAddrs(paused) })
    expect(roundTrip(worker, { seq: 0 }).envelope.seq).toBe(0)
    expect(roundTrip(worker, { seq: Number.MAX_SAFE_INTEGER }).envelope.seq).toBe(Number.MAX_SAFE_INTEGER)
  })

  it('carries the served-task totals up to 2^53 − 1, and reads zero as absent (what a peer that does not count sends)', () => {
    const counting = { ...worker, tasksDone: 123_456, tasksFailed: 7 }
    expect(roundTrip(counting).envelope.advert).toEqual(withoutAddrs(counting))
    const huge = { ...worker, tasksDone: Number.MAX_SAFE_INTEGER, tasksFailed: 1 }
    expect(roundTrip(huge).envelope.advert.tasksDone).toBe(Number.MAX_SAFE_INTEGER)
    expect(roundTrip({ ...worker, tasksDone: 0, tasksFailed: 0 }).envelope.advert).not.toHaveProperty('tasksDone')
    // Anything but a whole number ≥ 0 goes out as 0 rather than as a value receivers would refuse.
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
      expect(roundTrip({ ...worker, tasksDone: bad }).envelope.advert).not.toHaveProperty('tasksDone')
    }
  })

  it('carries a model size cap past 4 GiB and large thread and slot counts', () => {
    const big = { ...worker, maxModelBytes: 5 * 2 ** 30 + 3, threads: 256, slots: 300, freeSlots: 299 }
    expect(roundTrip(big).envelope.advert).toEqual(withoutAddrs(big))
  })

  it('keeps the first 32 of 40 models, with their cached, speeds and backends, so a receiver never rejects', () => {
    const models = Array.from({ length: 40 }, (_, i) => sha(i))
    const many: Advert = {
      ...worker,
      models,
      cached: [sha(0), sha(31), sha(32), sha(39)],
      speeds: { [sha(0)]: 2, [sha(31)]: 3, [sha(35)]: 4 },
      backends: { [sha(31)]: 'webgpu', [sha(39)]: 'wasm' }
    }
    const back = roundTrip(many).envelope.advert
    expect(MAX_ADVERT_MODELS).toBe(32)
    expect(back.models).toEqual(models.slice(0, 32))
    expect(back.cached).toEqual([sha(0), sha(31)])
    expect(back.speeds).toEqual({ [sha(0)]: 2, [sha(31)]: 3 })
    expect(back.backends).toEqual({ [sha(31)]: 'webgpu' })
  })

  it('keeps the first 8 addresses and drops any a receiver would refuse as too long', () => {
    const addrs = Array.from({ length: 12 }, (_, i) => new Uint8Array(i === 1 ? 301 : 10).fill(i))
    const back = roundTrip(worker, { addrs })
    expect(MAX_ADVERT_ADDRS).toBe(8)
    expect(back.addrs).toEqual(addrs.filter((_, i) => i !== 1).slice(0, 8))
    // 300 bytes is still accepted.
    expect(roundTrip(worker, { addrs: [new Uint8Array(300).fill(3)] }).addrs).toEqual([new Uint8Array(300).fill(3)])
  })

  it('cuts over-long backend names to what a receiver accepts, keeping their start', () => {
    const long = 'webgpu ' + 'x'.repeat(200)
    const back = roundTrip({ ...worker, backend: long, backends: { [sha(1)]: long } }).envelope.advert
    expect(back.backend).toBe(long.slice(0, 96))
    expect(back.backends[sha(1)]).toBe(long.slice(0, 96))
  })

  it('an advert at every cap still fits in a signed advert receivers accept', () => {
    // Documented promise of encodeAdvertBody: lists are cut to what receivers accept.
    const models = Array.from({ length: 40 }, (_, i) => sha(i))
    const full: Advert = {
      ...worker,
      backend: 'b'.repeat(200),
      models,
      cached: models,
      speeds: Object.fromEntries(models.map(m => [m, 1e6 + 0.5])),
      backends: Object.fromEntries(models.map(m => [m, 'w'.repeat(200)]))
    }
    const addrs = Array.from({ length: 8 }, () => new Uint8Array(300).fill(7))
    // An Ed25519 libp2p public key is 36 bytes, its signature 64.
    const signed = encodeSigned({ publicKey: new Uint8Array(36).fill(1), body: body(full, { seq: Number.MAX_SAFE_INTEGER, addrs }), signature: new Uint8Array(64).fill(2) })
    expect(signed.byteLength).toBeLessThanOrEqual(MAX_ADVERT_BYTES)
    expect(() => decodeSigned(signed)).not.toThrow()
  })
})

describe('advert body decoding rejects what breaks a bound', () => {
  it('accepts exactly the caps: 8 addresses, 32 models', () => {
    const ok = decodeAdvertBody(rawBody({
      addrs: Array.from({ length: 8 }, (_, i) => bytes(i)),
      models: Array.from({ length: 32 }, (_, i) => model({ sha256: shaBytes(i) }))
    }))
    expect(ok.addrs).toHaveLength(8)
    expect(ok.envelope.advert.models).toHaveLength(32)
  })

  it('too many addresses or models, written by hand with the generated encoder', () => {
    expectBadAdvert(() => decodeAdvertBody(rawBody({ addrs: Array.from({ length: 9 }, (_, i) => bytes(i)) })), /addrs.*too many/)
    expectBadAdvert(() => decodeAdvertBody(rawBody({ models: Array.from({ length: 33 }, (_, i) => model({ sha256: shaBytes(i) })) })), /models.*too many/)
  })

  it.each([0, 31, 33])('a model sha256 of %i bytes', (n) => {
    expectBadAdvert(() => decodeAdvertBody(rawBody({ models: [model({ sha256: new Uint8Array(n).fill(1) })] })), /sha256 must be 32 bytes/)
  })

  it.each([Number.NaN, -1, -0.001, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])('a model speed of %f ms', (ms) => {
    expectBadAdvert(() => decodeAdvertBody(rawBody({ models: [model({ ms })] })), /model speed must be a finite number/)
  })

  it('over-long names and addresses', () => {
    expectBadAdvert(() => decodeAdvertBody(rawBody({ backend: 'x'.repeat(97) })), /backend name too long/)
    expectBadAdvert(() => decodeAdvertBody(rawBody({ models: [model({ backend: 'x'.repeat(97) })] })), /model backend name too long/)
    expectBadAdvert(() => decodeAdvertBody(rawBody({ addrs: [new Uint8Array(301)] })), /address too long/)
    // The limits themselves are fine.
    expect(decodeAdvertBody(rawBody({ backend: 'x'.repeat(96), models: [model({ backend: 'y'.repeat(96) })] })).envelope.advert.backend).toHaveLength(96)
  })

  it('a served-task total past 2^53', () => {
    expectBadAdvert(() => decodeAdvertBody(rawBody({ tasksDone: 2n ** 53n })), /task counter out of range/)
    expectBadAdvert(() => decodeAdvertBody(rawBody({ tasksFailed: 2n ** 64n - 1n })), /task counter out of range/)
  })

  it('a sequence number past 2^53', () => {
    expectBadAdvert(() => decodeAdvertBody(rawBody({ seq: 2n ** 53n })), /sequence number out of range/)
    expectBadAdvert(() => decodeAdvertBody(rawBody({ seq: 2n ** 64n - 1n })), /sequence number out of range/)
  })

  it('garbage bytes', () => {
    expectBadAdvert(() => decodeAdvertBody(bytes(0x3a, 0xff, 0xff)), /./) // backend with a truncated length
    expectBadAdvert(() => decodeAdvertBody(bytes(0x62, 0x05, 0x0a, 0x20)), /./) // model cut short
    expectBadAdvert(() => decodeAdvertBody(bytes(0x08, 0x80)), /./) // seq varint cut off
    expectBadAdvert(() => decodeAdvertBody(bytes(0x1a, 0x05, 1)), /./) // address shorter than its length
    expectBadAdvert(() => decodeAdvertBody(bytes(0x0f)), /./) // wire type 7 does not exist
  })

  it('an empty body is a valid, empty advert', () => {
    expect(decodeAdvertBody(new Uint8Array(0))).toEqual({ envelope: { seq: 0, leaving: false, advert: withoutAddrs(NOT_A_WORKER) }, addrs: [] })
  })
})

describe('signed adverts', () => {
  const publicKey = bytes(8, 1, 18, 32, ...new Array(32).fill(9))
  const signature = new Uint8Array(64).fill(5)

  it('round-trip key, body and signature', () => {
    const b = body(worker, { seq: 3, addrs: [bytes(1, 2, 3)] })
    const back = decodeSigned(encodeSigned({ publicKey, body: b, signature }))
    expect(back).toEqual({ publicKey, body: b, signature })
    expect(decodeAdvertBody(back.body).envelope.advert).toEqual(withoutAddrs(worker))
  })

  it('sign a prefixed body, so an advert signature can mean nothing else', () => {
    const b = body(worker)
    const s = signingBytes(b)
    const prefix = new TextEncoder().encode('p2p-ai-agents/advert:')
    expect(s.byteLength).toBe(prefix.byteLength + b.byteLength)
    expect(s.subarray(0, prefix.byteLength)).toEqual(prefix)
    expect(s.subarray(prefix.byteLength)).toEqual(b)
    expect(signingBytes(body(worker, { seq: 2 }))).not.toEqual(s)
  })

  it('accept exactly MAX_ADVERT_BYTES and refuse one byte more', () => {
    const signedOf = (n: number): Uint8Array => encodeSigned({ publicKey, body: new Uint8Array(n).fill(1), signature })
    let n = MAX_ADVERT_BYTES - 200
    while (signedOf(n).byteLength < MAX_ADVERT_BYTES) n++
    expect(signedOf(n).byteLength).toBe(MAX_ADVERT_BYTES)
    expect(decodeSigned(signedOf(n)).body.byteLength).toBe(n)
    expect(signedOf(n + 1).byteLength).toBe(MAX_ADVERT_BYTES + 1)
    expectBadAdvert(() => decodeSigned(signedOf(n + 1)), new RegExp(`${MAX_ADVERT_BYTES + 1} bytes, over the ${MAX_ADVERT_BYTES}-byte limit`))
  })

  it('refuse an oversized advert before decoding it: garbage that size fails on size, not on content', () => {
    expectBadAdvert(() => decodeSigned(new Uint8Array(5000).fill(0xff)), /5000 bytes, over the 4096-byte limit/)
    // The same garbage under the limit fails on its content.
    expect(failure(() => decodeSigned(new Uint8Array(100).fill(0xff)))).not.toMatch(/byte limit/)
  })

  it('reject garbage with a clear error', () => {
    expectBadAdvert(() => decodeSigned(bytes(0x12, 0xff, 0xff)), /./)
    expectBadAdvert(() => decodeSigned(bytes(0x12, 0x10, 1, 2)), /./) // body shorter than its length
  })
})

describe('proto3 interop', () => {
  it('decodes a body written field by field in another order, with interleaved repeated fields, explicit defaults and unknown fields', () => {
    const m1 = [...pb.float(3, 12.5), ...pb.str(4, 'webgpu'), ...pb.int(2, 1), ...pb.bytes(1, shaBytes(1))] // fields out of order
    const m2 = [...pb.bytes(1, shaBytes(2)), ...pb.int(2, 0), ...pb.float(3, 0), ...pb.str(4, ''), ...pb.int(9, 77)] // explicit defaults, unknown field
    const raw = Uint8Array.from([
      ...pb.bytes(12, m1),
      ...pb.bytes(3, [1, 2, 3]),
      ...pb.int(11, 1_000_000),
      ...pb.str(7, 'wasm'),
      ...pb.int(99, 5), // unknown varint
      ...pb.bytes(3, [4, 5]),
      ...pb.bytes(12, m2),
      ...pb.int(2, 3), // relay
      ...pb.bytes(50, [9, 9, 9]), // unknown length-delimited
      ...pb.float(51, 1), // unknown fixed32
      ...pb.int(6, 0), // paused written as false
      ...pb.int(5, 1),
      ...pb.int(8, 4), ...pb.int(9, 3), ...pb.int(10, 2),
      ...pb.int(1, 9),
      ...pb.int(4, 0)
    ])
    expect(decodeAdvertBody(raw)).toEqual({
      envelope: {
        seq: 9,
        leaving: false,
        advert: {
          kind: 'relay',
          worker: true,
          paused: false,
          backend: 'wasm',
          threads: 4,
          slots: 3,
          freeSlots: 2,
          models: [sha(1), sha(2)],
          cached: [sha(1)],
          speeds: { [sha(1)]: 12.5 },
          maxModelBytes: 1_000_000,
          backends: { [sha(1)]: 'webgpu' }
        }
      },
      addrs: [bytes(1, 2, 3), bytes(4, 5)]
    })
  })

  it('writes repeated bytes and messages unpacked, one tag per element, as every proto3 reader expects', () => {
    const b = body({ ...worker, models: [sha(1), sha(2)] }, { addrs: [bytes(7), bytes(8, 8)] })
    // The generated encoder's output decodes back through the generated decoder.
    const wire = AdvertBody.decode(b)
    expect(wire.addrs).toEqual([bytes(7), bytes(8, 8)])
    expect(wire.models.map(m => m.sha256)).toEqual([shaBytes(1), shaBytes(2)])
    // Each address is its own field-3 record: tag 0x1a, length, bytes.
    const at = (needle: number[]): number => Buffer.from(b).indexOf(Buffer.from(needle))
    expect(at([0x1a, 1, 7])).toBeGreaterThanOrEqual(0)
    expect(at([0x1a, 2, 8, 8])).toBeGreaterThan(at([0x1a, 1, 7]))
  })

  it('reads a peer kind from a newer version as unknown rather than dropping the whole advert', () => {
    // proto3 enums are open: a value this version does not know must not make the advert unreadable
    // (decodeAdvertBody maps unknown kinds to 'unknown').
    const raw = Uint8Array.from([...pb.int(1, 5), ...pb.int(2, 7), ...pb.int(5, 1)])
    const back = decodeAdvertBody(raw)
    expect(back.envelope.advert.kind).toBe('unknown')
    expect(back.envelope.advert.worker).toBe(true)
  })
})

describe('decoders under fuzz', () => {
  it('random and mutated bytes: decodeSigned and decodeAdvertBody return a bounded advert or throw bad-request (seeded)', () => {
    const rand = seededRandom(20250117)
    const int = (n: number): number => Math.floor(rand() * n)
    const bodies = [
      body(worker, { seq: 12, addrs: [bytes(4, 10, 0, 0, 1), new Uint8Array(40).fill(3)] }),
      body({ ...worker, models: Array.from({ length: 32 }, (_, i) => sha(i)) }),
      body(NOT_A_WORKER, { seq: 1, leaving: true }),
      body({ ...worker, kind: 'relay', backend: '' }, { seq: 2 ** 40 })
    ]
    const seeds = [...bodies, ...bodies.map(b => encodeSigned({ publicKey: new Uint8Array(36).fill(4), body: b, signature: new Uint8Array(64).fill(6) }))]

    const mutate = (): Uint8Array => {
      const kind = int(6)
      if (kind === 0) return Uint8Array.from({ length: int(120) }, () => int(256)) // pure garbage
      const base = Array.from(seeds[int(seeds.length)])
      if (kind === 1) { // flip a few bytes
        for (let n = 1 + int(4); n > 0; n--) base[int(base.length)] = int(256)
      } else if (kind === 2) { // truncate
        base.length = int(base.length)
      } else if (kind === 3) { // insert random bytes
        base.splice(int(base.length + 1), 0, ...Array.from({ length: 1 + int(6) }, () => int(256)))
      } else if (kind === 4) { // splice two seeds together
        const other = Array.from(seeds[int(seeds.length)])
        base.splice(int(base.length + 1), int(4), ...other.slice(int(other.length)))
      } else { // repeat a seed past the size limit
        const times = 1 + int(12)
        return Uint8Array.from(Array.from({ length: times }, () => base).flat())
      }
      return Uint8Array.from(base)
    }

    const checkAdvert = (d: ReturnType<typeof decodeAdvertBody>): void => {
      const a = d.envelope.advert
      expect(Number.isSafeInteger(d.envelope.seq)).toBe(true)
      expect(d.addrs.length).toBeLessThanOrEqual(MAX_ADVERT_ADDRS)
      for (const addr of d.addrs) expect(addr.byteLength).toBeLessThanOrEqual(300)
      expect(a.models.length).toBeLessThanOrEqual(MAX_ADVERT_MODELS)
      for (const m of a.models) expect(m).toMatch(/^[0-9a-f]{64}$/)
      for (const ms of Object.values(a.speeds)) expect(Number.isFinite(ms) && ms > 0).toBe(true)
      expect(a.backend.length).toBeLessThanOrEqual(96)
      for (const b of Object.values(a.backends)) expect(b.length).toBeLessThanOrEqual(96)
      expect(['tab', 'node', 'relay', 'unknown']).toContain(a.kind)
    }

    const attempt = (what: string, input: Uint8Array, fn: () => void): boolean => {
      try {
        fn()
        return true
      } catch (err) {
        if (!(err instanceof TaskError) || err.code !== 'bad-request' || !err.message.startsWith('malformed advert')) {
          throw new Error(`${what} of [${Array.from(input).join(',')}] threw ${String(err)}`)
        }
        return false
      }
    }

    const tally = { bodyOk: 0, bodyBad: 0, signedOk: 0, signedBad: 0, oversized: 0 }
    for (let i = 0; i < 4000; i++) {
      const input = mutate()
      if (attempt('decodeAdvertBody', input, () => { checkAdvert(decodeAdvertBody(input)) })) tally.bodyOk++
      else tally.bodyBad++
      let signed: ReturnType<typeof decodeSigned> | undefined
      if (attempt('decodeSigned', input, () => { signed = decodeSigned(input) })) {
        tally.signedOk++
        expect(input.byteLength).toBeLessThanOrEqual(MAX_ADVERT_BYTES)
        const b = signed!.body
        attempt('decodeAdvertBody of a signed body', b, () => { checkAdvert(decodeAdvertBody(b)) })
      } else {
        tally.signedBad++
        if (input.byteLength > MAX_ADVERT_BYTES) tally.oversized++
      }
    }
    // The fuzz must exercise both outcomes of both decoders, and the size refusal.
    expect(tally.bodyOk).toBeGreaterThan(200)
    expect(tally.bodyBad).toBeGreaterThan(1000)
    expect(tally.signedOk).toBeGreaterThan(200)
    expect(tally.signedBad).toBeGreaterThan(1000)
    expect(tally.oversized).toBeGreaterThan(50)
  })
})

describe('who can run a model', () => {
  it('has it, or fetches models that large; never when paused or not a worker', () => {
    expect(canRun(worker, sha(2), 1e9)).toBe(true) // has it
    expect(canRun(worker, sha(9), 1000)).toBe(true) // would fetch it
    expect(canRun(worker, sha(9), worker.maxModelBytes)).toBe(true) // exactly the cap
    expect(canRun(worker, sha(9), worker.maxModelBytes + 1)).toBe(false)
    expect(canRun(worker, sha(9), 1e9)).toBe(false) // too big to fetch
    expect(canRun({ ...worker, paused: true }, sha(1), 1)).toBe(false)
    expect(canRun({ ...worker, maxModelBytes: 0 }, sha(9), 1)).toBe(false)
    expect(canRun({ ...worker, worker: false }, sha(1), 1)).toBe(false)
    expect(canRun(NOT_A_WORKER, sha(1), 1)).toBe(false)
    expect(hasModel(worker, sha(2))).toBe(true)
    expect(hasModel(worker, sha(9))).toBe(false)
    expect(hasModel({ ...worker, paused: true }, sha(1))).toBe(true) // has the bytes, paused or not
  })

  it('reads the same from a decoded advert as from the original', () => {
    const back = { ...roundTrip(worker).envelope.advert, addrs: [] }
    for (const [s, size] of [[sha(1), 1e9], [sha(2), 1], [sha(9), 1000], [sha(9), 1e9]] as const) {
      expect(canRun(back, s, size)).toBe(canRun(worker, s, size))
      expect(hasModel(back, s)).toBe(hasModel(worker, s))
    }
  })
})

describe('speed tracker', () => {
  it('starts at the first sample and moves a fifth of the way toward each new one', () => {
    const t = new SpeedTracker()
    expect(t.toRecord()).toEqual({})
    t.add(sha(1), 100)
    expect(t.toRecord()).toEqual({ [sha(1)]: 100 })
    t.add(sha(1), 200)
    expect(t.toRecord()[sha(1)]).toBeCloseTo(120, 9)
    t.add(sha(2), 7)
    expect(t.toRecord()).toEqual({ [sha(1)]: expect.closeTo(120, 9), [sha(2)]: 7 })
    const heavy = new SpeedTracker(1)
    heavy.add(sha(1), 5)
    heavy.add(sha(1), 9)
    expect(heavy.toRecord()).toEqual({ [sha(1)]: 9 })
  })
})

// Type check: an envelope built from a decoded body can be re-encoded with its addrs.
const _typecheck = (d: ReturnType<typeof decodeAdvertBody>): AdvertEnvelope => ({ ...d.envelope, advert: { ...d.envelope.advert, addrs: [] } })
void _typecheck

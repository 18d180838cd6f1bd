/**
 * Seeded protocol fuzzing: random field values for protobufjs to encode (an independent encoder,
 * packing repeated scalars as proto3 writers do), wire-level mutations of those messages, and plain
 * random bytes. Every case derives from one seed, printed with the failing input, so
 * `FUZZ_SEED=<seed> npx vitest run <file>` replays a failure exactly.
 */
import protobuf from 'protobufjs'
import { seededRandom } from '../../src/core/random.js'
import { readVarint } from '../../src/core/protobuf-wire.js'

/** The run's seed: FUZZ_SEED when set (to replay or explore), otherwise fixed so the suite is deterministic. */
export const FUZZ_SEED = process.env.FUZZ_SEED != null ? Number(process.env.FUZZ_SEED) >>> 0 : 0x9e3779b9

export class Rng {
  private readonly next: () => number

  constructor (seed: number) {
    this.next = seededRandom(seed)
  }

  float (): number {
    return this.next()
  }

  /** An integer in [0, n). */
  int (n: number): number {
    return Math.floor(this.next() * n)
  }

  chance (p: number): boolean {
    return this.next() < p
  }

  pick<T> (items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.int(256)
    return out
  }

  /** Mostly small, sometimes at the edges of 32 and 64 bits: where decoders go wrong. */
  uint (): number {
    switch (this.int(6)) {
      case 0: return 0
      case 1: return this.int(8)
      case 2: return this.int(300)
      case 3: return this.int(2 ** 16)
      case 4: return this.pick([2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 53 - 1, 2 ** 53 + 2])
      default: return this.int(2 ** 32)
    }
  }

  /** Mostly short ASCII, sometimes long or multi-byte. */
  text (max = 12): string {
    const kind = this.int(10)
    if (kind === 0) return ''
    if (kind === 1) return 'é漢😀'.repeat(1 + this.int(4))
    if (kind === 2) return 'x'.repeat(100 + this.int(200))
    return Array.from({ length: 1 + this.int(max) }, () => String.fromCharCode(97 + this.int(26))).join('')
  }
}

/** Encodes `value` as `type` from `root` with protobufjs (a plain Uint8Array, as a transport delivers). */
export function pbEncode (root: protobuf.Root, type: string, value: Record<string, unknown>): Uint8Array {
  const t = root.lookupType(type)
  return Uint8Array.from(t.encode(t.fromObject(value)).finish())
}

export function varint (n: number | bigint): number[] {
  let v = BigInt(n)
  const out: number[] = []
  while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n }
  out.push(Number(v))
  return out
}

/** A field found in a message: where its tag starts, its wire type, where its value starts and ends. */
interface Span { tagAt: number, wire: number, valueAt: number, lengthAt: number, end: number }

/** Every field of a well-formed message, nested messages' fields included (best effort). */
export function fieldSpans (b: Uint8Array, from = 0, to = b.length, depth = 0): Span[] {
  const spans: Span[] = []
  let at = from
  while (at < to) {
    const tag = readVarint(b, at)
    if (tag == null || tag.value >>> 3 === 0) return spans
    const wire = tag.value & 7
    let end: number
    let valueAt = tag.next
    const lengthAt = tag.next
    if (wire === 0) {
      const v = readVarint(b, tag.next)
      if (v == null) return spans
      end = v.next
    } else if (wire === 1) {
      end = tag.next + 8
    } else if (wire === 5) {
      end = tag.next + 4
    } else if (wire === 2) {
      const len = readVarint(b, tag.next)
      if (len == null) return spans
      valueAt = len.next
      end = len.next + len.value
    } else {
      return spans
    }
    if (end > to) return spans
    spans.push({ tagAt: at, wire, valueAt, lengthAt, end })
    if (wire === 2 && depth < 6) spans.push(...fieldSpans(b, valueAt, end, depth + 1))
    at = end
  }
  return spans
}

export function concat (parts: ReadonlyArray<ArrayLike<number>>): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

function splice (b: Uint8Array, at: number, remove: number, insert: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(b.length - remove + insert.length)
  out.set(b.subarray(0, at))
  out.set(insert, at)
  out.set(b.subarray(at + remove), at + insert.length)
  return out
}

const HUGE_VARINTS = [
  [0xff, 0xff, 0xff, 0xff, 0x0f], // 2^32 - 1
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 2^64 - 1
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // over-long: 12 bytes
  [0xff, 0xff, 0xff, 0xff, 0x07], // 2^31 - 1
  [0x80, 0x80, 0x80, 0x80, 0x08] // 2^31
]

/**
 * One wire-level mutation of `msg`: truncation, bit flips, random overwrites, inserted or deleted
 * bytes, a length prefix changed, a huge varint, a field repeated many times (past any limit), a
 * wrong wire type, or two messages spliced.
 */
export function mutate (rng: Rng, msg: Uint8Array, others: readonly Uint8Array[]): Uint8Array {
  const spans = fieldSpans(msg)
  const span = spans.length > 0 ? rng.pick(spans) : undefined
  switch (rng.int(11)) {
    case 0: return msg.slice(0, rng.int(msg.length + 1))
    case 1: {
      const out = msg.slice()
      for (let n = 1 + rng.int(8); n > 0 && out.length > 0; n--) out[rng.int(out.length)] ^= 1 << rng.int(8)
      return out
    }
    case 2: {
      const out = msg.slice()
      for (let n = 1 + rng.int(4); n > 0 && out.length > 0; n--) out[rng.int(out.length)] = rng.int(256)
      return out
    }
    case 3: return splice(msg, rng.int(msg.length + 1), 0, rng.bytes(1 + rng.int(16)))
    case 4: {
      const at = rng.int(msg.length + 1)
      return splice(msg, at, rng.int(Math.min(16, msg.length - at) + 1), [])
    }
    case 5: { // a length prefix made shorter, longer or huge
      if (span == null || span.wire !== 2) return splice(msg, rng.int(msg.length + 1), 0, rng.pick(HUGE_VARINTS))
      const old = readVarint(msg, span.lengthAt)!
      const len = rng.pick([0, old.value - 1, old.value + 1, old.value + rng.int(1000), 2 ** 31, 2 ** 32 - 1, rng.uint()])
      return splice(msg, span.lengthAt, old.next - span.lengthAt, varint(Math.max(0, len)))
    }
    case 6: { // a huge or over-long varint as a value, a tag or a length
      const at = span != null ? rng.pick([span.tagAt, span.valueAt, span.lengthAt]) : rng.int(msg.length + 1)
      const old = readVarint(msg, at)
      return splice(msg, at, old != null && rng.chance(0.7) ? old.next - at : 0, rng.pick(HUGE_VARINTS))
    }
    case 7: { // one field repeated until it breaks any count limit
      if (span == null) return msg
      const field = msg.subarray(span.tagAt, span.end)
      const copies = rng.pick([2, 9, 65, 200, 1000])
      const run = new Uint8Array(field.length * copies)
      for (let i = 0; i < copies; i++) run.set(field, i * field.length)
      return splice(msg, span.end, 0, run)
    }
    case 8: { // the right field number with the wrong wire type (including groups and the invalid 6, 7)
      if (span == null) return msg
      const tag = readVarint(msg, span.tagAt)!
      const wire = (span.wire + 1 + rng.int(7)) & 7
      return splice(msg, span.tagAt, tag.next - span.tagAt, varint((tag.value & ~7) + wire))
    }
    case 9: { // a field cut out, or moved to the end
      if (span == null) return msg
      const field = msg.slice(span.tagAt, span.end)
      const without = splice(msg, span.tagAt, span.end - span.tagAt, [])
      return rng.chance(0.5) ? without : splice(without, without.length, 0, field)
    }
    default: { // two messages spliced
      const other = others.length > 0 ? rng.pick(others) : msg
      const at = rng.int(msg.length + 1)
      return splice(msg.subarray(0, at), at, 0, other.subarray(rng.int(other.length + 1)))
    }
  }
}

/**
 * Runs `cases` inputs through `check`; on the first failure throws an error naming the seed, the
 * case and the input, so the run can be replayed.
 */
export function fuzz (name: string, cases: number, make: (rng: Rng, i: number) => Uint8Array, check: (input: Uint8Array, i: number) => void): void {
  const rng = new Rng(FUZZ_SEED ^ hash(name))
  for (let i = 0; i < cases; i++) {
    const input = make(rng, i)
    try {
      check(input, i)
    } catch (err) {
      const hex = Buffer.from(input.subarray(0, 512)).toString('hex')
      throw new Error(`fuzz "${name}" failed at case ${i} (FUZZ_SEED=${FUZZ_SEED}): ${(err as Error).stack ?? String(err)}\ninput (${input.length} bytes): ${hex}${input.length > 512 ? '…' : ''}`)
    }
  }
}

function hash (s: string): number {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return h >>> 0
}

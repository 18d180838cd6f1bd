/**
 * Unfinished frames (core/framing.ts UnfinishedFrames, fed by FrameDecoder): each stream's
 * unfinished frame must arrive within floor + size / minimum rate of its first byte, and what one
 * peer (and all peers) hold in unfinished frames is capped. Fake clock: time moves only when the
 * test says so.
 */
import { describe, expect, it } from 'vitest'
import { FrameDecoder, encodeFrame } from '../../src/core/task/codec.js'
import { LengthPrefixedReader, UnfinishedFrames } from '../../src/core/framing.js'
import { TaskError } from '../../src/core/errors.js'
import { DEFAULT_LIMITS, DEFAULT_UNFINISHED_FRAME_LIMITS } from '../../src/core/limits.js'
import { FakeClock } from '../helpers/fake-clock.js'
import type { UnfinishedFrameLimits } from '../../src/core/limits.js'

const KiB = 1024
const MiB = 1024 * KiB
/** 1 s floor, then 1 s per 100 KiB; 1 MiB per peer, 3 MiB in all. */
const LIMITS: UnfinishedFrameLimits = { floorMs: 1000, minBytesPerSecond: 100 * KiB, maxBytesPerPeer: MiB, maxBytesTotal: 3 * MiB }

/** A ping frame padded out to exactly `total` bytes on the wire (prefix included). */
function frameOf (total: number): Uint8Array {
  const ping = encodeFrame({ type: 'ping', nonce: 1 }).subarray(1)
  // unknown field 15 (bytes) pads the body; decoders skip it
  for (let pad = total; pad >= 0; pad--) {
    const head = [...ping, 0x7a, ...varint(pad)]
    const bodyLength = head.length + pad
    if (varint(bodyLength).length + bodyLength !== total) continue
    const out = new Uint8Array(total)
    out.set([...varint(bodyLength), ...head])
    return out
  }
  throw new Error(`no frame of ${total} bytes`)
}

function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  out.push(n)
  return out
}

function setup (limits: UnfinishedFrameLimits = LIMITS): { clock: FakeClock, frames: UnfinishedFrames, stream: (peer: string) => { decoder: FrameDecoder, expired: TaskError[], close: () => void } } {
  const clock = new FakeClock(1000)
  const frames = new UnfinishedFrames(limits, clock)
  return {
    clock,
    frames,
    stream: (peer) => {
      const expired: TaskError[] = []
      const watch = frames.watch(peer, (err) => { expired.push(err) })
      return { decoder: new FrameDecoder(DEFAULT_LIMITS, watch), expired, close: () => { watch.close() } }
    }
  }
}

function refusal (fn: () => unknown): TaskError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(TaskError)
    return err as TaskError
  }
  throw new Error('expected the push to be refused')
}

describe('LengthPrefixedReader progress', () => {
  it('reports the unfinished frame: bytes held, its size once the prefix is in, frames completed', () => {
    const reader = new LengthPrefixedReader(MiB)
    const frame = frameOf(300) // two-byte prefix
    reader.push(frame.subarray(0, 1))
    expect([reader.pending, reader.frameBytes, reader.completed]).toEqual([1, undefined, 0])
    reader.push(frame.subarray(1, 100))
    expect([reader.pending, reader.frameBytes, reader.completed]).toEqual([100, 300, 0])
    reader.push(concat(frame.subarray(100), frame.subarray(0, 10)))
    expect([reader.pending, reader.frameBytes, reader.completed]).toEqual([10, 300, 1])
    reader.push(frame.subarray(10))
    expect([reader.pending, reader.frameBytes, reader.completed]).toEqual([0, undefined, 2])
  })
})

describe('unfinished frame deadline', () => {
  it('a frame that arrives in time, however slowly, is never cut', () => {
    const { clock, frames, stream } = setup()
    const s = stream('a')
    const frame = frameOf(200 * KiB) // allowed 1 s + 2 s
    for (let at = 0; at < frame.length; at += 10 * KiB) {
      s.decoder.push(frame.subarray(at, at + 10 * KiB))
      clock.advance(140)
    }
    expect(s.expired).toEqual([])
    expect(frames.held).toBe(0)
    expect(clock.pendingTimers).toBe(0)
  })

  it('cuts a stalled frame at floor + size / rate from its first byte, once, releasing its bytes', () => {
    const { clock, frames, stream } = setup()
    const s = stream('a')
    s.decoder.push(frameOf(200 * KiB).subarray(0, 50 * KiB))
    expect(frames.heldBy('a')).toBe(50 * KiB)
    clock.advance(2999)
    expect(s.expired).toEqual([])
    clock.advance(1)
    expect(s.expired).toHaveLength(1)
    expect(s.expired[0].code).toBe('timeout')
    expect(frames.stats).toEqual({ refused: 0, expired: 1 })
    expect(s.expired[0].message).toMatch(/200 KiB frame was not finished within 3\.0 s of its first byte \(50 KiB received/)
    expect(frames.heldBy('a')).toBe(0)
    clock.advance(60_000)
    expect(s.expired).toHaveLength(1)
  })

  it('a byte now and then does not push the deadline back (trickling)', () => {
    const { clock, stream } = setup()
    const s = stream('a')
    const frame = frameOf(200 * KiB)
    s.decoder.push(frame.subarray(0, 10))
    for (let at = 10; s.expired.length === 0 && at < 100; at++) {
      clock.advance(100)
      s.decoder.push(frame.subarray(at, at + 1))
    }
    expect(s.expired).toHaveLength(1)
    expect(clock.now()).toBe(1000 + 3000)
  })

  it('while the length prefix is incomplete the floor alone applies; its size then extends the deadline', () => {
    const { clock, stream } = setup()
    const s = stream('a')
    const frame = frameOf(200 * KiB) // three-byte prefix
    s.decoder.push(frame.subarray(0, 2))
    clock.advance(500)
    s.decoder.push(frame.subarray(2, 3))
    clock.advance(2499)
    expect(s.expired).toEqual([])
    clock.advance(1)
    expect(s.expired).toHaveLength(1)

    const t = stream('b')
    t.decoder.push(frame.subarray(0, 2))
    clock.advance(1000)
    expect(t.expired).toHaveLength(1)
    expect(t.expired[0].message).toMatch(/^a frame was not finished within 1\.0 s/)
  })

  it('each frame gets its own time: one that starts where another ends is timed from then', () => {
    const { clock, stream } = setup()
    const s = stream('a')
    const first = frameOf(100 * KiB) // allowed 2 s
    const second = frameOf(100 * KiB)
    s.decoder.push(first.subarray(0, 1000))
    clock.advance(1900)
    expect(s.decoder.push(concat(first.subarray(1000), second.subarray(0, 1000)))).toHaveLength(1)
    clock.advance(1999)
    expect(s.expired).toEqual([])
    clock.advance(1)
    expect(s.expired).toHaveLength(1)
  })

  it('a closed stream releases its bytes and its timer', () => {
    const { clock, frames, stream } = setup()
    const s = stream('a')
    s.decoder.push(frameOf(100 * KiB).subarray(0, 1000))
    s.close()
    expect(frames.held).toBe(0)
    expect(clock.pendingTimers).toBe(0)
    s.decoder.push(new Uint8Array(1000))
    expect(frames.held).toBe(0)
  })

  it('the defaults: 10 s, plus 1 s per 128 KiB', () => {
    const { clock, stream } = setup(DEFAULT_UNFINISHED_FRAME_LIMITS)
    const s = stream('a')
    s.decoder.push(frameOf(1280 * KiB).subarray(0, 100))
    clock.advance(19_999)
    expect(s.expired).toEqual([])
    clock.advance(1)
    expect(s.expired).toHaveLength(1)
  })
})

describe('bytes held in unfinished frames', () => {
  it('one peer holds at most its cap across all its streams: the stream that crosses it is refused', () => {
    const { frames, stream } = setup()
    const big = frameOf(600 * KiB)
    const a = stream('mallory')
    const b = stream('mallory')
    a.decoder.push(big.subarray(0, 500 * KiB))
    b.decoder.push(big.subarray(0, 400 * KiB))
    expect(frames.heldBy('mallory')).toBe(900 * KiB)
    const err = refusal(() => b.decoder.push(big.subarray(400 * KiB, 550 * KiB)))
    expect(err.code).toBe('bad-request')
    expect(err.message).toMatch(/this peer holds 1\.0 MiB in unfinished frames, over its 1\.0 MiB cap: stream refused/)
    // the refused stream's bytes are released; the other stream keeps its frame
    expect(frames.heldBy('mallory')).toBe(500 * KiB)
    expect(a.decoder.push(big.subarray(500 * KiB))).toHaveLength(1)
    expect(frames.heldBy('mallory')).toBe(0)
    expect(frames.admit('mallory')).toBe(true)
  })

  it('a peer at its cap is not admitted another stream; another peer is unaffected', () => {
    const { frames, stream } = setup()
    const big = frameOf(MiB + 100)
    stream('mallory').decoder.push(big.subarray(0, MiB))
    expect(frames.admit('mallory')).toBe(false)
    expect(frames.admit('alice')).toBe(true)
    expect(frames.stats).toEqual({ refused: 1, expired: 0 })
    const alice = stream('alice')
    alice.decoder.push(big.subarray(0, MiB))
    expect(alice.decoder.push(big.subarray(MiB))).toHaveLength(1)
  })

  it('all peers together hold at most the total cap: past it new bytes are refused as busy', () => {
    const { frames, stream } = setup()
    const big = frameOf(MiB)
    for (const peer of ['p1', 'p2', 'p3']) stream(peer).decoder.push(big.subarray(0, MiB - 10))
    const err = refusal(() => stream('p4').decoder.push(big.subarray(0, 100)))
    expect(err.code).toBe('busy')
    expect(frames.held).toBe(3 * (MiB - 10))
  })
})

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

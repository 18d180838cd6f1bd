import { describe, expect, it, vi } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { COALESCE_BYTES, endOfTurn, streamChannel } from '../../src/net/stream-channel.js'
import { encodeFrame, FrameDecoder } from '../../src/core/task/codec.js'
import { flushMicrotasks } from '../helpers/memory-channel.js'
import type { Stream } from '@libp2p/interface'
import type { FrameSink } from '../../src/net/stream-channel.js'

/** The part of a libp2p stream streamChannel uses, recording every write. */
class FakeStream extends EventTarget {
  status = 'open'
  writes: Uint8Array[] = []
  /** What send() answers: false asks the writer to wait for a drain. */
  canSendMore = true
  closed = 0
  aborted?: Error
  private drained?: () => void

  send (data: Uint8Array | Uint8ArrayList): boolean {
    if (this.status !== 'open') throw new Error('closed')
    this.writes.push(data instanceof Uint8Array ? data : data.subarray())
    return this.canSendMore
  }

  async onDrain (): Promise<void> {
    await new Promise<void>(resolve => { this.drained = resolve })
  }

  drain (): void {
    this.canSendMore = true
    this.drained?.()
  }

  async close (): Promise<void> {
    this.closed++
  }

  abort (err: Error): void {
    this.aborted = err
  }
}

const sink: FrameSink = { receive: () => {}, closed: () => {} }

/** A defer that runs only when the test says the turn is over. */
function manualTurns (): { defer: (fn: () => void) => void, endTurn: () => void } {
  let queued: Array<() => void> = []
  return {
    defer: (fn) => { queued.push(fn) },
    endTurn: () => {
      const run = queued
      queued = []
      for (const fn of run) fn()
    }
  }
}

function frame (n: number): Uint8Array {
  return encodeFrame({ type: 'ping', nonce: n })
}

function decodeAll (writes: Uint8Array[]): unknown[] {
  const decoder = new FrameDecoder()
  return writes.flatMap(w => decoder.push(w))
}

describe('streamChannel coalescing', () => {
  it('writes the frames of one turn as one stream write, in order, once the turn is over', async () => {
    const stream = new FakeStream()
    const turns = manualTurns()
    const channel = streamChannel(stream as unknown as Stream, () => sink, { defer: turns.defer })
    await channel.send(frame(1))
    await Promise.resolve().then(async () => { await channel.send(frame(2)) })
    await channel.send(frame(3))
    expect(stream.writes).toHaveLength(0)
    turns.endTurn()
    expect(stream.writes).toHaveLength(1)
    expect(decodeAll(stream.writes)).toEqual([1, 2, 3].map(nonce => ({ type: 'ping', nonce })))
    await channel.send(frame(4))
    turns.endTurn()
    expect(stream.writes).toHaveLength(2)
  })

  it('with the default end of turn, frames sent across microtasks still go out together', async () => {
    const stream = new FakeStream()
    const channel = streamChannel(stream as unknown as Stream, () => sink, { defer: endOfTurn() })
    const sends = [1, 2, 3, 4].map(async (n) => {
      for (let i = 0; i < n; i++) await Promise.resolve()
      await channel.send(frame(n))
    })
    await Promise.all(sends)
    await flushMicrotasks()
    expect(stream.writes).toHaveLength(1)
    expect(decodeAll(stream.writes)).toEqual([1, 2, 3, 4].map(nonce => ({ type: 'ping', nonce })))
  })

  describe('in a browser (no setImmediate)', () => {
    /** endOfTurn() as a page gets it: `document` with the given visibility, Node's setImmediate hidden. */
    const browserDefer = (visibilityState: string | undefined): ReturnType<typeof endOfTurn> => {
      vi.stubGlobal('setImmediate', undefined)
      if (visibilityState != null) vi.stubGlobal('document', { visibilityState })
      try { return endOfTurn() } finally { vi.unstubAllGlobals() }
    }
    /** Whether `fn` runs before a microtask queued right after it. */
    const order = async (defer: ReturnType<typeof endOfTurn>): Promise<string[]> => {
      const seen: string[] = []
      const ran = new Promise<void>(resolve => { defer(() => { seen.push('deferred'); resolve() }) })
      queueMicrotask(() => seen.push('later microtask'))
      await ran
      return seen
    }

    it('a tab someone looks at writes in a microtask (a posted message waits behind rendering after a click)', async () => {
      expect(await order(browserDefer('visible'))).toEqual(['deferred', 'later microtask'])
    })

    it('a hidden tab, or a Web Worker, writes once the turn and its microtasks are over', async () => {
      expect(await order(browserDefer('hidden'))).toEqual(['later microtask', 'deferred'])
      expect(await order(browserDefer(undefined))).toEqual(['later microtask', 'deferred'])
    })
  })

  it('writes at once, without waiting for the turn, once COALESCE_BYTES are held', async () => {
    const stream = new FakeStream()
    const turns = manualTurns()
    const channel = streamChannel(stream as unknown as Stream, () => sink, { defer: turns.defer })
    const big = new Uint8Array(COALESCE_BYTES)
    await channel.send(frame(1))
    await channel.send(big)
    expect(stream.writes).toHaveLength(1)
    expect(stream.writes[0].byteLength).toBe(frame(1).byteLength + COALESCE_BYTES)
    turns.endTurn()
    expect(stream.writes).toHaveLength(1) // nothing left for the deferred write
  })

  it('close writes the frames still held before closing the stream', async () => {
    const stream = new FakeStream()
    const turns = manualTurns()
    const channel = streamChannel(stream as unknown as Stream, () => sink, { defer: turns.defer })
    await channel.send(frame(7))
    channel.close()
    expect(stream.writes).toHaveLength(1)
    expect(stream.closed).toBe(1)
    turns.endTurn()
    expect(stream.writes).toHaveLength(1)
  })

  it('a stream that asks for a drain holds the next senders until it drains', async () => {
    const stream = new FakeStream()
    const turns = manualTurns()
    const channel = streamChannel(stream as unknown as Stream, () => sink, { defer: turns.defer })
    stream.canSendMore = false
    expect(channel.send(frame(1))).toBeUndefined()
    turns.endTurn()
    const wait = channel.send(frame(2))
    expect(wait).toBeInstanceOf(Promise)
    let released = false
    void (wait as Promise<void>).then(() => { released = true })
    await flushMicrotasks()
    expect(released).toBe(false)
    stream.drain()
    await wait
    expect(channel.send(frame(3))).toBeUndefined()
  })

  it('a stream that throws on write is aborted; a closed stream refuses new frames at once', async () => {
    const stream = new FakeStream()
    const turns = manualTurns()
    const channel = streamChannel(stream as unknown as Stream, () => sink, { defer: turns.defer })
    stream.send = () => { throw new Error('data channel gone') }
    await channel.send(frame(1))
    turns.endTurn()
    expect(stream.aborted?.message).toBe('data channel gone')
    stream.status = 'closed'
    expect(() => channel.send(frame(2))).toThrow('stream is closed')
  })
})

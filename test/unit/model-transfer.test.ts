/**
 * The model transfer conformance suite over the in-memory transport (chunks cut into random
 * pieces), plus what only a hand-made holder can do: lie about sizes, send junk, vanish.
 */
import { describe, expect, it } from 'vitest'
import { TaskError } from '../../src/core/errors.js'
import { sha256Hex } from '../../src/core/hash.js'
import { lengthPrefixed } from '../../src/core/framing.js'
import { ModelReply, ModelRequest } from '../../src/core/model-transfer/pb/model.js'
import { LengthPrefixedReader } from '../../src/core/framing.js'
import { MODEL_CHUNK_BYTES } from '../../src/core/model-transfer/codec.js'
import { ModelDownload } from '../../src/core/model-transfer/client.js'
import { ModelTransferServer, TransferTooSlowError } from '../../src/core/model-transfer/server.js'
import { DEFAULT_TRANSFER_LIMITS, transferDeadlineMs } from '../../src/core/model-transfer/limits.js'
import { flushMicrotasks, memoryChannelPair } from '../helpers/memory-channel.js'
import { FakeClock } from '../helpers/fake-clock.js'
import type { FrameChannel } from '../../src/core/channel.js'
import type { TransferLimits } from '../../src/core/model-transfer/limits.js'
import { modelTransferConformance } from '../conformance/model-transfer.js'
import type { TransferHarnessFactory } from '../conformance/model-transfer.js'
import type { MemoryEnd } from '../helpers/memory-channel.js'
import type { ModelRef } from '../../src/core/task-types.js'

let seed = 1

const factory: TransferHarnessFactory = async (source) => {
  const ends: MemoryEnd[] = []
  const open = (): MemoryEnd => {
    const [fetcher, holder] = memoryChannelPair({ seed: seed++, maxPiece: 4096 })
    const server = new ModelTransferServer(holder, source)
    holder.onData(c => { server.receive(c) })
    holder.onClose(() => { server.closed() })
    ends.push(fetcher, holder)
    return fetcher
  }
  return {
    fetch: async (ref, options) => {
      const end = open()
      const download = new ModelDownload(ref, options)
      end.onData(c => { download.receive(c) })
      end.onClose(err => { download.closed(err) })
      end.send(download.request)
      return await download.bytes
    },
    sendRaw: async (bytes) => {
      const end = open()
      return await new Promise<TaskError>((resolve, reject) => {
        // Any well-formed ref will do: the reply to junk is an error frame, which is all we read.
        const download = new ModelDownload({ sha256: '0'.repeat(64), size: 1, name: 'raw' })
        download.bytes.then(() => { reject(new Error('expected an error')) }, (e: TaskError) => { resolve(e) })
        end.onData(c => { download.receive(c) })
        end.onClose(err => { download.closed(err) })
        end.send(lengthPrefixed(bytes.subarray(1)))
      })
    },
    close: async () => { for (const e of ends) e.close() }
  }
}

modelTransferConformance('in-memory', factory)

/** A download fed by a scripted holder: `replies` are sent as the holder's frames. */
async function scripted (ref: ModelRef, replies: ModelReply[], thenClose = true): Promise<Uint8Array> {
  const [fetcher, holder] = memoryChannelPair({ seed: seed++, maxPiece: 100 })
  const download = new ModelDownload(ref)
  fetcher.onData(c => { download.receive(c) })
  fetcher.onClose(err => { download.closed(err) })
  for (const r of replies) holder.send(lengthPrefixed(ModelReply.encode(r)))
  if (thenClose) holder.close()
  return await download.bytes
}

describe('model download against a misbehaving holder', () => {
  const bytes = new Uint8Array(1000).map((_, i) => i % 251)
  const refP = (async (): Promise<ModelRef> => ({ sha256: await sha256Hex(bytes), size: bytes.byteLength, name: 'm' }))()

  it('rejects a chunk that overflows the announced size', async () => {
    const ref = await refP
    const err = await scripted(ref, [{ header: { size: 1000n } }, { chunk: new Uint8Array(1001) }]).catch((e: unknown) => e) as TaskError
    expect(err.code).toBe('bad-request')
    expect(err.message).toContain('more than the 1000 bytes')
  })

  it('rejects a chunk before the header', async () => {
    const err = await scripted(await refP, [{ chunk: bytes }]).catch((e: unknown) => e) as TaskError
    expect(err.code).toBe('bad-request')
  })

  it('reports a holder that closes mid-transfer as model-unavailable, saying how far it got', async () => {
    const err = await scripted(await refP, [{ header: { size: 1000n } }, { chunk: bytes.subarray(0, 400) }]).catch((e: unknown) => e) as TaskError
    expect(err.code).toBe('model-unavailable')
    expect(err.message).toContain('after 400 of 1000 bytes')
  })

  it('carries a holder\'s busy error code, and maps unknown codes to model-unavailable', async () => {
    const busy = await scripted(await refP, [{ error: { code: 'busy', message: 'too many transfers' } }]).catch((e: unknown) => e) as TaskError
    expect(busy.code).toBe('busy')
    const odd = await scripted(await refP, [{ error: { code: 'timeout', message: 'x' } }]).catch((e: unknown) => e) as TaskError
    expect(odd.code).toBe('model-unavailable')
  })
})

describe('model transfer server', () => {
  /** Every reply the server sends for one raw request. */
  async function replies (request: ModelRequest, model: Uint8Array): Promise<ModelReply[]> {
    const [client, server] = memoryChannelPair()
    const s = new ModelTransferServer(server, async () => model)
    server.onData(c => { s.receive(c) })
    const reader = new LengthPrefixedReader(1 << 20)
    const got: ModelReply[] = []
    const closed = new Promise<void>(resolve => { client.onClose(() => { resolve() }) })
    client.onData(c => { for (const body of reader.push(c)) got.push(ModelReply.decode(body)) })
    client.send(lengthPrefixed(ModelRequest.encode(request)))
    await closed
    return got
  }

  it('resumes from an offset: the header gives the full size, chunks start at the offset', async () => {
    const model = new Uint8Array(MODEL_CHUNK_BYTES + 500).map((_, i) => i % 253)
    const sha256 = await sha256Hex(model)
    const got = await replies({ sha256, offset: 1000n }, model)
    expect(got[0].header?.size).toBe(BigInt(model.byteLength))
    const rest = got.slice(1).map(r => r.chunk!)
    expect(rest.every(c => c.byteLength <= MODEL_CHUNK_BYTES)).toBe(true)
    expect(Uint8Array.from(rest.flatMap(c => [...c]))).toEqual(model.subarray(1000))
  })

  it('refuses an offset past the end', async () => {
    const model = new Uint8Array(10)
    const got = await replies({ sha256: await sha256Hex(model), offset: 11n }, model)
    expect(got).toHaveLength(1)
    expect(got[0].error?.code).toBe('bad-request')
  })
})

describe('model transfer time limits (fake clock)', () => {
  /** A download on a fake clock, fed by hand: `frame` delivers one holder reply. */
  function manual (ref: ModelRef, limits?: TransferLimits): { download: ModelDownload, clock: FakeClock, frame: (r: ModelReply) => void } {
    const clock = new FakeClock()
    const download = new ModelDownload(ref, { clock, limits })
    return { download, clock, frame: (r) => { download.receive(lengthPrefixed(ModelReply.encode(r))) } }
  }

  it('gives up on a holder that sends the header and then a byte every 4 s, at the end of the first rate window', async () => {
    const ref: ModelRef = { sha256: 'a'.repeat(64), size: 1024 * 1024, name: 'trickle' }
    const { download, clock, frame } = manual(ref)
    frame({ header: { size: BigInt(ref.size) } })
    for (let t = 0; t < DEFAULT_TRANSFER_LIMITS.windowMs; t += 4000) {
      frame({ chunk: Uint8Array.of(1) })
      clock.advance(4000)
    }
    const err = await download.bytes.catch((e: unknown) => e) as TaskError
    expect(err).toBeInstanceOf(TaskError)
    expect(err.code).toBe('model-unavailable')
    expect(err.message).toMatch(/too slow: 4 bytes in 15 s, at least 65536 needed/)
    expect(clock.pendingTimers).toBe(0)
  })

  it('gives up on a holder that keeps the minimum rate but would take past the total deadline', async () => {
    const size = 10 * 1024 * 1024
    const ref: ModelRef = { sha256: 'b'.repeat(64), size, name: 'slow' }
    const deadline = transferDeadlineMs(size, DEFAULT_TRANSFER_LIMITS)
    expect(deadline).toBe(80_000) // 10 MiB at 128 KiB/s, over the 30 s floor
    const { download, clock, frame } = manual(ref)
    frame({ header: { size: BigInt(size) } })
    let settled = false
    download.bytes.catch(() => {}).finally(() => { settled = true })
    // 64 KiB per 15 s window: exactly the minimum rate, never enough for 10 MiB in 80 s.
    for (let t = 0; t < deadline - 1000; t += 1000) {
      if (t % DEFAULT_TRANSFER_LIMITS.windowMs === 0) frame({ chunk: new Uint8Array(DEFAULT_TRANSFER_LIMITS.minBytesPerWindow) })
      clock.advance(1000)
    }
    await flushMicrotasks()
    expect(settled).toBe(false)
    clock.advance(1000)
    const err = await download.bytes.catch((e: unknown) => e) as TaskError
    expect(err.code).toBe('model-unavailable')
    expect(err.message).toMatch(/did not finish within 80 s/)
  })

  it('a holder that sends nothing at all is given up on after one window; the floor bounds a small model', async () => {
    const ref: ModelRef = { sha256: 'c'.repeat(64), size: 10, name: 'silent' }
    expect(transferDeadlineMs(10, DEFAULT_TRANSFER_LIMITS)).toBe(DEFAULT_TRANSFER_LIMITS.minDeadlineMs)
    const { download, clock } = manual(ref)
    clock.advance(DEFAULT_TRANSFER_LIMITS.windowMs)
    const err = await download.bytes.catch((e: unknown) => e) as TaskError
    expect(err.code).toBe('model-unavailable')
    expect(err.message).toMatch(/0 bytes in 15 s, at least 10 needed/)
  })

  it('a transfer within the limits succeeds and leaves no timer behind', async () => {
    const model = new Uint8Array(3 * MODEL_CHUNK_BYTES).map((_, i) => i % 241)
    const ref: ModelRef = { sha256: await sha256Hex(model), size: model.byteLength, name: 'ok' }
    const { download, clock, frame } = manual(ref, { windowMs: 1000, minBytesPerWindow: MODEL_CHUNK_BYTES })
    frame({ header: { size: BigInt(model.byteLength) } })
    for (let at = 0; at < model.byteLength; at += MODEL_CHUNK_BYTES) {
      frame({ chunk: model.subarray(at, at + MODEL_CHUNK_BYTES) })
      clock.advance(1000)
    }
    expect(await download.bytes).toEqual(model)
    expect(clock.pendingTimers).toBe(0)
  })

  it('the holder cuts off a fetcher that stops reading, and frees its timers', async () => {
    const model = new Uint8Array(4 * MODEL_CHUNK_BYTES)
    const clock = new FakeClock()
    let closedWith: Error | undefined
    let frames = 0
    let refuse: ((err: Error) => void) | undefined
    // A transport whose sends never complete: the fetcher does not read.
    const channel: FrameChannel = {
      send: () => { frames++; return new Promise<void>((_resolve, reject) => { refuse = reject }) },
      close: (err) => { closedWith = err; refuse?.(err ?? new Error('closed')) }
    }
    const server = new ModelTransferServer(channel, async () => model, { clock })
    server.receive(lengthPrefixed(ModelRequest.encode({ sha256: await sha256Hex(model), offset: 0n })))
    await flushMicrotasks()
    expect(frames).toBe(1) // the header, still waiting to be read
    clock.advance(DEFAULT_TRANSFER_LIMITS.windowMs)
    await flushMicrotasks()
    expect(closedWith).toBeInstanceOf(TransferTooSlowError)
    expect(frames).toBe(1)
    expect(clock.pendingTimers).toBe(0)
  })
})

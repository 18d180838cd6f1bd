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
import { ModelTransferServer } from '../../src/core/model-transfer/server.js'
import { memoryChannelPair } from '../helpers/memory-channel.js'
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

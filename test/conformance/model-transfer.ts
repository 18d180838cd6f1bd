/**
 * Transport-independent conformance suite for the model transfer protocol: a transport provides
 * a factory wiring a real ModelDownload (the fetching worker) to a real ModelTransferServer (the
 * holder) serving from `source`; every case runs unchanged over it.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { TaskError } from '../../src/core/errors.js'
import { sha256Hex } from '../../src/core/hash.js'
import { MODEL_CHUNK_BYTES } from '../../src/core/model-transfer/codec.js'
import type { ModelRef } from '../../src/core/task-types.js'
import type { ModelSource, TransferProgress } from '../../src/core/model-transfer/codec.js'
import { codeOf } from '../helpers/errors.js'

export interface TransferHarness {
  fetch(ref: ModelRef, options?: { maxBytes?: number, onProgress?: (p: TransferProgress) => void }): Promise<Uint8Array>
  /** Opens a transfer stream, writes raw bytes, resolves with the error the holder replies with. */
  sendRaw(bytes: Uint8Array): Promise<TaskError>
  close(): Promise<void>
}

export type TransferHarnessFactory = (source: ModelSource) => Promise<TransferHarness>

function pseudoRandomBytes (n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let a = seed >>> 0
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0
    out[i] = a >>> 24
  }
  return out
}

async function refOf (bytes: Uint8Array, name = 'model.onnx'): Promise<ModelRef> {
  return { sha256: await sha256Hex(bytes), size: bytes.byteLength, name }
}

export function modelTransferConformance (transport: string, factory: TransferHarnessFactory): void {
  describe(`model transfer protocol over ${transport}`, () => {
    let harness: TransferHarness | undefined
    const models = new Map<string, Uint8Array>()
    let asked = 0
    const source: ModelSource = async (sha) => { asked++; return models.get(sha) }

    async function start (src: ModelSource = source): Promise<TransferHarness> {
      harness = await factory(src)
      return harness
    }

    afterEach(async () => {
      await harness?.close()
      harness = undefined
      models.clear()
      asked = 0
    })

    it('sends a model of several chunks that arrives byte for byte, with progress up to its size', async () => {
      const bytes = pseudoRandomBytes(3 * MODEL_CHUNK_BYTES + 1234, 7)
      const ref = await refOf(bytes)
      models.set(ref.sha256, bytes)
      const progress: TransferProgress[] = []
      const got = await (await start()).fetch(ref, { onProgress: p => progress.push(p) })
      expect(got).toEqual(bytes)
      expect(progress.at(-1)).toEqual({ received: bytes.byteLength, size: bytes.byteLength })
      const received = progress.map(p => p.received)
      expect(received).toEqual([...received].sort((a, b) => a - b))
      expect(progress.length).toBeGreaterThanOrEqual(4)
    })

    it('sends a model of exactly one chunk, and an empty one', async () => {
      const one = pseudoRandomBytes(MODEL_CHUNK_BYTES, 3)
      const empty = new Uint8Array(0)
      const [r1, r0] = [await refOf(one), await refOf(empty)]
      models.set(r1.sha256, one)
      models.set(r0.sha256, empty)
      const h = await start()
      expect(await h.fetch(r1)).toEqual(one)
      expect(await h.fetch(r0)).toEqual(empty)
    })

    it('answers model-unavailable for a model the holder does not have', async () => {
      const ref = await refOf(pseudoRandomBytes(100, 1))
      const err = await (await start()).fetch(ref).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(TaskError)
      expect((err as TaskError).code).toBe('model-unavailable')
      expect((err as TaskError).message).toContain('does not have')
    })

    it('rejects a corrupted transfer (right size, wrong bytes) with model-hash-mismatch', async () => {
      const bytes = pseudoRandomBytes(2 * MODEL_CHUNK_BYTES, 11)
      const ref = await refOf(bytes)
      const corrupted = bytes.slice()
      corrupted[MODEL_CHUNK_BYTES + 5] ^= 0x01
      models.set(ref.sha256, corrupted)
      const err = await (await start()).fetch(ref).catch((e: unknown) => e) as TaskError
      expect(err.code).toBe('model-hash-mismatch')
      expect(err.message).toContain(ref.sha256)
    })

    it('rejects a holder that offers a different size than the task names', async () => {
      const bytes = pseudoRandomBytes(5000, 5)
      const ref = await refOf(bytes)
      models.set(ref.sha256, new Uint8Array([...bytes, 0]))
      expect(await codeOf((await start()).fetch(ref))).toBe('model-hash-mismatch')
    })

    it('refuses a model over the fetcher\'s size cap without asking the holder for it', async () => {
      const bytes = pseudoRandomBytes(4096, 9)
      const ref = await refOf(bytes)
      models.set(ref.sha256, bytes)
      const err = await (await start()).fetch(ref, { maxBytes: 1024 }).catch((e: unknown) => e) as TaskError
      expect(err.code).toBe('model-unavailable')
      expect(err.message).toMatch(/over this peer's .* limit/)
      expect(asked).toBe(0)
    })

    it('answers a malformed request with a bad-request error', async () => {
      const h = await start()
      const err = await h.sendRaw(new Uint8Array([3, 0xff, 0xff, 0xff]))
      expect(err.code).toBe('bad-request')
      const notHex = await h.sendRaw(new Uint8Array([5, 0x0a, 3, 0x61, 0x62, 0x63])) // sha256 "abc"
      expect(notHex.code).toBe('bad-request')
      expect(notHex.message).toContain('64 lowercase hex')
    })

    it('serves several transfers at once from one holder', async () => {
      const blobs = [1, 2, 3].map(i => pseudoRandomBytes(MODEL_CHUNK_BYTES + i * 1000, i))
      const refs = await Promise.all(blobs.map(async b => await refOf(b)))
      refs.forEach((r, i) => models.set(r.sha256, blobs[i]))
      const h = await start()
      const got = await Promise.all(refs.map(async r => await h.fetch(r)))
      got.forEach((g, i) => { expect(g).toEqual(blobs[i]) })
    })
  })
}

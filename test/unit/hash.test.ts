import { createHash, randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { syncSha256, syncSha256Hex, useSyncSha256 } from '../../src/core/hash.js'
import { tensorsSha256 } from '../../src/core/receipt.js'
import type { Sha256 } from '../../src/core/hash.js'

const noble = (): Sha256 => sha256.create()
const node = (): Sha256 => createHash('sha256')

describe('the synchronous sha256', () => {
  afterEach(() => { useSyncSha256(noble) })

  it('node:crypto (what Node entry points install) and the pure-JS default give the same digests, whole and in parts', () => {
    for (const size of [0, 1, 55, 56, 63, 64, 65, 3136, 100_000]) {
      const bytes = randomBytes(size)
      const parts = [bytes.subarray(0, size >> 2), bytes.subarray(size >> 2, size >> 1), bytes.subarray(size >> 1)]
      const digests = [noble, node].map(create => {
        useSyncSha256(create)
        const h = syncSha256()
        for (const p of parts) h.update(p)
        return [syncSha256Hex(bytes), bytesToHex(h.digest())]
      })
      expect(digests[1]).toEqual(digests[0])
      expect(digests[0][0]).toBe(digests[0][1])
      expect(digests[0][0]).toBe(createHash('sha256').update(bytes).digest('hex'))
    }
  })

  it('receipt digests use the installed implementation', () => {
    const tensors = [{ name: 'x', dtype: 'float32' as const, dims: [1, 4], data: new Uint8Array(16).fill(3) }]
    const before = tensorsSha256(tensors)
    let calls = 0
    useSyncSha256(() => { calls++; return node() })
    expect(tensorsSha256(tensors)).toBe(before)
    expect(calls).toBe(1)
  })
})

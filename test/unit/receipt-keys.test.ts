import { describe, expect, it, vi } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { nodeReceiptKeys } from '../../src/node/receipt-keys.js'
import { libp2pReceiptKeys } from '../../src/net/task-service.js'
import { webCryptoReceiptKeys } from '../../src/net/webcrypto-receipt-keys.js'
import { RECEIPT_VERSION, receiptBytes, signReceipt, verifyReceipt } from '../../src/core/receipt.js'
import type { ReceiptFields } from '../../src/core/receipt.js'
import type { ReceiptKeys } from '../../src/net/task-service.js'

const WORKER_KEY = await generateKeyPair('Ed25519')
const OTHER_KEY = await generateKeyPair('Ed25519')

const fields: ReceiptFields = {
  jobId: 'job-1',
  taskId: 'task-1',
  requester: peerIdFromPrivateKey(OTHER_KEY).toString(),
  worker: peerIdFromPrivateKey(WORKER_KEY).toString(),
  modelSha256: 'a'.repeat(64),
  inputsSha256: 'b'.repeat(64),
  outputsSha256: 'c'.repeat(64),
  backend: 'onnxruntime-node',
  startedAt: 1_700_000_000_000,
  endedAt: 1_700_000_000_004
}

const suites: Array<[string, ReceiptKeys]> = [
  ['nodeReceiptKeys (node:crypto, keys imported once)', nodeReceiptKeys],
  ['webCryptoReceiptKeys (WebCrypto as in a tab, keys imported once)', webCryptoReceiptKeys]
]

describe.each(suites)('%s', (_, keys) => {
  it('signs receipts libp2p verifies, and verifies receipts libp2p signed: the same Ed25519 over the same bytes', async () => {
    const signedHere = await signReceipt(fields, keys.signer(WORKER_KEY))
    const signedByLibp2p = await signReceipt(fields, libp2pReceiptKeys.signer(WORKER_KEY))
    // Ed25519 is deterministic: one key, one message, one signature.
    expect(signedHere.signature).toBe(signedByLibp2p.signature)
    expect(await verifyReceipt(signedHere, libp2pReceiptKeys.verifier(WORKER_KEY.publicKey))).toBe(true)
    expect(await verifyReceipt(signedByLibp2p, keys.verifier(WORKER_KEY.publicKey))).toBe(true)
  })

  it('says no to a changed field, another key\'s signature and a signature of the wrong length, without throwing', async () => {
    const verify = keys.verifier(WORKER_KEY.publicKey)
    const receipt = await signReceipt(fields, keys.signer(WORKER_KEY))
    expect(await verifyReceipt({ ...receipt, outputsSha256: 'd'.repeat(64) }, verify)).toBe(false)
    const forged = await signReceipt(fields, keys.signer(OTHER_KEY))
    expect(await verifyReceipt({ ...forged, version: RECEIPT_VERSION }, verify)).toBe(false)
    const bytes = receiptBytes(fields)
    expect(await verify(bytes, new Uint8Array(63))).toBe(false)
    expect(await verify(bytes, new Uint8Array(64))).toBe(false)
  })

  it('one signer and one verifier serve many concurrent receipts, each signature its own and each verifying', async () => {
    const sign = keys.signer(WORKER_KEY)
    const verify = keys.verifier(WORKER_KEY.publicKey)
    const receipts = await Promise.all(Array.from({ length: 50 }, async (_, i) => await signReceipt({ ...fields, taskId: `task-${i}` }, sign)))
    const checks = await Promise.all(receipts.map(async r => await verifyReceipt(r, verify)))
    expect(checks.every(ok => ok)).toBe(true)
    expect(new Set(receipts.map(r => r.signature)).size).toBe(50)
  })
})

describe('webCryptoReceiptKeys where WebCrypto has no Ed25519 (or no crypto.subtle: a LAN page over plain http)', () => {
  it('falls back to libp2p\'s own methods: the same signatures, and checks that still say yes and no', async () => {
    const importKey = vi.spyOn(globalThis.crypto.subtle, 'importKey').mockRejectedValue(new DOMException('Unrecognized name.', 'NotSupportedError'))
    try {
      const receipt = await signReceipt(fields, webCryptoReceiptKeys.signer(WORKER_KEY))
      expect(receipt.signature).toBe((await signReceipt(fields, libp2pReceiptKeys.signer(WORKER_KEY))).signature)
      const verify = webCryptoReceiptKeys.verifier(WORKER_KEY.publicKey)
      expect(await verifyReceipt(receipt, verify)).toBe(true)
      expect(await verifyReceipt({ ...receipt, outputsSha256: 'd'.repeat(64) }, verify)).toBe(false)
      expect(importKey).toHaveBeenCalled()
    } finally {
      importKey.mockRestore()
    }
  })
})

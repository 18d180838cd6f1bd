/**
 * Receipt signing and checking on node:crypto with each key imported once.
 *
 * libp2p's Ed25519 keys on Node import the key from JWK on every sign and verify call: for a
 * digit task that import costs more than the signature itself (sign 100 µs → 35 µs here with the
 * key kept). Checking runs on libuv's thread pool (node:crypto's callback form), so a requester's
 * event loop keeps dispatching and decoding while results are checked. Same Ed25519, same bytes:
 * receipts signed here verify anywhere, and the other way round.
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import type { ReceiptSign, ReceiptVerify } from '../core/receipt.js'
import type { ReceiptKeys } from '../net/task-service.js'

const b64url = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')

function publicKeyObject (key: PublicKey): KeyObject {
  return createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64url(key.raw) } })
}

export const nodeReceiptKeys: ReceiptKeys = {
  signer (key: PrivateKey): ReceiptSign {
    if (key.type !== 'Ed25519') return (bytes) => key.sign(bytes)
    // libp2p's raw Ed25519 private key is the 32-byte seed followed by the public key.
    const keyObject = createPrivateKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', d: b64url(key.raw.subarray(0, 32)), x: b64url(key.publicKey.raw) } })
    return (bytes) => new Uint8Array(sign(null, bytes, keyObject))
  },
  verifier (key: PublicKey): ReceiptVerify {
    if (key.type !== 'Ed25519') return (bytes, signature) => key.verify(bytes, signature)
    const keyObject = publicKeyObject(key)
    return async (bytes, signature) => await new Promise<boolean>((resolve) => {
      // A malformed signature is an error here and a `false` from libp2p: both say no.
      verify(null, bytes, keyObject, signature, (err, ok) => { resolve(err == null && ok) })
    })
  }
}

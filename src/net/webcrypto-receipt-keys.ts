/**
 * Receipt signing and checking on WebCrypto with each key imported once: tabs (and any runtime
 * whose crypto.subtle has Ed25519).
 *
 * libp2p's Ed25519 keys in a browser import the key into WebCrypto on every sign and verify call,
 * so a worker tab paid an import on its main thread for every receipt it signed, and a requester
 * tab for every receipt it checked. Same Ed25519, same bytes: receipts signed here verify anywhere.
 * Where crypto.subtle is missing (a page over plain http on a LAN) or has no Ed25519, the import
 * fails once and libp2p's own methods, with their pure-JS fallback, are used instead.
 */
import { libp2pReceiptKeys } from './task-service.js'
import type { ReceiptKeys } from './task-service.js'

/** PKCS #8 wrapping of a 32-byte Ed25519 seed (RFC 8410): this prefix, then the seed. */
const PKCS8_ED25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])

/** WebCrypto takes ArrayBuffer-backed views; every Uint8Array here is one. */
const buffer = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => bytes as Uint8Array<ArrayBuffer>

/** `undefined` where this runtime's WebCrypto cannot import the key (then libp2p's methods serve). */
async function importOnce (format: 'pkcs8' | 'raw', bytes: Uint8Array, usage: KeyUsage): Promise<CryptoKey | undefined> {
  const subtle = globalThis.crypto?.subtle
  if (subtle == null) return undefined
  return await subtle.importKey(format, buffer(bytes), { name: 'Ed25519' }, false, [usage]).catch(() => undefined)
}

export const webCryptoReceiptKeys: ReceiptKeys = {
  signer (key) {
    const fallback = libp2pReceiptKeys.signer(key)
    if (key.type !== 'Ed25519') return fallback
    // libp2p's raw Ed25519 private key is the 32-byte seed followed by the public key.
    const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32)
    pkcs8.set(PKCS8_ED25519_PREFIX)
    pkcs8.set(key.raw.subarray(0, 32), PKCS8_ED25519_PREFIX.length)
    const imported = importOnce('pkcs8', pkcs8, 'sign')
    return async (bytes) => {
      const cryptoKey = await imported
      if (cryptoKey == null) return await fallback(bytes)
      return new Uint8Array(await globalThis.crypto.subtle.sign('Ed25519', cryptoKey, buffer(bytes)))
    }
  },
  verifier (key) {
    const fallback = libp2pReceiptKeys.verifier(key)
    if (key.type !== 'Ed25519') return fallback
    const imported = importOnce('raw', key.raw, 'verify')
    return async (bytes, signature) => {
      const cryptoKey = await imported
      if (cryptoKey == null) return await fallback(bytes, signature)
      // A malformed signature is `false` here and in libp2p alike; a throw would say the same.
      return await globalThis.crypto.subtle.verify('Ed25519', cryptoKey, buffer(signature), buffer(bytes)).catch(() => false)
    }
  }
}

/** Lowercase hex sha256: WebCrypto where it exists, else a pure-JS fallback (plain-http LAN pages have no crypto.subtle). */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

export async function sha256Hex (bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle
  if (subtle == null) return bytesToHex(sha256(bytes))
  const digest = await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  return bytesToHex(new Uint8Array(digest))
}

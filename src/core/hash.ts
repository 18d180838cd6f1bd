/**
 * sha256 for the whole code base: `sha256Hex` (async: WebCrypto where it exists, for model-sized
 * inputs) and a synchronous one for the many small digests of the hot path (receipts, the audit
 * chain), which a platform may swap for a faster implementation of the same function.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

/** An incremental sha256, as @noble/hashes and node:crypto's createHash('sha256') both offer. */
export interface Sha256 {
  update: (data: Uint8Array) => unknown
  digest: () => Uint8Array
}

/** Pure JS: runs anywhere, including plain-http LAN pages that have no crypto.subtle. */
let createSha256: () => Sha256 = () => sha256.create()

/**
 * Installs another synchronous sha256 (Node: node:crypto, about 10× faster on a digit task's
 * inputs than pure JS). It must compute the same function; tests check it does.
 */
export function useSyncSha256 (create: () => Sha256): void {
  createSha256 = create
}

/** A new incremental synchronous sha256. */
export function syncSha256 (): Sha256 {
  return createSha256()
}

/** Lowercase hex sha256 of `bytes`, computed synchronously. */
export function syncSha256Hex (bytes: Uint8Array): string {
  const h = createSha256()
  h.update(bytes)
  return bytesToHex(h.digest())
}

/** Lowercase hex sha256: WebCrypto where it exists, else the synchronous one (plain-http LAN pages have no crypto.subtle). */
export async function sha256Hex (bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle
  if (subtle == null) return syncSha256Hex(bytes)
  const digest = await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  return bytesToHex(new Uint8Array(digest))
}

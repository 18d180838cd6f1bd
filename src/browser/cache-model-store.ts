/**
 * A tab's model cache in Cache Storage, keyed by sha256: survives reloads and is shared by the
 * origin's tabs. Cache Storage exists only in secure contexts; elsewhere models stay in memory.
 */
import { MemoryModelStore } from '../core/model-store.js'
import type { ModelStore } from '../core/model-store.js'

/** Outside the service worker's "p2p-ai-agents-" prefix: its clean-up of old shells leaves models alone. */
export const MODEL_CACHE = 'p2p-models-v1'
const PATH = '/p2p-models/'
const SHA256_HEX = /^[0-9a-f]{64}$/

export class CacheModelStore implements ModelStore {
  async get (sha256: string): Promise<Uint8Array | undefined> {
    const res = await (await caches.open(MODEL_CACHE)).match(PATH + sha256)
    return res == null ? undefined : new Uint8Array(await res.arrayBuffer())
  }

  async put (sha256: string, bytes: Uint8Array): Promise<void> {
    await (await caches.open(MODEL_CACHE)).put(PATH + sha256, new Response(new Uint8Array(bytes), { headers: { 'content-type': 'application/octet-stream' } }))
  }

  async list (): Promise<string[]> {
    const keys = await (await caches.open(MODEL_CACHE)).keys()
    return keys.map(r => new URL(r.url).pathname.slice(PATH.length)).filter(s => SHA256_HEX.test(s))
  }
}

/** Cache Storage where the page may use it (secure contexts), memory otherwise. */
export function tabModelStore (): ModelStore {
  return typeof caches !== 'undefined' ? new CacheModelStore() : new MemoryModelStore()
}

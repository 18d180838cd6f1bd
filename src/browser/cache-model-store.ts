/**
 * A tab's model cache in Cache Storage, keyed by sha256: survives reloads and is shared by the
 * origin's tabs. Cache Storage exists only in secure contexts; elsewhere models stay in memory.
 */
import { MemoryModelStore } from '../core/model-store.js'
import type { ModelStore, StoredModel } from '../core/model-store.js'

/** Outside the service worker's "p2p-ai-agents-" prefix: its clean-up of old shells leaves models alone. */
export const MODEL_CACHE = 'p2p-models-v1'
const PATH = '/p2p-models/'
const SHA256_HEX = /^[0-9a-f]{64}$/
/** Storage a tab's model cache may use (the ModelProvider evicts least recently used models past it). */
export const TAB_MODEL_CACHE_BYTES = 512 * 1024 * 1024
/** Headers that let list() size an entry without reading its body. */
const SIZE_HEADER = 'x-model-bytes'
const STORED_HEADER = 'x-stored-at'

export class CacheModelStore implements ModelStore {
  readonly budgetBytes: number

  constructor (options: { budgetBytes?: number } = {}) {
    this.budgetBytes = options.budgetBytes ?? TAB_MODEL_CACHE_BYTES
  }

  async get (sha256: string): Promise<Uint8Array | undefined> {
    const res = await (await caches.open(MODEL_CACHE)).match(PATH + sha256)
    return res == null ? undefined : new Uint8Array(await res.arrayBuffer())
  }

  async put (sha256: string, bytes: Uint8Array): Promise<void> {
    await (await caches.open(MODEL_CACHE)).put(PATH + sha256, new Response(new Uint8Array(bytes), {
      headers: { 'content-type': 'application/octet-stream', [SIZE_HEADER]: String(bytes.byteLength), [STORED_HEADER]: String(Date.now()) }
    }))
  }

  async list (): Promise<StoredModel[]> {
    const cache = await caches.open(MODEL_CACHE)
    const models: StoredModel[] = []
    for (const key of await cache.keys()) {
      const sha256 = new URL(key.url).pathname.slice(PATH.length)
      if (!SHA256_HEX.test(sha256)) continue
      const res = await cache.match(key)
      if (res == null) continue
      // Entries written before the size header are sized once by reading them.
      const size = Number(res.headers.get(SIZE_HEADER) ?? (await res.arrayBuffer()).byteLength)
      models.push({ sha256, bytes: size, storedAt: Number(res.headers.get(STORED_HEADER) ?? 0) })
    }
    return models
  }

  async delete (sha256: string): Promise<void> {
    await (await caches.open(MODEL_CACHE)).delete(PATH + sha256)
  }
}

/** Cache Storage where the page may use it (secure contexts), memory otherwise. */
export function tabModelStore (): ModelStore {
  return typeof caches !== 'undefined' ? new CacheModelStore() : new MemoryModelStore()
}

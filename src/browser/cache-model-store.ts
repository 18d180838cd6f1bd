/**
 * A tab's model caches in Cache Storage, keyed by sha256: survive reloads and are shared by the
 * origin's tabs. Models fetched from peers go to the ModelStore; the app's built-in models, once a
 * tab has used them, to BuiltinModelCache, so the tab runs them with no network (offline OCR).
 * Cache Storage exists only in secure contexts; elsewhere models stay in memory.
 */
import { MemoryModelStore } from '../core/model-store.js'
import { sha256Hex } from '../core/hash.js'
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

/** Built-in models a tab has used; a "p2p-" name outside the service worker's "p2p-ai-agents-" clean-up. */
export const BUILTIN_CACHE = 'p2p-builtin-models-v1'
const BUILTIN_PATH = '/p2p-builtin/'

export interface BuiltinModelCacheOptions {
  /** sha256 of this build's built-in models: entries for any other (an older build's) are deleted. */
  current: readonly string[]
  /** The origin's Cache Storage (default: the global one; none outside secure contexts). */
  caches?: CacheStorage
  fetch?: typeof globalThis.fetch
}

/** The performance mark a page makes each time it hashes a built-in model's bytes (tests count them). */
export const BUILTIN_VERIFY_MARK = 'p2p-builtin-verify'

/**
 * The app's built-in models (public/models, served over HTTP), kept in Cache Storage by sha256 once
 * fetched: later loads, offline ones included, read them from there. It hands out only bytes that
 * hash to the sha256 asked for, each model hashed once per page (a download before it is stored,
 * a cache entry on its first read), so a wrong file (an old deploy behind a proxy) is never pinned
 * nor run, and the model provider need not hash them again.
 */
export class BuiltinModelCache {
  private readonly current: ReadonlySet<string>
  private readonly caches?: CacheStorage
  private readonly fetch: typeof globalThis.fetch
  private pruned?: Promise<void>
  /** Built-ins whose bytes hashed right in this page: their cache entries are not hashed again. */
  private readonly verified = new Set<string>()
  /** Concurrent reads of one model share one download. */
  private readonly inflight = new Map<string, Promise<Uint8Array | undefined>>()

  constructor (options: BuiltinModelCacheOptions) {
    this.current = new Set(options.current)
    this.caches = options.caches ?? (typeof caches !== 'undefined' ? caches : undefined)
    this.fetch = options.fetch ?? (async (input, init) => await globalThis.fetch(input, init))
  }

  /**
   * The bytes of built-in `sha256`, from the cache, else from `url` (then cached); undefined when
   * `url` serves other bytes (the model is then fetched like any other, from a peer that has it).
   */
  async get (sha256: string, url: string | URL): Promise<Uint8Array | undefined> {
    let p = this.inflight.get(sha256)
    if (p == null) {
      p = this.read(sha256, url).finally(() => { this.inflight.delete(sha256) })
      this.inflight.set(sha256, p)
    }
    return await p
  }

  private async read (sha256: string, url: string | URL): Promise<Uint8Array | undefined> {
    const cache = this.caches == null ? undefined : await this.caches.open(BUILTIN_CACHE)
    if (cache != null) {
      this.pruned ??= this.prune(cache).catch(() => {})
      const hit = await cache.match(BUILTIN_PATH + sha256)
      if (hit != null) {
        const bytes = new Uint8Array(await hit.arrayBuffer())
        if (await this.check(sha256, bytes)) return bytes
        // A damaged entry: fetched afresh below.
        await cache.delete(BUILTIN_PATH + sha256).catch(() => {})
      }
    }
    const bytes = await this.download(url)
    // A download is hashed every time, even of a model verified before: the file behind a URL can
    // change (a new deploy keeps the name, a proxy answers an error page with 200).
    if (!this.current.has(sha256) || !await this.hash(sha256, bytes)) {
      console.warn(`${String(url)} does not hash to built-in model ${sha256}: not used`)
      return undefined
    }
    // Out of quota the model still runs, only not offline: not worth failing the task over.
    await cache?.put(BUILTIN_PATH + sha256, new Response(new Uint8Array(bytes), {
      headers: { 'content-type': 'application/octet-stream', [SIZE_HEADER]: String(bytes.byteLength) }
    })).catch((err: unknown) => { console.warn(`built-in model ${sha256} not cached:`, err) })
    return bytes
  }

  /**
   * Whether cached `bytes` are built-in `sha256`: hashed on the first read in this page only (an
   * entry is only ever written after its download hashed right).
   */
  private async check (sha256: string, bytes: Uint8Array): Promise<boolean> {
    return this.verified.has(sha256) || await this.hash(sha256, bytes)
  }

  private async hash (sha256: string, bytes: Uint8Array): Promise<boolean> {
    performance.mark(BUILTIN_VERIFY_MARK, { detail: { sha256 } })
    if (await sha256Hex(bytes) !== sha256) return false
    this.verified.add(sha256)
    return true
  }

  private async prune (cache: Cache): Promise<void> {
    for (const key of await cache.keys()) {
      if (!this.current.has(new URL(key.url).pathname.slice(BUILTIN_PATH.length))) await cache.delete(key)
    }
  }

  private async download (url: string | URL): Promise<Uint8Array> {
    const res = await this.fetch(url)
    if (!res.ok) throw new Error(`GET ${String(url)}: ${res.status}`)
    return new Uint8Array(await res.arrayBuffer())
  }
}

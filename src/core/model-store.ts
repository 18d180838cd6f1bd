/**
 * Where a peer keeps models by sha256, and how it gets one it lacks: built-ins, then its own
 * cache, then a transfer from the requester or another peer that advertises it. Every byte that
 * reaches a session was verified against the sha256 (here for cached and built-in bytes; transfers
 * verify as they finish), and only verified bytes are cached.
 */
import { TaskError, toTaskError } from './errors.js'
import { sha256Hex } from './hash.js'
import type { ModelRef } from './task-types.js'
import type { TransferProgress } from './model-transfer/codec.js'

/** A peer's persistent model cache (Cache Storage in tabs, files for Node peers). */
export interface ModelStore {
  get(sha256: string): Promise<Uint8Array | undefined>
  put(sha256: string, bytes: Uint8Array): Promise<void>
  list(): Promise<string[]>
}

export class MemoryModelStore implements ModelStore {
  private readonly models = new Map<string, Uint8Array>()

  async get (sha256: string): Promise<Uint8Array | undefined> {
    return this.models.get(sha256)
  }

  async put (sha256: string, bytes: Uint8Array): Promise<void> {
    this.models.set(sha256, bytes)
  }

  async list (): Promise<string[]> {
    return [...this.models.keys()]
  }
}

export type ModelEvent =
  | { type: 'transfer', ref: ModelRef, from: string, progress: TransferProgress }
  | { type: 'cached', ref: ModelRef, from: string, ms: number }
  | { type: 'rejected', ref: ModelRef, from: string, error: TaskError }

export interface ModelProviderOptions {
  store: ModelStore
  /** Models that ship with the app (read-only, not counted as transfers). */
  builtin?: (sha256: string) => Promise<Uint8Array | undefined>
  /** Fetches a model from one peer, verified (see ModelDownload). */
  fetchFrom?: (peer: string, ref: ModelRef, onProgress: (p: TransferProgress) => void) => Promise<Uint8Array>
  /** Other peers that advertise having a model, to try after the requester. */
  holders?: (sha256: string) => string[]
  onEvent?: (e: ModelEvent) => void
}

export class ModelProvider {
  private readonly o: ModelProviderOptions
  private readonly inflight = new Map<string, Promise<Uint8Array>>()
  /** sha256 of everything this peer holds, built-ins excluded; kept in step with the store. */
  private readonly known = new Set<string>()
  /** Local models whose bytes hashed right once in this process: not hashed again per session. */
  private readonly verified = new Set<string>()

  constructor (options: ModelProviderOptions) {
    this.o = options
  }

  /** Loads the store's listing; call once before advertising. */
  async init (): Promise<void> {
    for (const sha of await this.o.store.list()) this.known.add(sha)
  }

  /** sha256 of the models in this peer's cache, most recently added first. */
  get cached (): string[] {
    return [...this.known].reverse()
  }

  /** Adds a model this peer brings (e.g. a file its user dropped); returns its sha256. */
  async add (bytes: Uint8Array): Promise<string> {
    const sha = await sha256Hex(bytes)
    await this.o.store.put(sha, bytes)
    this.known.add(sha)
    return sha
  }

  /** Bytes this peer has for `sha256` (built-in or cached), for serving to others. */
  async local (sha256: string): Promise<Uint8Array | undefined> {
    return await this.o.builtin?.(sha256) ?? await this.o.store.get(sha256)
  }

  /**
   * The verified bytes of `ref`: local if present, else fetched from `from` (the requester) or a
   * holder, and cached. Concurrent calls for one model share one transfer.
   */
  async get (ref: ModelRef, from?: string): Promise<Uint8Array> {
    let p = this.inflight.get(ref.sha256)
    if (p == null) {
      p = this.resolve(ref, from).finally(() => { this.inflight.delete(ref.sha256) })
      this.inflight.set(ref.sha256, p)
    }
    return await p
  }

  private async resolve (ref: ModelRef, from?: string): Promise<Uint8Array> {
    const local = await this.local(ref.sha256)
    if (local != null) {
      if (this.verified.has(ref.sha256) || await sha256Hex(local) === ref.sha256) {
        this.verified.add(ref.sha256)
        return local
      }
      // A damaged cache entry is refetched below rather than trusted.
      this.known.delete(ref.sha256)
    }
    const fetchFrom = this.o.fetchFrom
    const peers = [...new Set([from, ...(this.o.holders?.(ref.sha256) ?? [])])].filter((p): p is string => p != null && p !== '')
    if (fetchFrom == null || peers.length === 0) {
      throw new TaskError('model-unavailable', `model ${ref.name || ref.sha256} is not on this peer and no peer to fetch it from`)
    }
    let lastError: TaskError | undefined
    for (const peer of peers) {
      const t0 = Date.now()
      try {
        const bytes = await fetchFrom(peer, ref, (progress) => { this.o.onEvent?.({ type: 'transfer', ref, from: peer, progress }) })
        await this.o.store.put(ref.sha256, bytes)
        this.known.add(ref.sha256)
        this.verified.add(ref.sha256)
        this.o.onEvent?.({ type: 'cached', ref, from: peer, ms: Date.now() - t0 })
        return bytes
      } catch (err) {
        lastError = toTaskError(err, 'model-unavailable')
        this.o.onEvent?.({ type: 'rejected', ref, from: peer, error: lastError })
        // A peer that sent bad bytes is not the only one that could have it: try the next.
      }
    }
    throw lastError!
  }
}

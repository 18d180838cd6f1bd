/**
 * Where a peer keeps models by sha256, and how it gets one it lacks: built-ins, then its own
 * cache, then a transfer from the requester or another peer that advertises it. Every byte that
 * reaches a session was verified against the sha256 (here for cached and built-in bytes; transfers
 * verify as they finish), and only verified bytes are cached. A store with a byte budget is kept
 * under it by evicting the least recently used models (evictionPlan), never one being fetched or
 * run: a model evicted is only fetched again when a task needs it.
 */
import { TaskError, toTaskError } from './errors.js'
import { sha256Hex } from './hash.js'
import type { ModelRef } from './task-types.js'
import type { TransferProgress } from './model-transfer/codec.js'

/** A model in a store: its size and when it was stored (ms since the epoch; orders models from an earlier run). */
export interface StoredModel {
  sha256: string
  bytes: number
  storedAt: number
}

/** A peer's persistent model cache (Cache Storage in tabs, files for Node peers). */
export interface ModelStore {
  get(sha256: string): Promise<Uint8Array | undefined>
  put(sha256: string, bytes: Uint8Array): Promise<void>
  list(): Promise<StoredModel[]>
  /** Removes a model; no error if it is not there. */
  delete(sha256: string): Promise<void>
  /** Most bytes the store may hold; undefined for no limit. */
  readonly budgetBytes?: number
}

export class MemoryModelStore implements ModelStore {
  private readonly models = new Map<string, { bytes: Uint8Array, storedAt: number }>()
  readonly budgetBytes?: number

  constructor (options: { budgetBytes?: number } = {}) {
    this.budgetBytes = options.budgetBytes
  }

  async get (sha256: string): Promise<Uint8Array | undefined> {
    return this.models.get(sha256)?.bytes
  }

  async put (sha256: string, bytes: Uint8Array): Promise<void> {
    this.models.set(sha256, { bytes, storedAt: Date.now() })
  }

  async list (): Promise<StoredModel[]> {
    return [...this.models].map(([sha256, m]) => ({ sha256, bytes: m.bytes.byteLength, storedAt: m.storedAt }))
  }

  async delete (sha256: string): Promise<void> {
    this.models.delete(sha256)
  }
}

/**
 * Which models to evict so the rest fit in `budgetBytes`: least recently used first (`lastUse`
 * order, oldest first), never one in `keep`. When the kept models alone are over the budget,
 * every other model goes and the store stays over it until they are released.
 */
export function evictionPlan (models: Array<{ sha256: string, bytes: number, lastUse: number }>, budgetBytes: number, keep: ReadonlySet<string>): string[] {
  let total = models.reduce((sum, m) => sum + m.bytes, 0)
  const evict: string[] = []
  for (const m of [...models].sort((a, b) => a.lastUse - b.lastUse)) {
    if (total <= budgetBytes) break
    if (keep.has(m.sha256)) continue
    evict.push(m.sha256)
    total -= m.bytes
  }
  return evict
}

export type ModelEvent =
  | { type: 'transfer', ref: ModelRef, from: string, progress: TransferProgress }
  | { type: 'cached', ref: ModelRef, from: string, ms: number }
  | { type: 'rejected', ref: ModelRef, from: string, error: TaskError }

export interface ModelProviderOptions {
  store: ModelStore
  /** Models that ship with the app (read-only, not counted as transfers). */
  builtin?: (sha256: string) => Promise<Uint8Array | undefined>
  /** `builtin` hands out only bytes it checked against the sha256 (a tab's BuiltinModelCache): not hashed again here. */
  builtinVerified?: boolean
  /** Fetches a model from one peer, verified (see ModelDownload). */
  fetchFrom?: (peer: string, ref: ModelRef, onProgress: (p: TransferProgress) => void) => Promise<Uint8Array>
  /** Other peers that advertise having a model, to try after the requester. */
  holders?: (sha256: string) => string[]
  onEvent?: (e: ModelEvent) => void
  /** Models a loaded session or a running task uses: never evicted while listed. */
  inUse?: () => Iterable<string>
  /** Told of a model evicted from the store (logging). */
  onEvict?: (sha256: string) => void
}

export class ModelProvider {
  private readonly o: ModelProviderOptions
  private readonly inflight = new Map<string, Promise<Uint8Array>>()
  /** sha256 of everything this peer holds, built-ins excluded; kept in step with the store. */
  private readonly known = new Set<string>()
  /** Local models whose bytes hashed right once in this process: not hashed again per session. */
  private readonly verified = new Set<string>()
  /** Order of last use of each cached model: a counter, seeded from the store's times. */
  private readonly lastUse = new Map<string, number>()
  private useCounter = 0
  /** Pruning runs one at a time, after the put that triggered it. */
  private pruning: Promise<void> = Promise.resolve()

  constructor (options: ModelProviderOptions) {
    this.o = options
  }

  /** Loads the store's listing; call once before advertising. */
  async init (): Promise<void> {
    const stored = (await this.o.store.list()).sort((a, b) => a.storedAt - b.storedAt)
    for (const m of stored) {
      this.known.add(m.sha256)
      this.used(m.sha256)
    }
    await this.prune()
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
    this.used(sha)
    await this.prune(sha)
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
    const builtin = await this.o.builtin?.(ref.sha256)
    if (builtin != null && this.o.builtinVerified === true) return builtin
    const local = builtin ?? await this.o.store.get(ref.sha256)
    if (local != null) {
      if (this.verified.has(ref.sha256) || await sha256Hex(local) === ref.sha256) {
        this.verified.add(ref.sha256)
        this.used(ref.sha256)
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
        this.used(ref.sha256)
        this.o.onEvent?.({ type: 'cached', ref, from: peer, ms: Date.now() - t0 })
        // The model just stored is for the task about to run: whatever else goes, it stays.
        await this.prune(ref.sha256)
        return bytes
      } catch (err) {
        lastError = toTaskError(err, 'model-unavailable')
        this.o.onEvent?.({ type: 'rejected', ref, from: peer, error: lastError })
        // A peer that sent bad bytes is not the only one that could have it: try the next.
      }
    }
    throw lastError!
  }

  private used (sha256: string): void {
    this.lastUse.set(sha256, ++this.useCounter)
  }

  /**
   * Evicts least recently used models until the store fits its budget, keeping `keep`, every model
   * being fetched and those in use. A failed delete is left for the next prune, never a task error.
   */
  private async prune (keep?: string): Promise<void> {
    const budget = this.o.store.budgetBytes
    if (budget == null) return
    const run = this.pruning.then(async () => {
      const kept = new Set([...this.inflight.keys(), ...(this.o.inUse?.() ?? [])])
      if (keep != null) kept.add(keep)
      const stored = await this.o.store.list()
      const plan = evictionPlan(stored.map(m => ({ ...m, lastUse: this.lastUse.get(m.sha256) ?? 0 })), budget, kept)
      for (const sha of plan) {
        await this.o.store.delete(sha).then(() => {
          this.known.delete(sha)
          this.verified.delete(sha)
          this.lastUse.delete(sha)
          this.o.onEvict?.(sha)
        }, () => {})
      }
    })
    this.pruning = run.catch(() => {})
    await this.pruning
  }
}

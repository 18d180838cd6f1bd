/** Capability adverts: what a peer can run, how fast, how much room it has, and where to dial it. */

/**
 * Credits a worker advertises beyond its execution slots: one task waits queued on the worker so it
 * never idles for a network round trip between tasks.
 */
export const PIPELINE_DEPTH = 1

export type PeerKind = 'tab' | 'node' | 'relay' | 'unknown'

export interface Advert {
  kind: PeerKind
  /** Multiaddrs to dial it on, each ending in /p2p/<its peer id>. */
  addrs: string[]
  worker: boolean
  paused: boolean
  backend: string
  threads: number
  /** Tasks it takes at once: its execution slots plus `queueDepth` queued on top. */
  slots: number
  freeSlots: number
  /**
   * Of `slots`, the tasks it takes queued rather than running, so it never idles for a round trip:
   * PIPELINE_DEPTH, or a batch's worth per pipelined run while its tasks are quick. Absent: the peer
   * does not say (PIPELINE_DEPTH then).
   */
  queueDepth?: number
  /** sha256 of every model this peer has the bytes of (built in or cached): no transfer needed. */
  models: string[]
  /** sha256 of models whose session is already loaded. */
  cached: string[]
  /** sha256 → recent mean in-worker inference ms per task. */
  speeds: Record<string, number>
  /** Largest model it fetches from a requester; 0 if it runs only the models it has. */
  maxModelBytes: number
  /** sha256 → the backend it measured fastest for that model. */
  backends: Record<string, string>
  /** Tasks served since the peer started, finished with a result (a running total; absent: not counted). */
  tasksDone?: number
  /** Tasks served since the peer started that failed (refusals for busy or paused not counted). */
  tasksFailed?: number
}

/** How many of an advert's slots are queued places rather than execution slots (a peer that does not say: PIPELINE_DEPTH). */
export function queueDepthOf (a: Pick<Advert, 'queueDepth'>): number {
  return a.queueDepth ?? PIPELINE_DEPTH
}

export const NOT_A_WORKER: Advert = { kind: 'unknown', addrs: [], worker: false, paused: false, backend: '', threads: 0, slots: 0, freeSlots: 0, models: [], cached: [], speeds: {}, maxModelBytes: 0, backends: {} }

/** Whether a peer can take tasks of this model now (it has it, or fetches models that size). */
export function canRun (a: Advert, sha256: string, size: number): boolean {
  return a.worker && !a.paused && (a.models.includes(sha256) || a.maxModelBytes >= size)
}

/** Whether a peer can start this model's tasks without a transfer (`cached` is a subset of `models`). */
export function hasModel (a: Advert, sha256: string): boolean {
  return a.models.includes(sha256)
}

/** Exponential moving average of inference time per model, for adverts. */
export class SpeedTracker {
  private readonly ms = new Map<string, number>()
  private readonly weight: number

  constructor (weight = 0.2) {
    this.weight = weight
  }

  add (sha256: string, ms: number): void {
    const old = this.ms.get(sha256)
    this.ms.set(sha256, old == null ? ms : old + this.weight * (ms - old))
  }

  /** The model's mean time, ms (undefined if never measured). */
  get (sha256: string): number | undefined {
    return this.ms.get(sha256)
  }

  toRecord (): Record<string, number> {
    return Object.fromEntries(this.ms)
  }
}

/** Keeps a worker's advert true: slots in use, models loaded, measured speed, paused or not. */
import { SpeedTracker } from '../core/discovery/advert.js'
import type { AdvertService } from './advert-service.js'
import type { WorkEvent, WorkQueue } from '../core/work-queue.js'

export interface WorkerIdentity {
  backend: string
  threads: number
  /** sha256 of the models whose bytes this worker has; read at each publish (its cache grows). */
  models: () => string[]
  /** Largest model it fetches from requesters (0: only the models it has). */
  maxModelBytes: number
  /** sha256 → the backend measured fastest for it. */
  backends?: () => Record<string, string>
}

/**
 * Credits advertised beyond the execution slots: one task waits queued on the worker so it never
 * idles for a network round trip between tasks.
 */
export const PIPELINE_DEPTH = 1

export class WorkerAdvertiser {
  private readonly adverts: AdvertService
  private readonly queue: WorkQueue
  private readonly identity: WorkerIdentity
  private readonly speeds = new SpeedTracker()
  private readonly cached = new Set<string>()

  constructor (adverts: AdvertService, queue: WorkQueue, identity: WorkerIdentity) {
    this.adverts = adverts
    this.queue = queue
    this.identity = identity
    this.publish()
  }

  /** Feed every WorkQueue event here. */
  onWork (e: WorkEvent): void {
    if (e.state === 'done' && e.result != null) {
      this.speeds.add(e.sha256, e.result.timings.inferenceMs)
      this.cached.add(e.sha256)
    }
    this.publish()
  }

  markCached (sha256: string): void {
    this.cached.add(sha256)
    this.publish()
  }

  setPaused (paused: boolean): void {
    this.queue.paused = paused
    this.publish()
  }

  /** Re-advertises after something outside the queue changed (a model cached, a backend chosen). */
  publish (): void {
    this.adverts.publish(() => ({
      worker: true,
      paused: this.queue.paused,
      backend: this.identity.backend,
      threads: this.identity.threads,
      slots: this.queue.slots + PIPELINE_DEPTH,
      freeSlots: Math.max(0, this.queue.slots + PIPELINE_DEPTH - this.queue.running - this.queue.queued),
      models: this.identity.models(),
      cached: [...this.cached],
      speeds: this.speeds.toRecord(),
      maxModelBytes: this.identity.maxModelBytes,
      backends: this.identity.backends?.() ?? {}
    }))
  }
}

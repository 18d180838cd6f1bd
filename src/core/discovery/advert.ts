/** Capability adverts: what a worker can run, how fast, and how much room it has. */
import { Advert as AdvertMessage } from './pb/advert.js'
import { TaskError } from '../errors.js'

export const ADVERT_PROTOCOL = '/p2p-ai-agents/advert/1.0.0'
export const MAX_ADVERT_FRAME = 64 * 1024
const MAX_MODELS = 256

export interface Advert {
  worker: boolean
  paused: boolean
  backend: string
  threads: number
  slots: number
  freeSlots: number
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
}

export const NOT_A_WORKER: Advert = { worker: false, paused: false, backend: '', threads: 0, slots: 0, freeSlots: 0, models: [], cached: [], speeds: {}, maxModelBytes: 0, backends: {} }

/** Lists are cut to what a receiver accepts (the first entries win: put what matters most first). */
export function encodeAdvert (a: Advert): Uint8Array {
  return AdvertMessage.encode({
    ...a,
    models: a.models.slice(0, MAX_MODELS),
    cached: a.cached.slice(0, MAX_MODELS),
    speeds: Object.entries(a.speeds).slice(0, MAX_MODELS).map(([sha256, ms]) => ({ sha256, ms })),
    maxModelBytes: BigInt(a.maxModelBytes),
    backends: Object.entries(a.backends).slice(0, MAX_MODELS).map(([sha256, backend]) => ({ sha256, backend }))
  })
}

export function decodeAdvert (bytes: Uint8Array): Advert {
  let m: AdvertMessage
  try {
    m = AdvertMessage.decode(bytes, { limits: { models: MAX_MODELS, cached: MAX_MODELS, speeds: MAX_MODELS, backends: MAX_MODELS } })
  } catch (err) {
    throw new TaskError('bad-request', `malformed advert: ${(err as Error).message}`)
  }
  return {
    ...m,
    speeds: Object.fromEntries(m.speeds.map(s => [s.sha256, s.ms])),
    maxModelBytes: Number(m.maxModelBytes),
    backends: Object.fromEntries(m.backends.map(b => [b.sha256, b.backend]))
  }
}

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

  toRecord (): Record<string, number> {
    return Object.fromEntries(this.ms)
  }
}

/**
 * Main-thread side of an inference worker: a backend candidate that forwards tasks to its Web Worker.
 *
 * A task past its deadline cannot be stopped inside onnxruntime, so the Web Worker running it is
 * terminated and a fresh one (same backend) starts for the next task: a stuck model never keeps
 * the tab's slot. Other calls still on the terminated worker fail with `inference-failed`.
 */
import * as Comlink from 'comlink'
import { TaskError, toTaskError } from '../core/errors.js'
import type { BackendCandidate } from '../core/backend-picker.js'
import type { ModelRef } from '../core/task-types.js'
import type { WireTensor } from '../core/tensor.js'
import { TAB_SESSION_BUDGET } from './ort-runner.js'
import type { ModelFetcher } from './ort-runner.js'
import type { InferenceWorkerApi, WorkerError, WorkerInfo, WorkerInit } from './inference-worker.js'

export interface InferenceWorker extends BackendCandidate {
  info: WorkerInfo
  /** Loads (and, given sample inputs, warms up) a model's session; resolves false if that failed (the first task will say why). */
  preload(ref: ModelRef, warmup?: WireTensor[]): Promise<boolean>
  release(sha256: string): Promise<void>
  /** How many models the worker holds sessions of now, as it reports (its session budget drops some by itself). */
  holds(): Promise<number>
  terminate(): void
}

/** One Web Worker and the calls waiting on it (a terminated worker never answers them). */
interface Running {
  worker: Worker
  remote: Comlink.Remote<InferenceWorkerApi>
  info: WorkerInfo
  pending: Set<(err: TaskError) => void>
  /** Models whose bytes this worker was handed (it has, or is creating, their sessions). */
  handed: HandedModels
}

/**
 * The models the page believes a Web Worker holds, so their bytes are not sent again. It is a
 * belief: the worker drops sessions by itself (its session budget), so the set is bounded, least
 * recently used forgotten first, and corrected from what the worker reports. Forgetting a model
 * the worker still holds only costs sending its bytes once more (the worker ignores them then);
 * believing in one it dropped is answered with `needsModel`.
 */
export class HandedModels {
  private readonly shas = new Set<string>()
  constructor (private readonly max = 2 * TAB_SESSION_BUDGET.maxSessions) {}

  get size (): number {
    return this.shas.size
  }

  has (sha256: string): boolean {
    return this.shas.has(sha256)
  }

  /** Marks a model handed (or used again): most recent, past the bound the least recent is forgotten. */
  add (sha256: string): void {
    this.shas.delete(sha256)
    this.shas.add(sha256)
    for (const old of this.shas) {
      if (this.shas.size <= this.max) break
      this.shas.delete(old)
    }
  }

  delete (sha256: string): void {
    this.shas.delete(sha256)
  }

  /** Forgets every model the worker does not report holding. */
  keep (held: readonly string[]): void {
    const h = new Set(held)
    for (const sha of this.shas) if (!h.has(sha)) this.shas.delete(sha)
  }
}

/** The performance mark a page makes each time it hands a model's bytes to one of its Web Workers (tests count them). */
export const MODEL_HANDOFF_MARK = 'p2p-model-handoff'
/** The performance mark a page makes when a deadline replaces a Web Worker (the fresh one is handed its models again). */
export const WORKER_REPLACED_MARK = 'p2p-inference-worker-replaced'

/**
 * Starts a worker for one backend. Its models come from `fetchModel` on this (the page's) side,
 * which hands over bytes already verified: they go to the worker with the first call that needs
 * the model, once, and again only if the worker says it dropped the session (`needsModel`).
 */
export async function startInferenceWorker (init: WorkerInit, fetchModel: ModelFetcher): Promise<InferenceWorker> {
  const name = `p2p-inference-${init.backend}-${init.threads}`
  const spawn = async (): Promise<Running> => {
    const worker = new Worker(new URL('./inference-worker.ts', import.meta.url), { type: 'module', name })
    const remote = Comlink.wrap<InferenceWorkerApi>(worker)
    try {
      return { worker, remote, info: await remote.init(init), pending: new Set(), handed: new HandedModels() }
    } catch (err) {
      worker.terminate()
      throw err
    }
  }
  const kill = (r: Running, why: TaskError): void => {
    r.worker.terminate()
    for (const fail of r.pending) fail(why)
    r.pending.clear()
  }

  const first = await spawn()
  let current: Promise<Running> = Promise.resolve(first)
  let stopped = false

  /** The worker to use now: a fresh one after a deadline killed the last (retried if it failed to start). */
  const live = async (): Promise<Running> => {
    if (stopped) throw new TaskError('inference-failed', 'the inference worker has stopped')
    try {
      return await current
    } catch {
      current = spawn()
      return await current
    }
  }
  const respawn = (): void => {
    current = spawn()
    current.catch(() => {}) // the next call retries and reports it
  }

  /** Runs `call` on worker `r`; settles early if that worker is terminated meanwhile. */
  const callOn = async <T>(r: Running, call: (r: Running) => Promise<T>): Promise<T> => await new Promise<T>((resolve, reject) => {
    r.pending.add(reject)
    call(r).then(resolve, reject).finally(() => { r.pending.delete(reject) })
  })

  /**
   * Runs `call` on `r` with the bytes of `ref` when `r` was not handed them yet; a worker that
   * dropped the session since (its session budget) answers `needsModel` and gets them once more.
   */
  const withModel = async <T>(r: Running, ref: ModelRef, from: string | undefined, call: (w: Running, model?: Uint8Array) => Promise<T>): Promise<T> => {
    const attempt = async (): Promise<T> => {
      const known = r.handed.has(ref.sha256)
      r.handed.add(ref.sha256)
      if (known) return await callOn(r, async (w) => await call(w))
      let model: Uint8Array
      try {
        model = await fetchModel(ref, from)
      } catch (err) {
        r.handed.delete(ref.sha256)
        throw toTaskError(err, 'model-unavailable')
      }
      performance.mark(MODEL_HANDOFF_MARK, { detail: { sha256: ref.sha256, worker: name } })
      // Copied, not transferred: the page's store may hand the same buffer to another worker. A task
      // failing on its own inputs leaves the model handed: a worker without its session says `needsModel`.
      return await callOn(r, async (w) => await call(w, model))
    }
    try {
      return await attempt()
    } catch (err) {
      if ((err as WorkerError | undefined)?.needsModel !== true) throw err
      r.handed.delete(ref.sha256)
      return await attempt()
    }
  }

  /**
   * Runs `call` on the live worker under `signal`: once it aborts (every task's deadline passed)
   * the worker is terminated and a fresh one starts. What the worker throws becomes a TaskError.
   */
  const underDeadline = async <T>(signal: AbortSignal | undefined, call: (r: Running) => Promise<T>): Promise<T> => {
    signal?.throwIfAborted()
    const r = await live()
    signal?.throwIfAborted()
    const onAbort = (): void => {
      kill(r, toTaskError(signal?.reason, 'timeout'))
      if (stopped) return
      respawn()
      performance.mark(WORKER_REPLACED_MARK, { detail: { worker: name } })
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await call(r)
    } catch (err) {
      if (err instanceof TaskError) throw err
      // The worker throws { code, message } (see inference-worker.ts); anything else is a crash.
      const e = err as { code?: TaskError['code'], message?: string }
      throw new TaskError(e.code ?? 'inference-failed', e.message ?? String(err))
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  return {
    name: first.info.backend,
    info: first.info,
    execute: async (request, requester, signal) => await underDeadline(signal, async (r) => await withModel(r, request.model, requester, async (w, model) => {
      // Compact copies: received tensors may be views into a larger network buffer shared with other frames.
      const inputs = request.inputs.map(t => ({ ...t, data: t.data.slice() }))
      return await w.remote.execute(Comlink.transfer({ ...request, inputs }, inputs.map(t => t.data.buffer)), requester, model)
    })),
    /** A batch (see WorkQueue) in one call to the Web Worker; its deadline (every task's passed) ends the worker as a task's does. */
    executeMany: async (requests, requester, signal) => {
      const outcomes = await underDeadline(signal, async (r) => await withModel(r, requests[0].model, requester, async (w, model) => {
        // Compact copies, as for one task.
        const sent = requests.map(q => ({ ...q, inputs: q.inputs.map(t => ({ ...t, data: t.data.slice() })) }))
        return await w.remote.executeMany(Comlink.transfer(sent, sent.flatMap(q => q.inputs.map(t => t.data.buffer))), requester, model)
      }))
      return outcomes.map(o => 'error' in o ? new TaskError(o.error.code, o.error.message) : o.result)
    },
    preload: async (ref, warmup) => await live().then(async r => { await withModel(r, ref, undefined, async (w, model) => { await w.remote.preload(ref, model, warmup) }) }).then(() => true, () => false),
    release: async (sha256) => {
      const r = await live()
      r.handed.delete(sha256)
      await callOn(r, async (w) => { await w.remote.release(sha256) })
    },
    holds: async () => {
      const r = await live()
      const held = await callOn(r, async (w) => await w.remote.cachedModels())
      r.handed.keep(held)
      return held.length
    },
    terminate: () => {
      stopped = true
      void current.then(r => { kill(r, new TaskError('inference-failed', 'the inference worker has stopped')) }, () => {})
    }
  }
}

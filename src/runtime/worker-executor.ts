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
import type { ModelRef, TaskRequest } from '../core/task-types.js'
import type { ExecutionResult } from '../core/work-queue.js'
import type { WireTensor } from '../core/tensor.js'
import { TAB_SESSION_BUDGET } from './ort-runner.js'
import { landed } from './batch-outcome.js'
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
  /** Why it was terminated: calls made on it afterwards (e.g. ones that waited for a hand-off) fail at once. */
  killed?: TaskError
}

/**
 * The models the page believes a Web Worker holds, so their bytes are not sent again. It is a
 * belief: the worker drops sessions by itself (its session budget), so the set is bounded, least
 * recently used forgotten first, and corrected from what the worker reports. Forgetting a model
 * the worker still holds only costs sending its bytes once more (the worker ignores them then);
 * believing in one it dropped is answered with `needsModel`.
 *
 * A report only speaks for the calls posted before it was asked for: each model carries the tick
 * at which its bytes were last handed, and a report asked for at tick T forgets only models handed
 * at or before T and not being handed now. (A report answered while a call bringing a model's bytes
 * was queued behind it would otherwise forget that model, and its bytes would be sent again.)
 */
export class HandedModels {
  /** sha256 → tick at which its bytes were last handed; least recently used first. */
  private readonly shas = new Map<string, number>()
  /** Handoffs whose bytes are still being fetched, by sha256: other calls for the model wait for them. */
  private readonly sending = new Map<string, Promise<void>>()
  private tick = 0
  constructor (private readonly max = 2 * TAB_SESSION_BUDGET.maxSessions) {}

  get size (): number {
    return this.shas.size
  }

  has (sha256: string): boolean {
    return this.shas.has(sha256)
  }

  /** The tick now: pass it to `keep`/`dropped` for a report asked for from here. */
  now (): number {
    return this.tick
  }

  /** Marks a model used again: most recent (its hand-off tick unchanged). */
  use (sha256: string): void {
    const at = this.shas.get(sha256)
    if (at == null) return
    this.shas.delete(sha256)
    this.shas.set(sha256, at)
  }

  /** Marks a model's bytes handed now: most recent; past the bound the least recent (not being handed) is forgotten. */
  add (sha256: string): void {
    this.shas.delete(sha256)
    this.shas.set(sha256, ++this.tick)
    for (const old of this.shas.keys()) {
      if (this.shas.size <= this.max) break
      if (old !== sha256 && !this.sending.has(old)) this.shas.delete(old)
    }
  }

  /**
   * Starts handing a model's bytes: until the returned function is called (with true right before
   * the bytes are posted, with false if they could not be had), `pending` keeps other calls for it
   * waiting, so none reaches the worker ahead of the bytes.
   */
  handing (sha256: string): (posting: boolean) => void {
    this.add(sha256)
    let done!: () => void
    const pending = new Promise<void>(resolve => { done = resolve })
    this.sending.set(sha256, pending)
    return (posting) => {
      if (this.sending.get(sha256) === pending) this.sending.delete(sha256)
      if (posting) this.add(sha256)
      else this.shas.delete(sha256)
      done()
    }
  }

  /** The hand-off of `sha256` under way, if any: wait for it (and look again) before deciding whether to send the bytes. */
  pending (sha256: string): Promise<void> | undefined {
    return this.sending.get(sha256)
  }

  delete (sha256: string): void {
    this.shas.delete(sha256)
  }

  /** The worker said, for a call posted at tick `asked`, that it has no session of `sha256`. */
  dropped (sha256: string, asked: number): void {
    if (this.stale(sha256, asked)) this.shas.delete(sha256)
  }

  /** Forgets every model the worker does not report holding, in a report asked for at tick `asked`. */
  keep (held: readonly string[], asked: number): void {
    const h = new Set(held)
    for (const sha of [...this.shas.keys()]) if (!h.has(sha) && this.stale(sha, asked)) this.shas.delete(sha)
  }

  /** Whether a report asked for at tick `asked` speaks for the model: its bytes were handed before, and none are on their way. */
  private stale (sha256: string, asked: number): boolean {
    const at = this.shas.get(sha256)
    return at != null && at <= asked && !this.sending.has(sha256)
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
    r.killed ??= why
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
    if (r.killed != null) {
      reject(r.killed)
      return
    }
    r.pending.add(reject)
    call(r).then(resolve, reject).finally(() => { r.pending.delete(reject) })
  })

  /**
   * Runs `call` on `r` with the bytes of `ref` when `r` was not handed them yet; a worker that
   * dropped the session since (its session budget) answers `needsModel` and gets them once more.
   */
  const withModel = async <T>(r: Running, ref: ModelRef, from: string | undefined, call: (w: Running, model?: Uint8Array) => Promise<T>): Promise<T> => {
    const attempt = async (again: boolean): Promise<T> => {
      // Looked at again after each wait: the decision below and the posting run in one go.
      for (let p = r.handed.pending(ref.sha256); p != null; p = r.handed.pending(ref.sha256)) await p
      let model: Uint8Array | undefined
      if (r.handed.has(ref.sha256)) {
        r.handed.use(ref.sha256)
      } else {
        const handoff = r.handed.handing(ref.sha256)
        try {
          model = await fetchModel(ref, from)
        } catch (err) {
          handoff(false)
          throw toTaskError(err, 'model-unavailable')
        }
        handoff(true)
        performance.mark(MODEL_HANDOFF_MARK, { detail: { sha256: ref.sha256, worker: name } })
      }
      const asked = r.handed.now()
      try {
        // Copied, not transferred: the page's store may hand the same buffer to another worker. A task
        // failing on its own inputs leaves the model handed: a worker without its session says `needsModel`.
        return await callOn(r, async (w) => await call(w, model))
      } catch (err) {
        if (again || (err as WorkerError | undefined)?.needsModel !== true) throw err
        r.handed.dropped(ref.sha256, asked)
        return await attempt(true)
      }
    }
    return await attempt(false)
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

  const execute = async (request: TaskRequest, requester: string, signal?: AbortSignal): Promise<ExecutionResult> => await underDeadline(signal, async (r) => await withModel(r, request.model, requester, async (w, model) => {
    // Compact copies: received tensors may be views into a larger network buffer shared with other frames.
    const inputs = request.inputs.map(t => ({ ...t, data: t.data.slice() }))
    return await w.remote.execute(Comlink.transfer({ ...request, inputs }, inputs.map(t => t.data.buffer)), requester, model)
  }))

  return {
    name: first.info.backend,
    info: first.info,
    execute,
    /** A batch (see WorkQueue) in one call to the Web Worker; its deadline (every task's passed) ends the worker as a task's does. */
    executeMany: async (requests, requester, signal) => {
      const outcomes = await underDeadline(signal, async (r) => await withModel(r, requests[0].model, requester, async (w, model) => {
        // Compact copies, as for one task.
        const sent = requests.map(q => ({ ...q, inputs: q.inputs.map(t => ({ ...t, data: t.data.slice() })) }))
        return await w.remote.executeMany(Comlink.transfer(sent, sent.flatMap(q => q.inputs.map(t => t.data.buffer))), requester, model)
      }))
      return await landed(outcomes, requests, async (request) => await execute(request, requester, signal))
    },
    preload: async (ref, warmup) => await live().then(async r => { await withModel(r, ref, undefined, async (w, model) => { await w.remote.preload(ref, model, warmup) }) }).then(() => true, () => false),
    release: async (sha256) => {
      const r = await live()
      r.handed.delete(sha256)
      await callOn(r, async (w) => { await w.remote.release(sha256) })
    },
    holds: async () => {
      const r = await live()
      const asked = r.handed.now()
      const held = await callOn(r, async (w) => await w.remote.cachedModels())
      r.handed.keep(held, asked)
      return held.length
    },
    terminate: () => {
      stopped = true
      void current.then(r => { kill(r, new TaskError('inference-failed', 'the inference worker has stopped')) }, () => {})
    }
  }
}

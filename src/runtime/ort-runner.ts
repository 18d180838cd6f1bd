/**
 * Runs task requests on onnxruntime (web or node: both share onnxruntime-common's API).
 * Sessions are cached by model sha256, and model bytes are hashed before a session is created,
 * so a peer never loads bytes other than the ones the requester named.
 */
import { TaskError } from '../core/errors.js'
import { sha256Hex } from '../core/hash.js'
import { toTypedArray } from '../core/tensor.js'
import type { InferenceSession, Tensor } from 'onnxruntime-common'
import type { ModelRef, TaskRequest } from '../core/task-types.js'
import type { ExecutionResult } from '../core/work-queue.js'
import type { DTypeName, WireTensor } from '../core/tensor.js'

export interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> }
  Tensor: new (type: DTypeName, data: ArrayBufferView, dims: readonly number[]) => Tensor
}

/** Gets a model's bytes by reference (`from`: the requester, which has it); throws if this peer cannot get it. */
export type ModelFetcher = (ref: ModelRef, from?: string) => Promise<Uint8Array>

export interface OrtRunnerOptions {
  backend: string
  threads: number
  sessionOptions?: InferenceSession.SessionOptions
}

/** Fetches a model and checks it hashes to what the requester asked for. */
export async function fetchVerifiedModel (ref: ModelRef, fetchModel: ModelFetcher, from?: string): Promise<Uint8Array> {
  let bytes: Uint8Array
  try {
    bytes = await fetchModel(ref, from)
  } catch (err) {
    if (err instanceof TaskError) throw err
    throw new TaskError('model-unavailable', `model ${ref.name || ref.sha256} is not available here: ${(err as Error).message}`)
  }
  const actual = await sha256Hex(bytes)
  if (actual !== ref.sha256) {
    throw new TaskError('model-hash-mismatch', `model bytes hash to ${actual}, but the task asked for ${ref.sha256}`)
  }
  return bytes
}

export class OrtRunner {
  readonly backend: string
  readonly threads: number
  private readonly ort: OrtModule
  private readonly fetchModel: ModelFetcher
  private readonly sessionOptions: InferenceSession.SessionOptions
  private readonly sessions = new Map<string, Promise<InferenceSession>>()

  constructor (ort: OrtModule, fetchModel: ModelFetcher, options: OrtRunnerOptions) {
    this.ort = ort
    this.fetchModel = fetchModel
    this.backend = options.backend
    this.threads = options.threads
    this.sessionOptions = options.sessionOptions ?? {}
  }

  /** sha256 of every model with a session ready (or being created). */
  get cachedModels (): string[] {
    return [...this.sessions.keys()]
  }

  /**
   * Creates a model's session ahead of its first task and, given sample inputs, runs it once:
   * onnxruntime's first run of a session is several times slower than the next ones.
   */
  async preload (ref: ModelRef, warmup?: WireTensor[]): Promise<void> {
    await this.session(ref, warmup)
  }

  async execute (request: TaskRequest, requester?: string): Promise<ExecutionResult> {
    const loadStart = performance.now()
    const session = await this.session(request.model, undefined, requester)
    const loadMs = performance.now() - loadStart

    const feeds: Record<string, Tensor> = {}
    for (const input of request.inputs) {
      if (!session.inputNames.includes(input.name)) {
        throw new TaskError('bad-request', `model has no input "${input.name}" (inputs: ${session.inputNames.join(', ')})`)
      }
      feeds[input.name] = new this.ort.Tensor(input.dtype, toTypedArray(input), input.dims)
    }
    const missing = session.inputNames.filter(n => feeds[n] == null)
    if (missing.length > 0) throw new TaskError('bad-request', `missing input(s): ${missing.join(', ')}`)
    const unknown = request.outputNames.filter(n => !session.outputNames.includes(n))
    if (unknown.length > 0) throw new TaskError('bad-request', `model has no output(s) ${unknown.join(', ')}`)

    const inferStart = performance.now()
    let results: InferenceSession.OnnxValueMapType
    try {
      results = request.outputNames.length > 0
        ? await session.run(feeds, request.outputNames)
        : await session.run(feeds)
    } catch (err) {
      throw new TaskError('inference-failed', `onnxruntime: ${(err as Error).message}`)
    }
    const inferenceMs = performance.now() - inferStart

    const outputs: WireTensor[] = Object.entries(results).map(([name, value]) => toWire(name, value as Tensor))
    return { outputs, loadMs, inferenceMs, backend: this.backend, threads: this.threads }
  }

  /** Frees a model's session (e.g. on a backend that lost the per-model measurement). */
  async release (sha256: string): Promise<void> {
    const session = this.sessions.get(sha256)
    this.sessions.delete(sha256)
    await (await session?.catch(() => undefined))?.release()
  }

  /** The cached session for a model; a warm-up run happens before it is handed out (runs must not overlap on WebGPU). */
  private async session (ref: ModelRef, warmup?: WireTensor[], from?: string): Promise<InferenceSession> {
    let session = this.sessions.get(ref.sha256)
    if (session == null) {
      session = (async () => {
        const bytes = await fetchVerifiedModel(ref, this.fetchModel, from)
        let created: InferenceSession
        try {
          created = await this.ort.InferenceSession.create(bytes, this.sessionOptions)
        } catch (err) {
          throw new TaskError('inference-failed', `onnxruntime could not load the model: ${(err as Error).message}`)
        }
        if (warmup != null) {
          await created.run(Object.fromEntries(warmup.map(t => [t.name, new this.ort.Tensor(t.dtype, toTypedArray(t), t.dims)])))
            .catch(() => {}) // a failed warm-up only means the first task is slower
        }
        return created
      })()
      this.sessions.set(ref.sha256, session)
      // A failed load is not cached: the next task may succeed (e.g. the model became available).
      session.catch(() => { this.sessions.delete(ref.sha256) })
    }
    return await session
  }
}

function toWire (name: string, t: Tensor): WireTensor {
  if (t.type === 'string' || !ArrayBuffer.isView(t.data)) {
    throw new TaskError('inference-failed', `output "${name}" has type ${t.type}, which the protocol cannot carry`)
  }
  const data = t.data as ArrayBufferView
  return {
    name,
    dtype: t.type as DTypeName,
    dims: [...t.dims],
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  }
}

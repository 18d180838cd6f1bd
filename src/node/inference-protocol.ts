/**
 * Messages between an InferencePool (the worker process) and its inference hosts (child
 * processes running onnxruntime-node). They travel over Node's IPC channel with the 'advanced'
 * serialization (V8 structured clone), so tensors and model bytes cross as bytes, never JSON.
 */
import type { TaskErrorCode } from '../core/errors.js'
import type { ModelRef, TaskRequest } from '../core/task-types.js'
import type { ExecutionResult } from '../core/work-queue.js'
import type { CrossingOutcome } from '../runtime/batch-outcome.js'

/** What a host is started with (its one command-line argument, as JSON). */
export interface HostConfig {
  /** One onnxruntime runner per thread count. */
  threads: number[]
  /** Model bytes each runner keeps sessions for (LRU beyond). */
  sessionBudgetBytes?: number
  /**
   * One task's outputs sent back at most (anything bigger could never travel in a frame), and what
   * a batch's outputs may reach before the tasks left are answered `again` (OrtRunner's
   * maxBatchOutputBytes: a batch's reply passes it by its last run's at most). Default: the frame limit.
   */
  maxOutputBytes?: number
}

export interface WireError { code: TaskErrorCode, message: string }

/**
 * One task's outcome as it crosses the IPC channel (a TaskError would arrive as a plain Error).
 * `again`: not run, because the batch's outputs reached what one reply carries (one frame's worth,
 * as one task's reply does; OrtRunner's NotRunInBatch), so the parent runs it on its own.
 */
export type WireOutcome = CrossingOutcome

export type ToHost =
  | { type: 'execute', id: number, threads: number, request: TaskRequest, requester: string }
  /** Several tasks of one requester in one message (OrtRunner.executeMany); answered by one 'results'. */
  | { type: 'executeMany', id: number, threads: number, requests: TaskRequest[], requester: string }
  | { type: 'release', threads: number, sha256: string }
  | { type: 'model', id: number, bytes: Uint8Array }
  | { type: 'model', id: number, error: WireError }

export type FromHost =
  | { type: 'ready' }
  /** `sessions`: the models the task's runner holds sessions for afterwards. */
  | { type: 'result', id: number, result: ExecutionResult, sessions: string[] }
  | { type: 'error', id: number, error: WireError, sessions: string[] }
  /** One outcome per task of an 'executeMany', in order. */
  | { type: 'results', id: number, outcomes: WireOutcome[], sessions: string[] }
  /** The host needs a model's bytes (once per session it creates). */
  | { type: 'model', id: number, ref: ModelRef, from?: string }

/** How results and adverts name an onnxruntime-node backend. */
export function nodeBackendName (threads: number): string {
  return `onnxruntime-node cpu ${threads} thread${threads > 1 ? 's' : ''}`
}

/** A tensor whose bytes are exactly its buffer: structured clone copies a view's whole buffer (e.g. a whole network frame). */
export function compactTensor<T extends { data: Uint8Array }> (t: T): T {
  const d = t.data
  return d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? t : { ...t, data: d.slice() }
}

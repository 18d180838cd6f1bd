/** Typed errors with codes a user can read; the first six travel on the wire. */

export type TaskErrorCode =
  | 'bad-request' // the request (or frame) was malformed or broke a limit
  | 'model-unavailable' // the worker cannot get the model
  | 'busy' // the worker's queue is full; try another peer
  | 'inference-failed' // onnxruntime rejected the inputs or failed
  | 'timeout' // the task ran past its deadline
  | 'model-hash-mismatch' // the model bytes do not hash to the requested sha256
  | 'peer-gone' // the connection to the worker closed or stopped answering
  | 'no-peer' // no connected worker can take the task

export class TaskError extends Error {
  readonly code: TaskErrorCode
  /** The peer id that raised it, set by whoever sent the task there (for describeTaskError). */
  peer?: string

  constructor (code: TaskErrorCode, message: string) {
    super(message)
    this.name = 'TaskError'
    this.code = code
  }
}

/** Normalises anything thrown into a TaskError, defaulting to `fallback`. */
export function toTaskError (err: unknown, fallback: TaskErrorCode = 'inference-failed'): TaskError {
  if (err instanceof TaskError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new TaskError(fallback, message)
}

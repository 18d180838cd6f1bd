/**
 * The errors the library (requester.ts), the HTTP gateway and the MCP server give, one code each,
 * so a script, an HTTP client and an agent see the same words for the same mistake.
 */

export type RequesterErrorCode =
  /** A malformed request: an option out of range, malformed JSON, a missing field. */
  | 'bad-request'
  /** The inputs do not fit the model: names, shapes, dtypes, values. */
  | 'bad-input'
  /** Not a model this network can run (unreadable, external data, unsupported input types). */
  | 'bad-model'
  /** An image that cannot be read (OCR takes PNG). */
  | 'bad-image'
  /** No built-in model, uploaded model or file by that name, path or sha256. */
  | 'unknown-model'
  | 'unknown-job'
  /** A body or an input beyond the stated limits. */
  | 'too-large'
  /** A limit on concurrent work (running jobs, calls, streams) is reached: try again when one ends. */
  | 'busy'
  /** The gateway's bearer token is missing or wrong. */
  | 'unauthenticated'
  /** Not enough workers joined within the wait. */
  | 'no-workers'
  /** No relay answered. */
  | 'relay-unreachable'
  /** A task (or a whole job) could not be run or verified. */
  | 'task-failed'
  /**
   * The job could not progress for as long as the caller would wait (giveUpAfterMs): the message
   * is the reason ("needs 3 different workers, 1 available"). A stored job stays resumable.
   */
  | 'stalled'
  /** Stopped through an AbortSignal, a cancel, or close(). */
  | 'cancelled'
  /** A job that is finished cannot be changed (cancelled after it ended, say). */
  | 'conflict'

export class RequesterError extends Error {
  readonly code: RequesterErrorCode

  constructor (code: RequesterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'RequesterError'
    this.code = code
  }
}

/** `err` as a RequesterError: the same one, or a task protocol error's words under `fallback`. */
export function toRequesterError (err: unknown, fallback: RequesterErrorCode = 'task-failed'): RequesterError {
  if (err instanceof RequesterError) return err
  const message = err instanceof Error ? err.message : String(err)
  if ((err as { code?: string })?.code === 'bad-request') return new RequesterError('bad-input', message, { cause: err })
  if ((err as Error)?.name === 'AbortError') return new RequesterError('cancelled', 'cancelled', { cause: err })
  return new RequesterError(fallback, message, { cause: err })
}

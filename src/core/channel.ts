/** The one thing core needs from a transport: ordered delivery of encoded frames. */
export interface FrameChannel {
  /** Sends one encoded frame; a returned promise resolves once the transport can take more. */
  send(bytes: Uint8Array): void | Promise<void>
  /** Closes the channel; with `err` it is aborted. */
  close(err?: Error): void
}

/** Task id used on a response that reports a stream-level error (a bad frame) rather than one task's. */
export const STREAM_ERROR_ID = '*'

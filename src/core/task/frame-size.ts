/** The size check both sides of the task protocol make on a frame they are about to send. */
import { TaskError } from '../errors.js'

/** Length of an encoded frame's body, read back from its varint length prefix. */
export function frameBodyBytes (frame: Uint8Array): number {
  let i = 0
  while (i < frame.byteLength && (frame[i] & 0x80) !== 0) i++
  return frame.byteLength - (i + 1)
}

/**
 * Throws when `bytes` would break the receiver's frame limit: such a frame is refused from its
 * length prefix and costs the whole stream, every other task on it included.
 */
export function checkFrameSize (bytes: number, maxFrameBytes: number, what: string, code: 'bad-request' | 'inference-failed'): void {
  if (bytes > maxFrameBytes) throw new TaskError(code, `${what} ${bytes} bytes, over the ${maxFrameBytes}-byte frame limit`)
}

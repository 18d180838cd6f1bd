/**
 * Holder side of a model transfer: reads one request, answers with the model (in chunks) or an
 * error. A fetcher that reads too slowly (limits.ts: total deadline, minimum rate) is cut off, so
 * it cannot hold one of the holder's transfer streams and the model bytes it pins.
 */
import { ModelReply } from './pb/model.js'
import { lengthPrefixed, LengthPrefixedReader } from '../framing.js'
import { decodeModelRequest, MODEL_CHUNK_BYTES } from './codec.js'
import type { FrameChannel } from '../channel.js'
import type { CheckedModelRequest, ModelSource } from './codec.js'
import type { TaskErrorCode } from '../errors.js'
import { transferDeadlineMs, transferLimits } from './limits.js'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import type { TransferLimits } from './limits.js'

export interface TransferServerOptions {
  limits?: TransferLimits
  clock?: Clock
}

/** The fetcher did not take the model within the transfer's deadline or minimum rate. */
export class TransferTooSlowError extends Error {
  override readonly name = 'TransferTooSlowError'
}

/** Serves one transfer stream: reads a request, answers with the model or an error, closes. */
export class ModelTransferServer {
  private readonly channel: FrameChannel
  private readonly source: ModelSource
  private readonly reader = new LengthPrefixedReader(1024)
  private done = false
  private readonly limits: Required<TransferLimits>
  private readonly clock: Clock

  constructor (channel: FrameChannel, source: ModelSource, options: TransferServerOptions = {}) {
    this.channel = channel
    this.source = source
    this.limits = transferLimits(options.limits)
    this.clock = options.clock ?? systemClock
  }

  receive (chunk: Uint8Array): void {
    if (this.done) return
    let bodies: Uint8Array[]
    try {
      bodies = this.reader.push(chunk)
    } catch (err) {
      void this.fail('bad-request', (err as Error).message)
      return
    }
    if (bodies.length === 0) return
    this.done = true
    let request: CheckedModelRequest
    try {
      request = decodeModelRequest(bodies[0])
    } catch (err) {
      void this.fail('bad-request', (err as Error).message)
      return
    }
    void this.serve(request)
  }

  closed (): void {
    this.done = true
  }

  private async serve (request: CheckedModelRequest): Promise<void> {
    const bytes = await this.source(request.sha256).catch(() => undefined)
    if (bytes == null) {
      await this.fail('model-unavailable', `this peer does not have model ${request.sha256}`)
      return
    }
    const offset = request.offset
    if (offset > bytes.byteLength) {
      await this.fail('bad-request', `offset ${offset} is past the model's ${bytes.byteLength} bytes`)
      return
    }
    const size = bytes.byteLength - offset
    const deadlineMs = transferDeadlineMs(size, this.limits)
    let sent = 0
    let windowStart = 0
    let tooSlow: TransferTooSlowError | undefined
    const cutOff = (err: TransferTooSlowError): void => {
      tooSlow = err
      this.channel.close(err)
    }
    const deadline = this.clock.setTimeout(() => { cutOff(new TransferTooSlowError(`the fetcher took more than ${deadlineMs / 1000} s (${sent} of ${size} bytes)`)) }, deadlineMs)
    const checkRate = (): void => {
      const need = Math.min(this.limits.minBytesPerWindow, size - windowStart)
      if (sent - windowStart < need) {
        cutOff(new TransferTooSlowError(`the fetcher took ${sent - windowStart} bytes in ${this.limits.windowMs / 1000} s, at least ${need} needed`))
        return
      }
      windowStart = sent
      window = this.clock.setTimeout(checkRate, this.limits.windowMs)
    }
    let window = this.clock.setTimeout(checkRate, this.limits.windowMs)
    try {
      await this.channel.send(reply({ header: { size: BigInt(bytes.byteLength) } }))
      for (let at = offset; at < bytes.byteLength && tooSlow == null; at += MODEL_CHUNK_BYTES) {
        const chunk = bytes.subarray(at, at + MODEL_CHUNK_BYTES) as Uint8Array<ArrayBuffer>
        await this.channel.send(reply({ chunk }))
        sent += chunk.byteLength
      }
      if (tooSlow == null) this.channel.close()
    } catch (err) {
      if (tooSlow == null) this.channel.close(err as Error)
    } finally {
      this.clock.clearTimeout(deadline)
      this.clock.clearTimeout(window)
    }
  }

  private async fail (code: TaskErrorCode, message: string): Promise<void> {
    this.done = true
    try {
      await this.channel.send(reply({ error: { code, message } }))
      this.channel.close()
    } catch (err) {
      this.channel.close(err as Error)
    }
  }
}

function reply (r: ModelReply): Uint8Array {
  return lengthPrefixed(ModelReply.encode(r))
}

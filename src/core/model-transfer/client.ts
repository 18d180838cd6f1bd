/**
 * Fetching side of a model transfer. It checks the announced size against the ModelRef and its cap
 * before allocating, rejects any byte beyond it, accepts the bytes only if they hash to the
 * sha256 it asked for, and gives up (model-unavailable) on a transfer past its total deadline or
 * slower than the minimum rate (see limits.ts).
 */
import { ModelReply, ModelRequest } from './pb/model.js'
import { lengthPrefixed, LengthPrefixedReader } from '../framing.js'
import { TaskError, toTaskError } from '../errors.js'
import { sha256Hex } from '../hash.js'
import { decodeModelReply, DEFAULT_MAX_MODEL_BYTES, MODEL_CHUNK_BYTES } from './codec.js'
import { transferDeadlineMs, transferLimits } from './limits.js'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import type { TransferLimits } from './limits.js'
import type { ModelRef } from '../task-types.js'
import type { TaskErrorCode } from '../errors.js'
import type { TransferProgress } from './codec.js'

const MAX_FRAME_BYTES = MODEL_CHUNK_BYTES + 1024
const ERROR_CODES = new Set<TaskErrorCode>(['model-unavailable', 'bad-request', 'busy'])

export interface ModelDownloadOptions {
  /** Largest model accepted; a bigger one is refused before any of it is buffered. */
  maxBytes?: number
  onProgress?: (p: TransferProgress) => void
  /** Total deadline and minimum rate (limits.ts has the defaults). */
  limits?: TransferLimits
  clock?: Clock
}

/**
 * Fetching side of one transfer. Send `request` on the channel, feed it what arrives; `bytes`
 * resolves with verified model bytes or rejects with a TaskError saying why.
 */
export class ModelDownload {
  readonly bytes: Promise<Uint8Array>
  readonly request: Uint8Array
  private readonly ref: ModelRef
  private readonly maxBytes: number
  private readonly onProgress?: (p: TransferProgress) => void
  private readonly reader = new LengthPrefixedReader(MAX_FRAME_BYTES)
  private buffer?: Uint8Array
  private received = 0
  private settled = false
  private resolve!: (b: Uint8Array) => void
  private reject!: (e: TaskError) => void
  private readonly clock: Clock
  private deadlineTimer?: unknown
  private windowTimer?: unknown
  /** Bytes received when the current rate window began. */
  private windowStart = 0

  /** Throws a model-unavailable TaskError at once for a model over the size cap: nothing is requested. */
  constructor (ref: ModelRef, options: ModelDownloadOptions = {}) {
    this.ref = ref
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES
    if (ref.size > this.maxBytes) throw new TaskError('model-unavailable', `model ${label(ref)} is ${mb(ref.size)}, over this peer's ${mb(this.maxBytes)} limit`)
    this.onProgress = options.onProgress
    this.bytes = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject })
    this.bytes.catch(() => {}) // may settle (an early error frame) before the adapter awaits it
    this.request = lengthPrefixed(ModelRequest.encode({ sha256: ref.sha256, offset: 0n }))
    // The clock starts now: the request goes out as soon as the download exists.
    this.clock = options.clock ?? systemClock
    const limits = transferLimits(options.limits)
    const deadlineMs = transferDeadlineMs(ref.size, limits)
    this.deadlineTimer = this.clock.setTimeout(() => {
      this.fail(new TaskError('model-unavailable', `the transfer of ${label(ref)} did not finish within ${deadlineMs / 1000} s (${this.received} of ${ref.size} bytes)`))
    }, deadlineMs)
    const checkRate = (): void => {
      const need = Math.min(limits.minBytesPerWindow, ref.size - this.windowStart)
      const got = this.received - this.windowStart
      if (got < need) {
        this.fail(new TaskError('model-unavailable', `the transfer of ${label(ref)} is too slow: ${got} bytes in ${limits.windowMs / 1000} s, at least ${need} needed (${this.received} of ${ref.size} bytes)`))
        return
      }
      this.windowStart = this.received
      this.windowTimer = this.clock.setTimeout(checkRate, limits.windowMs)
    }
    this.windowTimer = this.clock.setTimeout(checkRate, limits.windowMs)
  }

  receive (chunk: Uint8Array): void {
    if (this.settled) return
    try {
      for (const body of this.reader.push(chunk)) {
        this.handle(decodeModelReply(body))
        if (this.settled) return
      }
    } catch (err) {
      this.fail(toTaskError(err, 'bad-request'))
    }
  }

  closed (err?: Error): void {
    if (this.settled) return
    const got = this.buffer == null ? 'before sending the model' : `after ${this.received} of ${this.buffer.byteLength} bytes`
    this.fail(new TaskError('model-unavailable', `the peer closed the transfer of ${label(this.ref)} ${got}${err != null ? `: ${err.message}` : ''}`))
  }

  private handle (r: ModelReply): void {
    if (r.error != null) {
      const code = ERROR_CODES.has(r.error.code as TaskErrorCode) ? r.error.code as TaskErrorCode : 'model-unavailable'
      this.fail(new TaskError(code, `peer could not send model ${label(this.ref)}: ${r.error.message}`))
      return
    }
    if (r.header != null) {
      if (this.buffer != null) throw new TaskError('bad-request', 'a second model header')
      const size = Number(r.header.size)
      if (size !== this.ref.size) throw new TaskError('model-hash-mismatch', `peer offers ${size} bytes for model ${label(this.ref)}, the task says ${this.ref.size}`)
      this.buffer = new Uint8Array(size)
      this.progress()
    } else if (r.chunk != null) {
      if (this.buffer == null) throw new TaskError('bad-request', 'model chunk before the header')
      if (this.received + r.chunk.byteLength > this.buffer.byteLength) throw new TaskError('bad-request', `peer sent more than the ${this.buffer.byteLength} bytes it announced`)
      this.buffer.set(r.chunk, this.received)
      this.received += r.chunk.byteLength
      this.progress()
    }
    if (this.buffer != null && this.received === this.buffer.byteLength) void this.verify(this.buffer)
  }

  private progress (): void {
    this.onProgress?.({ received: this.received, size: this.buffer?.byteLength ?? this.ref.size })
  }

  private async verify (bytes: Uint8Array): Promise<void> {
    this.settle()
    const actual = await sha256Hex(bytes)
    if (actual !== this.ref.sha256) {
      this.reject(new TaskError('model-hash-mismatch', `transferred model ${label(this.ref)} hashes to ${actual}, not ${this.ref.sha256}: rejected`))
    } else {
      this.resolve(bytes)
    }
  }

  private fail (e: TaskError): void {
    if (this.settled) return
    this.settle()
    this.reject(e)
  }

  private settle (): void {
    this.settled = true
    this.clock.clearTimeout(this.deadlineTimer)
    this.clock.clearTimeout(this.windowTimer)
  }
}

function label (ref: ModelRef): string {
  return ref.name !== '' ? `${ref.name} (${ref.sha256.slice(0, 12)}…)` : ref.sha256
}

function mb (bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

/**
 * Model transfer protocol, pure: a worker that lacks a model fetches it by sha256 from a peer
 * that has it. Both ends are push-based sinks over a FrameChannel, like the task protocol.
 * The fetcher checks the announced size against the ModelRef and its cap before allocating,
 * rejects any byte beyond it, and accepts the bytes only if they hash to the sha256 it asked for.
 */
import { ModelReply, ModelRequest } from './model-messages.js'
import { lengthPrefixed, LengthPrefixedReader } from './framing.js'
import { TaskError, toTaskError } from './errors.js'
import { sha256Hex } from './hash.js'
import type { FrameChannel } from './channel.js'
import type { ModelRef } from './codec.js'
import type { TaskErrorCode } from './errors.js'

export const MODEL_PROTOCOL = '/p2p-ai-agents/model/1.0.0'
/** Bytes of model per chunk frame: small enough to interleave with task frames on a busy connection. */
export const MODEL_CHUNK_BYTES = 64 * 1024
/** Largest model a peer fetches or serves unless configured otherwise. */
export const DEFAULT_MAX_MODEL_BYTES = 256 * 1024 * 1024
const MAX_FRAME_BYTES = MODEL_CHUNK_BYTES + 1024
const SHA256_HEX = /^[0-9a-f]{64}$/
const ERROR_CODES = new Set<TaskErrorCode>(['model-unavailable', 'bad-request', 'busy'])

/** Where a holder reads the models it serves; undefined when it does not have one. */
export type ModelSource = (sha256: string) => Promise<Uint8Array | undefined>

export interface TransferProgress {
  received: number
  size: number
}

/** Serves one transfer stream: reads a request, answers with the model or an error, closes. */
export class ModelTransferServer {
  private readonly channel: FrameChannel
  private readonly source: ModelSource
  private readonly reader = new LengthPrefixedReader(1024)
  private done = false

  constructor (channel: FrameChannel, source: ModelSource) {
    this.channel = channel
    this.source = source
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
    let request: ModelRequest
    try {
      request = ModelRequest.decode(bodies[0])
    } catch (err) {
      void this.fail('bad-request', `malformed model request: ${(err as Error).message}`)
      return
    }
    void this.serve(request)
  }

  closed (): void {
    this.done = true
  }

  private async serve (request: ModelRequest): Promise<void> {
    if (!SHA256_HEX.test(request.sha256)) {
      await this.fail('bad-request', 'sha256 must be 64 lowercase hex digits')
      return
    }
    const bytes = await this.source(request.sha256).catch(() => undefined)
    if (bytes == null) {
      await this.fail('model-unavailable', `this peer does not have model ${request.sha256}`)
      return
    }
    const offset = Number(request.offset)
    if (offset > bytes.byteLength) {
      await this.fail('bad-request', `offset ${offset} is past the model's ${bytes.byteLength} bytes`)
      return
    }
    try {
      await this.channel.send(reply({ header: { size: BigInt(bytes.byteLength) } }))
      for (let at = offset; at < bytes.byteLength; at += MODEL_CHUNK_BYTES) {
        await this.channel.send(reply({ chunk: bytes.subarray(at, at + MODEL_CHUNK_BYTES) as Uint8Array<ArrayBuffer> }))
      }
      this.channel.close()
    } catch (err) {
      this.channel.close(err as Error)
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

export interface ModelDownloadOptions {
  /** Largest model accepted; a bigger one is refused before any of it is buffered. */
  maxBytes?: number
  onProgress?: (p: TransferProgress) => void
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

  /** Throws a model-unavailable TaskError at once for a model over the size cap: nothing is requested. */
  constructor (ref: ModelRef, options: ModelDownloadOptions = {}) {
    this.ref = ref
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES
    if (ref.size > this.maxBytes) throw new TaskError('model-unavailable', `model ${label(ref)} is ${mb(ref.size)}, over this peer's ${mb(this.maxBytes)} limit`)
    this.onProgress = options.onProgress
    this.bytes = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject })
    this.bytes.catch(() => {}) // may settle (an early error frame) before the adapter awaits it
    this.request = lengthPrefixed(ModelRequest.encode({ sha256: ref.sha256, offset: 0n }))
  }

  receive (chunk: Uint8Array): void {
    if (this.settled) return
    try {
      for (const body of this.reader.push(chunk)) {
        this.handle(ModelReply.decode(body))
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
    this.settled = true
    const actual = await sha256Hex(bytes)
    if (actual !== this.ref.sha256) {
      this.reject(new TaskError('model-hash-mismatch', `transferred model ${label(this.ref)} hashes to ${actual}, not ${this.ref.sha256}: rejected`))
    } else {
      this.resolve(bytes)
    }
  }

  private fail (e: TaskError): void {
    if (this.settled) return
    this.settled = true
    this.reject(e)
  }
}

function label (ref: ModelRef): string {
  return ref.name !== '' ? `${ref.name} (${ref.sha256.slice(0, 12)}…)` : ref.sha256
}

function mb (bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

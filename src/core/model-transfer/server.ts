/** Holder side of a model transfer: reads one request, answers with the model (in chunks) or an error. */
import { ModelReply } from './pb/model.js'
import { lengthPrefixed, LengthPrefixedReader } from '../framing.js'
import { decodeModelRequest, MODEL_CHUNK_BYTES } from './codec.js'
import type { FrameChannel } from '../channel.js'
import type { CheckedModelRequest, ModelSource } from './codec.js'
import type { TaskErrorCode } from '../errors.js'

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

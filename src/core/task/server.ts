/**
 * Worker side of the task protocol over one channel from one requester: decodes requests,
 * admits them to the shared WorkQueue and writes back results, each with a signed receipt, or
 * typed errors. A bad frame gets a stream-level error reply and closes this channel only.
 */
import { encodeFrame, FrameDecoder } from './codec.js'
import { toTaskError } from '../errors.js'
import { STREAM_ERROR_ID } from '../channel.js'
import { DEFAULT_LIMITS } from '../limits.js'
import { RECEIPT_BATCH_VERSION, signReceipt, tensorsSha256 } from '../receipt.js'
import { hexToBytes } from '@noble/hashes/utils.js'
import { checkFrameSize, frameBodyBytes } from './frame-size.js'
import { ReceiptBatcher } from './receipt-batcher.js'
import type { Defer } from './receipt-batcher.js'
import type { FrameChannel } from '../channel.js'
import type { FrameMessage, WireErrorCode } from './codec.js'
import type { ReceiptProof, TaskRequest } from '../task-types.js'
import type { ProtocolLimits } from '../limits.js'
import type { FrameWatch } from '../framing.js'
import type { WorkQueue, WorkResult } from '../work-queue.js'
import type { Receipt, ReceiptSign } from '../receipt.js'

/** The worker's identity, as its receipts name and sign it. */
export interface ReceiptSigner {
  /** This worker's peer id. */
  peerId: string
  /** Ed25519 with the key `peerId` embeds. */
  sign: ReceiptSign
}

export interface TaskServerOptions {
  /** Who is on the other end (peer id); used for fair queueing and the UI, and named in receipts. */
  requester: string
  signer: ReceiptSigner
  limits?: ProtocolLimits
  /** Told how far each push got through an unfinished frame (its deadline, its peer's byte cap): see UnfinishedFrames. */
  frames?: FrameWatch
  /**
   * When the results that finished together are signed as one batch, for requesters that accept
   * batch receipts (default: a microtask; adapters pass the stream's endOfTurn, which lets a whole
   * batch's results arrive first).
   */
  defer?: Defer
}

export class TaskServer {
  private readonly channel: FrameChannel
  private readonly queue: WorkQueue
  private readonly requester: string
  private readonly signer: ReceiptSigner
  private readonly limits: ProtocolLimits
  private readonly decoder: FrameDecoder
  private readonly batcher: ReceiptBatcher
  private isClosed = false
  /** Tasks this channel submitted that have not answered yet (another stream of the same peer has its own). */
  private readonly open = new Set<string>()

  constructor (channel: FrameChannel, queue: WorkQueue, options: TaskServerOptions) {
    this.channel = channel
    this.queue = queue
    this.requester = options.requester
    this.signer = options.signer
    this.limits = options.limits ?? DEFAULT_LIMITS
    this.decoder = new FrameDecoder(this.limits, options.frames)
    this.batcher = new ReceiptBatcher(this.signer.sign, options.defer ?? queueMicrotask)
  }

  /** Feeds bytes received from the channel. */
  receive (chunk: Uint8Array): void {
    if (this.isClosed) return
    let frames: FrameMessage[]
    try {
      frames = this.decoder.push(chunk)
    } catch (err) {
      this.rejectStream(toTaskError(err, 'bad-request'))
      return
    }
    for (const frame of frames) this.handle(frame)
  }

  private rejectStream (e: Error): void {
    void this.send({ type: 'response', response: { taskId: STREAM_ERROR_ID, ok: false, error: { code: 'bad-request', message: e.message } } })
      .finally(() => { this.shutdown(e) })
  }

  /** Called by the adapter when the channel closed. */
  closed (): void {
    this.shutdown()
  }

  private shutdown (err?: Error): void {
    if (this.isClosed) return
    this.isClosed = true
    for (const taskId of this.open) this.queue.cancel(taskId, this.requester)
    this.channel.close(err)
  }

  private handle (frame: FrameMessage): void {
    switch (frame.type) {
      case 'request': void this.run(frame.request); return
      case 'ping': void this.send({ type: 'pong', nonce: frame.nonce }); return
      case 'cancel': this.queue.cancel(frame.taskId, this.requester); return
      case 'pong': return
      case 'response': this.rejectStream(new Error('a requester sent a response frame')); return
    }
  }

  private async run (request: TaskRequest): Promise<void> {
    this.open.add(request.taskId)
    try {
      const result = await this.queue.submit(request, this.requester)
      const frame = await this.answer(request, result)
      await this.sendEncoded(frame)
    } catch (err) {
      const e = toTaskError(err)
      const code: WireErrorCode = e.code === 'peer-gone' || e.code === 'no-peer' ? 'inference-failed' : e.code
      await this.send({ type: 'response', response: { taskId: request.taskId, ok: false, error: { code, message: e.message } } })
    } finally {
      this.open.delete(request.taskId)
    }
  }

  /**
   * The result frame, signed. Outputs that would not fit one frame throw `inference-failed`
   * instead: the requester would refuse the frame from its length prefix and lose the stream.
   */
  private async answer (request: TaskRequest, result: WorkResult): Promise<Uint8Array> {
    const { maxFrameBytes } = this.limits
    // The data alone already too big: refused before encoding (and copying) it all.
    checkFrameSize(result.outputs.reduce((n, t) => n + t.data.byteLength, 0), maxFrameBytes, 'outputs are', 'inference-failed')
    // The queue's wall-clock times of the run itself (queueing excluded); a clock stepped back mid-run must not make a receipt end before it starts.
    const startedAt = result.startedAt
    const endedAt = Math.max(startedAt, result.endedAt)
    const fields = {
      jobId: request.jobId,
      taskId: request.taskId,
      requester: this.requester,
      worker: this.signer.peerId,
      modelSha256: request.model.sha256,
      inputsSha256: tensorsSha256(request.inputs),
      outputsSha256: tensorsSha256(result.outputs),
      backend: result.backend,
      startedAt,
      endedAt
    }
    const receipt = request.batchReceipts === true ? await this.batcher.sign(fields) : await signReceipt(fields, this.signer.sign)
    const frame = encodeFrame({ type: 'response', response: { taskId: request.taskId, ok: true, result: { ...result, receipt: proofOf(receipt) } } })
    checkFrameSize(frameBodyBytes(frame), maxFrameBytes, 'the encoded result is', 'inference-failed')
    return frame
  }

  private async send (frame: FrameMessage): Promise<void> {
    await this.sendEncoded(encodeFrame(frame))
  }

  private async sendEncoded (bytes: Uint8Array): Promise<void> {
    if (this.isClosed) return
    try {
      await this.channel.send(bytes)
    } catch {
      this.shutdown()
    }
  }
}

/** What of a receipt travels: the requester recomputes or knows every other field. */
function proofOf (receipt: Receipt): ReceiptProof {
  const proof: ReceiptProof = { startedAt: receipt.startedAt, endedAt: receipt.endedAt, signature: hexToBytes(receipt.signature) }
  if (receipt.version === RECEIPT_BATCH_VERSION) proof.batch = { index: receipt.batchIndex, size: receipt.batchSize, path: receipt.path.map(hexToBytes) }
  return proof
}

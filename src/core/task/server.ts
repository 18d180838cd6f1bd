/**
 * Worker side of the task protocol over one channel from one requester: decodes requests,
 * admits them to the shared WorkQueue and writes back results or typed errors.
 * A bad frame gets a stream-level error reply and closes this channel only.
 */
import { encodeFrame, FrameDecoder } from './codec.js'
import { toTaskError } from '../errors.js'
import { STREAM_ERROR_ID } from '../channel.js'
import { DEFAULT_LIMITS } from '../limits.js'
import type { FrameChannel } from '../channel.js'
import type { FrameMessage, WireErrorCode } from './codec.js'
import type { TaskRequest } from '../task-types.js'
import type { ProtocolLimits } from '../limits.js'
import type { WorkQueue } from '../work-queue.js'

export interface TaskServerOptions {
  /** Who is on the other end (peer id); used for fair queueing and the UI. */
  requester: string
  limits?: ProtocolLimits
}

export class TaskServer {
  private readonly channel: FrameChannel
  private readonly queue: WorkQueue
  private readonly requester: string
  private readonly decoder: FrameDecoder
  private isClosed = false
  /** Tasks this channel submitted that have not answered yet (another stream of the same peer has its own). */
  private readonly open = new Set<string>()

  constructor (channel: FrameChannel, queue: WorkQueue, options: TaskServerOptions) {
    this.channel = channel
    this.queue = queue
    this.requester = options.requester
    this.decoder = new FrameDecoder(options.limits ?? DEFAULT_LIMITS)
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
      await this.send({ type: 'response', response: { taskId: request.taskId, ok: true, result } })
    } catch (err) {
      const e = toTaskError(err)
      const code: WireErrorCode = e.code === 'peer-gone' || e.code === 'no-peer' ? 'inference-failed' : e.code
      await this.send({ type: 'response', response: { taskId: request.taskId, ok: false, error: { code, message: e.message } } })
    } finally {
      this.open.delete(request.taskId)
    }
  }

  private async send (frame: FrameMessage): Promise<void> {
    if (this.isClosed) return
    try {
      await this.channel.send(encodeFrame(frame))
    } catch {
      this.shutdown()
    }
  }
}

/**
 * Requester side of the task protocol over one channel to one worker: matches responses to
 * requests, enforces deadlines, declares the worker gone when heartbeats stop coming back, and
 * accepts a result only with a receipt the worker signed over this task and these outputs.
 */
import { encodeFrame, FrameDecoder } from './codec.js'
import { TaskError, toTaskError } from '../errors.js'
import { STREAM_ERROR_ID } from '../channel.js'
import { DEFAULT_LIMITS } from '../limits.js'
import { systemClock } from '../clock.js'
import { RECEIPT_BATCH_VERSION, RECEIPT_VERSION, rememberingVerify, tensorsSha256, verifyReceipt } from '../receipt.js'
import { checkFrameSize, frameBodyBytes } from './frame-size.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import type { FrameWatch } from '../framing.js'
import type { FrameChannel } from '../channel.js'
import type { Clock } from '../clock.js'
import type { FrameMessage } from './codec.js'
import type { TaskRequest, TaskResult } from '../task-types.js'
import type { ProtocolLimits } from '../limits.js'
import type { Receipt, ReceiptFields, ReceiptVerify } from '../receipt.js'

/** Who the two ends of this channel are, and how to check the worker's signature. */
export interface ReceiptCheck {
  /** Our own peer id: the worker must name it in every receipt. */
  requester: string
  /** The worker's peer id (the remote end of the connection). */
  worker: string
  /** Ed25519 verification with the key `worker` embeds. */
  verify: ReceiptVerify
}

export interface TaskClientOptions {
  clock?: Clock
  limits?: ProtocolLimits
  /** Ping interval while tasks are in flight. */
  heartbeatMs?: number
  /** Silence after which the worker is declared gone. */
  livenessMs?: number
  /** Deadline used when a request has none. */
  defaultTimeoutMs?: number
  /** Extra wait past a task's deadline for the worker's own timeout answer. */
  graceMs?: number
  /** Told how far each push got through an unfinished response frame (its deadline, the worker's byte cap): see UnfinishedFrames. */
  frames?: FrameWatch
}

export interface TaskOutcome {
  result: TaskResult
  /** The worker's verified receipt for this result, every signed field spelled out. */
  receipt: Receipt
  /** Request sent → response decoded, as seen by the requester. */
  roundTripMs: number
  /** Round trip minus the worker's own total: framing, transport and event-loop time. */
  networkMs: number
}

interface Pending {
  resolve: (outcome: TaskOutcome) => void
  reject: (err: TaskError) => void
  sentAt: number
  timer: unknown
  /** What the receipt must say about the request, kept instead of the inputs themselves. */
  jobId: string
  modelSha256: string
  inputsSha256: string
  /** A response arrived and is being checked: later ones for this task are ignored. */
  answered: boolean
}

export class TaskClient {
  private readonly channel: FrameChannel
  private readonly receipts: ReceiptCheck
  /** The worker's key check, remembering its last answers: a batch's receipts share one signature. */
  private readonly verify: ReceiptVerify
  private readonly limits: ProtocolLimits
  private readonly clock: Clock
  private readonly decoder: FrameDecoder
  private readonly heartbeatMs: number
  private readonly livenessMs: number
  private readonly defaultTimeoutMs: number
  private readonly graceMs: number
  private readonly pending = new Map<string, Pending>()
  private heartbeatTimer: unknown
  private lastHeard: number
  private nonce = 0
  private closedWith?: TaskError

  constructor (channel: FrameChannel, receipts: ReceiptCheck, options: TaskClientOptions = {}) {
    this.channel = channel
    this.receipts = receipts
    this.verify = rememberingVerify(receipts.verify)
    this.clock = options.clock ?? systemClock
    this.limits = options.limits ?? DEFAULT_LIMITS
    this.decoder = new FrameDecoder(this.limits, options.frames)
    this.heartbeatMs = options.heartbeatMs ?? 1000
    this.livenessMs = options.livenessMs ?? 10_000
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000
    this.graceMs = options.graceMs ?? 2000
    this.lastHeard = this.clock.now()
  }

  get inFlight (): number {
    return this.pending.size
  }

  get isClosed (): boolean {
    return this.closedWith != null
  }

  /**
   * Sends one task and resolves with the worker's result and its verified receipt, or rejects with
   * a TaskError. A request over the frame limit is refused here (`bad-request`), never sent.
   */
  async run (request: TaskRequest): Promise<TaskOutcome> {
    if (this.closedWith != null) throw this.closedWith
    if (this.pending.has(request.taskId)) throw new TaskError('bad-request', `task ${request.taskId} is already in flight`)
    const timeoutMs = request.timeoutMs > 0 ? request.timeoutMs : this.defaultTimeoutMs
    const frame = encodeFrame({ type: 'request', request: { ...request, timeoutMs, batchReceipts: true } })
    checkFrameSize(frameBodyBytes(frame), this.limits.maxFrameBytes, `task ${request.taskId} is`, 'bad-request')
    const expected = { jobId: request.jobId, modelSha256: request.model.sha256, inputsSha256: tensorsSha256(request.inputs), answered: false }
    if (this.pending.size === 0) this.lastHeard = this.clock.now()
    const promise = new Promise<TaskOutcome>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.settle(request.taskId, new TaskError('timeout', `no answer within ${timeoutMs + this.graceMs} ms`))
        void this.trySend({ type: 'cancel', taskId: request.taskId })
      }, timeoutMs + this.graceMs)
      this.pending.set(request.taskId, { resolve, reject, sentAt: this.clock.now(), timer, ...expected })
    })
    this.armHeartbeat()
    try {
      await this.channel.send(frame)
    } catch (err) {
      this.settle(request.taskId, new TaskError('peer-gone', `could not send the task: ${(err as Error).message}`))
    }
    return await promise
  }

  /** Feeds bytes received from the channel. */
  receive (chunk: Uint8Array): void {
    this.lastHeard = this.clock.now()
    let frames: FrameMessage[]
    try {
      frames = this.decoder.push(chunk)
    } catch (err) {
      this.fail(toTaskError(err, 'bad-request'))
      return
    }
    for (const frame of frames) this.handle(frame)
  }

  /** Called by the adapter when the channel closed underneath us. */
  closed (err?: Error): void {
    this.fail(new TaskError('peer-gone', err != null ? `connection to the worker closed: ${err.message}` : 'connection to the worker closed'), false)
  }

  /** Fails everything in flight and closes the channel. */
  close (): void {
    this.fail(new TaskError('peer-gone', 'task channel closed by the requester'))
  }

  private handle (frame: FrameMessage): void {
    switch (frame.type) {
      case 'response': {
        const r = frame.response
        if (r.taskId === STREAM_ERROR_ID && !r.ok) {
          this.fail(new TaskError(r.error.code, `worker rejected the stream: ${r.error.message}`))
          return
        }
        const p = this.pending.get(r.taskId)
        if (p == null || p.answered) return // late answer to a task that already timed out, or a repeated one
        if (!r.ok) {
          this.settle(r.taskId, new TaskError(r.error.code, r.error.message))
          return
        }
        p.answered = true
        const roundTripMs = this.clock.now() - p.sentAt
        const taskId = r.taskId
        this.accept(taskId, p, r.result, roundTripMs)
          .catch((err: unknown) => { this.settle(taskId, toTaskError(err)) })
        return
      }
      case 'ping':
        void this.trySend({ type: 'pong', nonce: frame.nonce })
        return
      case 'pong':
        return // lastHeard already updated
      default:
        this.fail(new TaskError('bad-request', `a worker sent an unexpected ${frame.type} frame`))
    }
  }

  /**
   * Settles a task with its result once the receipt verifies over what we asked and what came
   * back. A missing or bad receipt is the worker's fault alone: that task fails
   * `inference-failed` (the scheduler counts it against the worker), the stream stays up.
   */
  private async accept (taskId: string, p: Pending, result: TaskResult, roundTripMs: number): Promise<void> {
    const { requester, worker } = this.receipts
    const proof = result.receipt
    if (proof == null) {
      this.settle(taskId, new TaskError('inference-failed', `worker ${worker} answered task ${taskId} without a receipt; unsigned results are refused`))
      return
    }
    const fields: ReceiptFields = {
      jobId: p.jobId,
      taskId,
      requester,
      worker,
      modelSha256: p.modelSha256,
      inputsSha256: p.inputsSha256,
      outputsSha256: tensorsSha256(result.outputs),
      backend: result.backend,
      startedAt: proof.startedAt,
      endedAt: proof.endedAt
    }
    const signature = bytesToHex(proof.signature)
    const receipt: Receipt = proof.batch == null
      ? { version: RECEIPT_VERSION, ...fields, signature }
      : { version: RECEIPT_BATCH_VERSION, ...fields, batchIndex: proof.batch.index, batchSize: proof.batch.size, path: proof.batch.path.map(bytesToHex), signature }
    if (!await verifyReceipt(receipt, this.verify)) {
      this.settle(taskId, new TaskError('inference-failed', `receipt signature invalid: worker ${worker}'s signature on task ${taskId} does not cover this task, its inputs and these outputs`))
      return
    }
    this.settle(taskId, { result, receipt, roundTripMs, networkMs: Math.max(0, roundTripMs - result.timings.totalMs) })
  }

  private settle (taskId: string, outcome: TaskOutcome | TaskError): void {
    const p = this.pending.get(taskId)
    if (p == null) return
    this.pending.delete(taskId)
    this.clock.clearTimeout(p.timer)
    if (outcome instanceof TaskError) p.reject(outcome)
    else p.resolve(outcome)
    if (this.pending.size === 0) this.disarmHeartbeat()
  }

  private fail (err: TaskError, closeChannel = true): void {
    if (this.closedWith != null) return
    this.closedWith = err
    this.disarmHeartbeat()
    for (const taskId of [...this.pending.keys()]) this.settle(taskId, err)
    if (closeChannel) this.channel.close(err)
  }

  private armHeartbeat (): void {
    if (this.heartbeatTimer != null) return
    this.heartbeatTimer = this.clock.setTimeout(() => {
      this.heartbeatTimer = undefined
      if (this.pending.size === 0 || this.closedWith != null) return
      const silence = this.clock.now() - this.lastHeard
      if (silence >= this.livenessMs) {
        this.fail(new TaskError('peer-gone', `worker stopped answering (silent for ${Math.round(silence)} ms)`))
        return
      }
      void this.trySend({ type: 'ping', nonce: ++this.nonce })
      this.armHeartbeat()
    }, this.heartbeatMs)
  }

  private disarmHeartbeat (): void {
    if (this.heartbeatTimer == null) return
    this.clock.clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }

  private async trySend (frame: FrameMessage): Promise<void> {
    if (this.closedWith != null) return
    try {
      await this.channel.send(encodeFrame(frame))
    } catch (err) {
      this.fail(new TaskError('peer-gone', `send failed: ${(err as Error).message}`), false)
    }
  }
}

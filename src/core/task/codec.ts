/**
 * Task protocol v1 codec: varint length-prefixed protobuf frames, validated on decode.
 * Sizes are checked before allocation: the length prefix before buffering a frame, repeated
 * field counts while decoding, and each tensor's byte length against its dtype and dims.
 */
import { ErrorCode, Frame } from './pb/task.js'
import { DTYPE_BYTES, elementCount, isDType } from '../tensor.js'
import { TaskError } from '../errors.js'
import { DEFAULT_LIMITS } from '../limits.js'
import { lengthPrefixed, LengthPrefixedReader } from '../framing.js'
import { MAX_RECEIPT_BATCH, MAX_RECEIPT_PATH } from '../receipt.js'
import type { TaskErrorCode } from '../errors.js'
import type { ProtocolLimits } from '../limits.js'
import type { FrameWatch } from '../framing.js'
import type { DTypeName, WireTensor } from '../tensor.js'
import type { DType, Receipt as PbReceipt, Tensor as PbTensor } from './pb/task.js'
import type { ReceiptProof, TaskRequest, TaskResult } from '../task-types.js'

export const TASK_PROTOCOL = '/p2p-ai-agents/task/1.0.0'

export type TaskResponse =
  | { taskId: string, ok: true, result: TaskResult }
  | { taskId: string, ok: false, error: { code: WireErrorCode, message: string } }

export type FrameMessage =
  | { type: 'request', request: TaskRequest }
  | { type: 'response', response: TaskResponse }
  | { type: 'ping', nonce: number }
  | { type: 'pong', nonce: number }
  | { type: 'cancel', taskId: string }

export type WireErrorCode = Exclude<TaskErrorCode, 'peer-gone' | 'no-peer'>

const ERROR_TO_WIRE: Record<WireErrorCode, ErrorCode> = {
  'bad-request': ErrorCode.BAD_REQUEST,
  'model-unavailable': ErrorCode.MODEL_UNAVAILABLE,
  busy: ErrorCode.BUSY,
  'inference-failed': ErrorCode.INFERENCE_FAILED,
  timeout: ErrorCode.TIMEOUT,
  'model-hash-mismatch': ErrorCode.MODEL_HASH_MISMATCH
}
const WIRE_TO_ERROR = new Map<ErrorCode, WireErrorCode>(
  Object.entries(ERROR_TO_WIRE).map(([k, v]) => [v, k as WireErrorCode])
)

const SHA256_HEX = /^[0-9a-f]{64}$/
/** Longest error message kept from a peer (characters). */
const MAX_ERROR_MESSAGE = 1024
const SIGNATURE_BYTES = 64
const DIGEST_BYTES = 32

function bad (message: string): TaskError {
  return new TaskError('bad-request', message)
}

function toWireTensor (t: WireTensor): PbTensor {
  return { name: t.name, dtype: t.dtype.toUpperCase() as DType, dims: t.dims, data: t.data as Uint8Array<ArrayBuffer> }
}

function checkId (value: string, what: string, limits: ProtocolLimits, allowEmpty = false): void {
  if (!allowEmpty && value.length === 0) throw bad(`${what} is empty`)
  if (value.length > limits.maxIdLength) throw bad(`${what} is longer than ${limits.maxIdLength} characters`)
}

/** Checks a tensor's name, dtype, dims and that its byte length matches them. */
export function validateTensor (t: { name: string, dtype: string, dims: number[], data: Uint8Array }, limits: ProtocolLimits = DEFAULT_LIMITS): WireTensor {
  checkId(t.name, 'tensor name', limits)
  const dtype = t.dtype.toLowerCase()
  if (!isDType(dtype)) throw bad(`tensor "${t.name}" has unsupported dtype ${t.dtype}`)
  if (t.dims.length > limits.maxDims) throw bad(`tensor "${t.name}" has ${t.dims.length} dims (max ${limits.maxDims})`)
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw bad(`tensor "${t.name}" has invalid dim ${d}`)
  }
  const elements = elementCount(t.dims)
  if (elements > limits.maxElements) throw bad(`tensor "${t.name}" has ${elements} elements (max ${limits.maxElements})`)
  const expected = elements * DTYPE_BYTES[dtype]
  if (t.data.byteLength !== expected) {
    throw bad(`tensor "${t.name}" has ${t.data.byteLength} bytes but ${dtype}[${t.dims.join(',')}] needs ${expected}`)
  }
  return { name: t.name, dtype: dtype as DTypeName, dims: t.dims, data: t.data }
}

function validateTensors (list: Array<{ name: string, dtype: string, dims: number[], data: Uint8Array }>, limits: ProtocolLimits): WireTensor[] {
  const names = new Set<string>()
  return list.map(t => {
    const v = validateTensor(t, limits)
    if (names.has(v.name)) throw bad(`tensor name "${v.name}" is repeated`)
    names.add(v.name)
    return v
  })
}

function toWireReceipt (r: ReceiptProof | undefined): PbReceipt | undefined {
  if (r == null) return undefined
  return {
    startedAt: BigInt(r.startedAt),
    endedAt: BigInt(r.endedAt),
    signature: r.signature as Uint8Array<ArrayBuffer>,
    batchIndex: r.batch?.index ?? 0,
    batchSize: r.batch?.size ?? 0,
    path: (r.batch?.path ?? []) as Array<Uint8Array<ArrayBuffer>>
  }
}

function fromWireReceipt (r: PbReceipt | undefined): ReceiptProof | undefined {
  if (r == null) return undefined
  if (r.signature.byteLength !== SIGNATURE_BYTES) throw bad(`receipt signature has ${r.signature.byteLength} bytes, not ${SIGNATURE_BYTES}`)
  const startedAt = Number(r.startedAt)
  const endedAt = Number(r.endedAt)
  if (!Number.isSafeInteger(startedAt) || !Number.isSafeInteger(endedAt)) throw bad('receipt times are out of range')
  if (r.batchSize === 0 && r.batchIndex === 0 && r.path.length === 0) return { startedAt, endedAt, signature: r.signature }
  if (r.batchSize < 2 || r.batchSize > MAX_RECEIPT_BATCH) throw bad(`receipt batch size ${r.batchSize} is not from 2 to ${MAX_RECEIPT_BATCH}`)
  if (r.batchIndex >= r.batchSize) throw bad(`receipt batch index ${r.batchIndex} is not below its batch size ${r.batchSize}`)
  for (const h of r.path) if (h.byteLength !== DIGEST_BYTES) throw bad(`a receipt path hash has ${h.byteLength} bytes, not ${DIGEST_BYTES}`)
  return { startedAt, endedAt, signature: r.signature, batch: { index: r.batchIndex, size: r.batchSize, path: r.path } }
}

/** Encodes one frame, length prefix included. */
export function encodeFrame (msg: FrameMessage): Uint8Array {
  const frame: Frame = {}
  switch (msg.type) {
    case 'request': {
      const r = msg.request
      frame.request = {
        taskId: r.taskId,
        jobId: r.jobId,
        model: { sha256: r.model.sha256, size: BigInt(r.model.size), name: r.model.name },
        inputs: r.inputs.map(toWireTensor),
        timeoutMs: r.timeoutMs,
        outputNames: r.outputNames,
        batchReceipts: r.batchReceipts === true
      }
      break
    }
    case 'response': {
      const r = msg.response
      frame.response = r.ok
        ? { taskId: r.taskId, result: { outputs: r.result.outputs.map(toWireTensor), timings: r.result.timings, backend: r.result.backend, threads: r.result.threads, receipt: toWireReceipt(r.result.receipt) } }
        : { taskId: r.taskId, error: { code: ERROR_TO_WIRE[r.error.code], message: r.error.message } }
      break
    }
    case 'ping': frame.ping = { nonce: BigInt(msg.nonce) }; break
    case 'pong': frame.pong = { nonce: BigInt(msg.nonce) }; break
    case 'cancel': frame.cancel = { taskId: msg.taskId }; break
  }
  return lengthPrefixed(Frame.encode(frame))
}

/** Decodes and validates one frame body (without its length prefix). */
export function decodeFrameBody (body: Uint8Array, limits: ProtocolLimits = DEFAULT_LIMITS): FrameMessage {
  let frame: Frame
  const tensorLimits = { dims: limits.maxDims }
  try {
    frame = Frame.decode(body, {
      limits: {
        request: { inputs: limits.maxTensors, inputs$: tensorLimits, outputNames: limits.maxTensors },
        response: { result: { outputs: limits.maxTensors, outputs$: tensorLimits, receipt: { path: MAX_RECEIPT_PATH } } }
      }
    })
  } catch (err) {
    // The decoder's own message stays in the text so the sender can see what was wrong.
    throw bad(`malformed frame: ${(err as Error).message}`)
  }
  const set = [frame.request, frame.response, frame.ping, frame.pong, frame.cancel].filter(f => f != null).length
  if (set !== 1) throw bad(`a frame must carry exactly one message, this one carries ${set}`)

  if (frame.request != null) {
    const r = frame.request
    checkId(r.taskId, 'task id', limits)
    checkId(r.jobId, 'job id', limits, true)
    if (r.model == null || !SHA256_HEX.test(r.model.sha256)) throw bad('model sha256 must be 64 lowercase hex characters')
    // compared exactly with the size a model transfer announces, so it must fit a JS number exactly
    if (r.model.size > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`model size ${r.model.size} is out of range`)
    checkId(r.model.name, 'model name', limits, true)
    for (const n of r.outputNames) checkId(n, 'output name', limits)
    return {
      type: 'request',
      request: {
        taskId: r.taskId,
        jobId: r.jobId,
        model: { sha256: r.model.sha256, size: Number(r.model.size), name: r.model.name },
        inputs: validateTensors(r.inputs, limits),
        timeoutMs: r.timeoutMs,
        outputNames: r.outputNames,
        ...(r.batchReceipts ? { batchReceipts: true } : {})
      }
    }
  }
  if (frame.response != null) {
    const r = frame.response
    checkId(r.taskId, 'task id', limits)
    if ((r.result == null) === (r.error == null)) throw bad('a response must carry exactly one of result or error')
    if (r.error != null) {
      const code = WIRE_TO_ERROR.get(r.error.code)
      if (code == null) throw bad(`unknown error code ${r.error.code}`)
      // A peer's text ends up in logs, the UI and the audit log: kept short.
      const message = r.error.message.length > MAX_ERROR_MESSAGE ? `${r.error.message.slice(0, MAX_ERROR_MESSAGE)}…` : r.error.message
      return { type: 'response', response: { taskId: r.taskId, ok: false, error: { code, message } } }
    }
    const result = r.result!
    checkId(result.backend, 'backend', limits, true)
    const t = result.timings ?? { queueMs: 0, loadMs: 0, inferenceMs: 0, totalMs: 0 }
    // durations feed the requester's speed measurements: NaN or negative ones would poison them
    for (const [name, ms] of Object.entries(t)) {
      if (!Number.isFinite(ms) || ms < 0) throw bad(`timing ${name} is ${ms}, not a duration`)
    }
    return {
      type: 'response',
      response: {
        taskId: r.taskId,
        ok: true,
        result: { outputs: validateTensors(result.outputs, limits), timings: t, backend: result.backend, threads: result.threads, receipt: fromWireReceipt(result.receipt) }
      }
    }
  }
  if (frame.ping != null) return { type: 'ping', nonce: Number(frame.ping.nonce) }
  if (frame.pong != null) return { type: 'pong', nonce: Number(frame.pong.nonce) }
  checkId(frame.cancel!.taskId, 'task id', limits)
  return { type: 'cancel', taskId: frame.cancel!.taskId }
}

/**
 * Reassembles task frames from arbitrary chunks; oversized frames are refused from their
 * length prefix alone, before the body is buffered. With a `watch`, each push reports how far the
 * unfinished frame has got (see UnfinishedFrames), which may refuse the stream.
 */
export class FrameDecoder {
  private readonly reader: LengthPrefixedReader
  private readonly limits: ProtocolLimits
  private readonly watch?: FrameWatch

  constructor (limits: ProtocolLimits = DEFAULT_LIMITS, watch?: FrameWatch) {
    this.limits = limits
    this.reader = new LengthPrefixedReader(limits.maxFrameBytes)
    this.watch = watch
  }

  /** Adds received bytes and returns every complete frame they finish. */
  push (chunk: Uint8Array): FrameMessage[] {
    const bodies = this.reader.push(chunk)
    this.watch?.update(this.reader)
    return bodies.map(body => decodeFrameBody(body, this.limits))
  }

  /** Bytes held for an incomplete frame (0 between frames). */
  get pending (): number {
    return this.reader.pending
  }
}

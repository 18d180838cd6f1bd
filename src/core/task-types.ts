/** What a task is, independent of any wire format: the model it runs, its inputs, its result. */
import type { WireTensor } from './tensor.js'

export interface ModelRef {
  /** Lowercase hex sha256 of the ONNX bytes: the model's identity. */
  sha256: string
  size: number
  name: string
}

export interface TaskRequest {
  taskId: string
  jobId: string
  model: ModelRef
  inputs: WireTensor[]
  /** Deadline for the whole task on the worker; 0 means the worker's default. */
  timeoutMs: number
  /** Outputs wanted; empty means all. */
  outputNames: string[]
  /** The requester checks batch receipts (receipt/2): the worker may sign this task with others that finish with it. */
  batchReceipts?: boolean
}

export interface Timings {
  queueMs: number
  loadMs: number
  inferenceMs: number
  totalMs: number
}

/** What a worker adds to a result so it can be held to it: see core/receipt.ts. */
export interface ReceiptProof {
  /** Wall-clock ms since the Unix epoch (the worker's clock). */
  startedAt: number
  endedAt: number
  /** Ed25519 signature over the receipt's canonical bytes (a batch's: over its Merkle root), 64 bytes. */
  signature: Uint8Array
  /** Set when the signature covers a batch (receipt/2): this receipt's leaf, the batch size (≥ 2) and its audit path. */
  batch?: { index: number, size: number, path: Uint8Array[] }
}

export interface TaskResult {
  outputs: WireTensor[]
  timings: Timings
  backend: string
  threads: number
  /** Absent only from peers that do not sign (a requester refuses such results). */
  receipt?: ReceiptProof
}

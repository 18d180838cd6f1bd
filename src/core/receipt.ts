/**
 * Signed receipts (docs/PROTOCOL.md, "Receipts"): a worker signs, with its libp2p Ed25519 key, a
 * canonical encoding of what it was asked and what it answered, so that a result can be held
 * against the worker that produced it, by the requester now and by anyone later, offline.
 *
 * Pure: the Ed25519 implementation is injected (libp2p keys in src/net, src/node), so any
 * Ed25519 library can check the same bytes. Digests use the synchronous sha256 of ./hash.ts: a
 * digit task hashes a few KiB, far less than WebCrypto's async round trip costs.
 */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { syncSha256 } from './hash.js'
import { leafHash, merkleTree, rootFromPath } from './merkle.js'
import { bytesEqual } from './compare.js'
import type { WireTensor } from './tensor.js'

/** Names the receipt layout; it changes whenever the signed bytes change. */
export const RECEIPT_VERSION = 'p2p-ai-agents/receipt/1'

/**
 * A batch receipt: one signature over the Merkle root (./merkle.ts) of several receipts' receipt/1
 * layouts, so a worker signs, and a requester checks, once for the tasks that finished together.
 */
export const RECEIPT_BATCH_VERSION = 'p2p-ai-agents/receipt/2'

/** Most receipts one signature covers; a receipt's audit path is then at most 6 hashes. */
export const MAX_RECEIPT_BATCH = 64
/** Hashes in a batch receipt's audit path at most (a tree of MAX_RECEIPT_BATCH leaves). */
export const MAX_RECEIPT_PATH = Math.ceil(Math.log2(MAX_RECEIPT_BATCH))

/** Ed25519 signatures are 64 bytes. */
export const RECEIPT_SIGNATURE_BYTES = 64

/** Everything a receipt's signature covers, in signing order. */
export interface ReceiptFields {
  jobId: string
  taskId: string
  /** Peer ids (base58btc, as libp2p prints them) of the requester and of the signing worker. */
  requester: string
  worker: string
  /** Lowercase hex sha256 digests: the ONNX bytes, and the canonical input and output tensor lists. */
  modelSha256: string
  inputsSha256: string
  outputsSha256: string
  backend: string
  /** Wall-clock ms since the Unix epoch on the worker: when it took the task and when it answered. */
  startedAt: number
  endedAt: number
}

/** A receipt signed alone: every signed field spelled out, and the signature. */
export interface SingleReceipt extends ReceiptFields {
  version: typeof RECEIPT_VERSION
  /** Ed25519 signature over receiptBytes(fields), lowercase hex (128 characters). */
  signature: string
}

/** A receipt signed with its batch: the fields, where it sits in the batch's tree, and the batch's signature. */
export interface BatchReceipt extends ReceiptFields {
  version: typeof RECEIPT_BATCH_VERSION
  /** This receipt's leaf (from 0) among the batch's `batchSize` (2 to MAX_RECEIPT_BATCH). */
  batchIndex: number
  batchSize: number
  /** The leaf's audit path, nearest sibling first, each a lowercase hex sha256. */
  path: string[]
  /** Ed25519 signature over batchReceiptBytes(batchSize, root), lowercase hex (128 characters). */
  signature: string
}

/** A receipt as exported and kept; both kinds verify offline with the worker's public key alone. */
export type Receipt = SingleReceipt | BatchReceipt

/** Signs with the worker's private key (libp2p: `privateKey.sign`). */
export type ReceiptSign = (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>

/** Checks a signature with one worker's public key (libp2p: `publicKey.verify`). */
export type ReceiptVerify = (bytes: Uint8Array, signature: Uint8Array) => boolean | Promise<boolean>

/** A receipt that is not shaped as the layout requires (before any signature is checked). */
export class ReceiptFormatError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ReceiptFormatError'
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/
const SIGNATURE_HEX = /^[0-9a-f]{128}$/
const MAX_U64 = 2n ** 64n - 1n
const encoder = new TextEncoder()

/** Byte runs at most this long are copied into the writer's buffer; longer ones (tensor data) are kept by reference. */
const COPY_MAX = 64

/**
 * Appends big-endian integers and length-prefixed strings to a growing buffer, to be joined or
 * hashed. Small fields go into one buffer, so that a receipt costs a few allocations and hash
 * updates rather than one per field (node:crypto's update has a fixed cost per call).
 */
class Writer {
  /** Finished runs, in order: slices of earlier buffers and large byte runs as given. */
  private readonly parts: Uint8Array[] = []
  private buf = new Uint8Array(256)
  private view = new DataView(this.buf.buffer)
  /** Where the run not yet in `parts` starts in `buf`, and where the next byte goes. */
  private from = 0
  private at = 0
  private size = 0

  bytes (b: Uint8Array): this {
    if (b.byteLength <= COPY_MAX) {
      this.room(b.byteLength)
      this.buf.set(b, this.at)
      this.at += b.byteLength
    } else {
      this.cut()
      this.parts.push(b)
    }
    this.size += b.byteLength
    return this
  }

  u32 (n: number): this {
    this.room(4)
    this.view.setUint32(this.at, n)
    this.at += 4
    this.size += 4
    return this
  }

  u64 (n: number | bigint): this {
    this.room(8)
    if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) {
      this.view.setUint32(this.at, Math.floor(n / 2 ** 32))
      this.view.setUint32(this.at + 4, n >>> 0)
    } else {
      const v = BigInt(n)
      if (v < 0n || v > MAX_U64) throw new ReceiptFormatError(`${n} does not fit an unsigned 64-bit integer`)
      this.view.setBigUint64(this.at, v)
    }
    this.at += 8
    this.size += 8
    return this
  }

  /** u32 byte length, then the UTF-8 bytes. */
  string (s: string): this {
    this.room(4 + 3 * s.length) // UTF-8 takes at most 3 bytes per UTF-16 code unit
    const { written } = encoder.encodeInto(s, this.buf.subarray(this.at + 4))
    this.view.setUint32(this.at, written)
    this.at += 4 + written
    this.size += 4 + written
    return this
  }

  finish (): Uint8Array {
    this.cut()
    if (this.parts.length === 1) return this.parts[0]
    const out = new Uint8Array(this.size)
    let offset = 0
    for (const p of this.parts) {
      out.set(p, offset)
      offset += p.byteLength
    }
    return out
  }

  /** Hashes what was written without joining it into one buffer (tensor data can be large). */
  digest (): Uint8Array {
    this.cut()
    const h = syncSha256()
    for (const p of this.parts) h.update(p)
    return h.digest()
  }

  /** Makes room for `n` more bytes in `buf`: a new buffer once it is full (what was written stays where it is). */
  private room (n: number): void {
    if (this.at + n <= this.buf.byteLength) return
    this.cut()
    this.buf = new Uint8Array(Math.max(256, n))
    this.view = new DataView(this.buf.buffer)
    this.from = this.at = 0
  }

  /** Ends the current run of small fields: it becomes a part of its own. */
  private cut (): void {
    if (this.at === this.from) return
    this.parts.push(this.buf.subarray(this.from, this.at))
    this.from = this.at
  }
}

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.byteLength - b.byteLength
}

/**
 * sha256 of a tensor list's canonical encoding: u32 count, then each tensor in ascending order of
 * its UTF-8 name bytes as name (u32 length + UTF-8), dtype (u32 length + its lowercase name),
 * u32 dim count, each dim as u64, u64 data length, the raw little-endian data. All big-endian.
 */
export function tensorsDigest (tensors: readonly WireTensor[]): Uint8Array {
  const named = tensors.map(t => ({ t, name: encoder.encode(t.name) })).sort((a, b) => compareBytes(a.name, b.name))
  const w = new Writer().u32(named.length)
  for (const { t, name } of named) {
    w.u32(name.byteLength).bytes(name).string(t.dtype).u32(t.dims.length)
    for (const d of t.dims) w.u64(d)
    w.u64(t.data.byteLength).bytes(t.data)
  }
  return w.digest()
}

/** tensorsDigest as lowercase hex. */
export function tensorsSha256 (tensors: readonly WireTensor[]): string {
  return bytesToHex(tensorsDigest(tensors))
}

function checkTime (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ReceiptFormatError(`${what} must be a whole number of ms ≥ 0, not ${String(value)}`)
  return value
}

function checkDigest (value: unknown, what: string): string {
  if (typeof value !== 'string' || !SHA256_HEX.test(value)) throw new ReceiptFormatError(`${what} must be 64 lowercase hex characters`)
  return value
}

function checkString (value: unknown, what: string): string {
  if (typeof value !== 'string') throw new ReceiptFormatError(`${what} must be a string`)
  return value
}

/**
 * The bytes a worker signs: the version string, job id, task id, requester, worker and backend as
 * u32 length + UTF-8, the three digests as raw 32 bytes, the two times as u64; all big-endian,
 * in the order of docs/PROTOCOL.md ("Receipts").
 */
export function receiptBytes (f: ReceiptFields): Uint8Array {
  return new Writer()
    .string(RECEIPT_VERSION)
    .string(f.jobId)
    .string(f.taskId)
    .string(f.requester)
    .string(f.worker)
    .bytes(hexToBytes(checkDigest(f.modelSha256, 'modelSha256')))
    .bytes(hexToBytes(checkDigest(f.inputsSha256, 'inputsSha256')))
    .bytes(hexToBytes(checkDigest(f.outputsSha256, 'outputsSha256')))
    .string(f.backend)
    .u64(checkTime(f.startedAt, 'startedAt'))
    .u64(checkTime(f.endedAt, 'endedAt'))
    .finish()
}

/**
 * The bytes a batch's signature covers: the receipt/2 version string (u32 length + UTF-8), the
 * batch size as u32 and the Merkle root's 32 bytes, big-endian as everywhere here.
 */
export function batchReceiptBytes (batchSize: number, root: Uint8Array): Uint8Array {
  return new Writer().string(RECEIPT_BATCH_VERSION).u32(batchSize).bytes(root).finish()
}

/** Signs `fields` and returns the full receipt. */
export async function signReceipt (fields: ReceiptFields, sign: ReceiptSign): Promise<SingleReceipt> {
  const signature = await sign(receiptBytes(fields))
  return { version: RECEIPT_VERSION, ...pickFields(fields), signature: bytesToHex(signature) }
}

/**
 * Signs several receipts with one signature: a receipt/2 batch for 2 to MAX_RECEIPT_BATCH of them,
 * a plain receipt/1 for one alone. Receipts come back in the order of `batch`.
 */
export async function signReceipts (batch: readonly ReceiptFields[], sign: ReceiptSign): Promise<Receipt[]> {
  if (batch.length === 1) return [await signReceipt(batch[0], sign)]
  if (batch.length === 0 || batch.length > MAX_RECEIPT_BATCH) throw new RangeError(`a receipt batch holds 1 to ${MAX_RECEIPT_BATCH} receipts, not ${batch.length}`)
  const { root, paths } = merkleTree(batch.map(f => leafHash(receiptBytes(f))))
  const signature = bytesToHex(await sign(batchReceiptBytes(batch.length, root)))
  return batch.map((f, i) => ({
    version: RECEIPT_BATCH_VERSION,
    ...pickFields(f),
    batchIndex: i,
    batchSize: batch.length,
    path: paths[i].map(bytesToHex),
    signature
  }))
}

/** The bytes `receipt`'s signature must cover, or undefined when its shape cannot be right. */
function signedBytes (receipt: Receipt): Uint8Array | undefined {
  if (!SIGNATURE_HEX.test(receipt.signature)) return undefined
  try {
    if (receipt.version === RECEIPT_VERSION) return receiptBytes(receipt)
    if (receipt.version !== RECEIPT_BATCH_VERSION) return undefined
    const { batchIndex, batchSize, path } = receipt
    if (!Number.isInteger(batchSize) || batchSize < 2 || batchSize > MAX_RECEIPT_BATCH) return undefined
    if (!Array.isArray(path) || path.length > MAX_RECEIPT_PATH || !path.every(h => typeof h === 'string' && SHA256_HEX.test(h))) return undefined
    const root = rootFromPath(leafHash(receiptBytes(receipt)), batchIndex, batchSize, path.map(hexToBytes))
    return root == null ? undefined : batchReceiptBytes(batchSize, root)
  } catch (err) {
    if (err instanceof ReceiptFormatError) return undefined
    throw err
  }
}

/** Whether `receipt`'s signature verifies over its fields (and, for a batch receipt, its audit path); false too when it is malformed. */
export async function verifyReceipt (receipt: Receipt, verify: ReceiptVerify): Promise<boolean> {
  const bytes = signedBytes(receipt)
  if (bytes == null) return false
  try {
    return await verify(bytes, hexToBytes(receipt.signature))
  } catch {
    return false // a verifier that throws on a malformed signature has still said no
  }
}

/**
 * `verify` (one worker's key: its answer depends on the bytes and the signature alone),
 * remembering its last few answers: the receipts of one batch arrive together with one signature
 * over the same bytes, so a requester checks that signature once. An answer is reused only for
 * the same signature over byte-identical bytes.
 */
export function rememberingVerify (verify: ReceiptVerify, capacity = 8): ReceiptVerify {
  const recent = new Map<string, { bytes: Uint8Array, ok: Promise<boolean> }>()
  return async (bytes, signature) => {
    const key = bytesToHex(signature)
    const hit = recent.get(key)
    if (hit != null && bytesEqual(hit.bytes, bytes)) return await hit.ok
    const ok = (async () => await verify(bytes, signature))().catch(() => false)
    recent.delete(key)
    recent.set(key, { bytes, ok })
    if (recent.size > capacity) recent.delete(recent.keys().next().value!)
    return await ok
  }
}

function pickFields (f: ReceiptFields): ReceiptFields {
  return {
    jobId: f.jobId,
    taskId: f.taskId,
    requester: f.requester,
    worker: f.worker,
    modelSha256: f.modelSha256,
    inputsSha256: f.inputsSha256,
    outputsSha256: f.outputsSha256,
    backend: f.backend,
    startedAt: f.startedAt,
    endedAt: f.endedAt
  }
}

/** Reads a receipt from parsed JSON (an export), checking every field's type and format; unknown fields are dropped. */
export function parseReceipt (value: unknown): Receipt {
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new ReceiptFormatError('a receipt must be a JSON object')
  const r = value as Record<string, unknown>
  if (r.version !== RECEIPT_VERSION && r.version !== RECEIPT_BATCH_VERSION) throw new ReceiptFormatError(`unknown receipt version ${JSON.stringify(r.version)} (expected "${RECEIPT_VERSION}" or "${RECEIPT_BATCH_VERSION}")`)
  if (typeof r.signature !== 'string' || !SIGNATURE_HEX.test(r.signature)) throw new ReceiptFormatError('signature must be 128 lowercase hex characters')
  const fields = parseFields(r)
  if (r.version === RECEIPT_VERSION) return { version: RECEIPT_VERSION, ...fields, signature: r.signature }
  if (typeof r.batchSize !== 'number' || !Number.isInteger(r.batchSize) || r.batchSize < 2 || r.batchSize > MAX_RECEIPT_BATCH) throw new ReceiptFormatError(`batchSize must be a whole number from 2 to ${MAX_RECEIPT_BATCH}`)
  if (typeof r.batchIndex !== 'number' || !Number.isInteger(r.batchIndex) || r.batchIndex < 0 || r.batchIndex >= r.batchSize) throw new ReceiptFormatError('batchIndex must be a whole number below batchSize')
  if (!Array.isArray(r.path) || r.path.length > MAX_RECEIPT_PATH) throw new ReceiptFormatError(`path must be a list of at most ${MAX_RECEIPT_PATH} digests`)
  const path = r.path.map((h: unknown, i) => checkDigest(h, `path[${i}]`))
  return { version: RECEIPT_BATCH_VERSION, ...fields, batchIndex: r.batchIndex, batchSize: r.batchSize, path, signature: r.signature }
}

function parseFields (r: Record<string, unknown>): ReceiptFields {
  return {
    jobId: checkString(r.jobId, 'jobId'),
    taskId: checkString(r.taskId, 'taskId'),
    requester: checkString(r.requester, 'requester'),
    worker: checkString(r.worker, 'worker'),
    modelSha256: checkDigest(r.modelSha256, 'modelSha256'),
    inputsSha256: checkDigest(r.inputsSha256, 'inputsSha256'),
    outputsSha256: checkDigest(r.outputsSha256, 'outputsSha256'),
    backend: checkString(r.backend, 'backend'),
    startedAt: checkTime(r.startedAt, 'startedAt'),
    endedAt: checkTime(r.endedAt, 'endedAt')
  }
}

/** Model transfer protocol (/p2p-ai-agents/model/1.0.0): its name, limits, shared types and checked decoding. */
import { ModelReply, ModelRequest } from './pb/model.js'
import { TaskError } from '../errors.js'

export const MODEL_PROTOCOL = '/p2p-ai-agents/model/1.0.0'
/** Bytes of model per chunk frame: small enough to interleave with task frames on a busy connection. */
export const MODEL_CHUNK_BYTES = 64 * 1024
/** Largest model a peer fetches or serves unless configured otherwise. */
export const DEFAULT_MAX_MODEL_BYTES = 256 * 1024 * 1024
export const SHA256_HEX = /^[0-9a-f]{64}$/

/** Where a holder reads the models it serves; undefined when it does not have one. */
export type ModelSource = (sha256: string) => Promise<Uint8Array | undefined>

export interface TransferProgress {
  received: number
  size: number
}

/** A model request as the holder uses it, checked. */
export interface CheckedModelRequest {
  sha256: string
  offset: number
}

function bad (message: string): TaskError {
  return new TaskError('bad-request', message)
}

/** Decodes and checks a ModelRequest body; anything malformed is a `bad-request` TaskError. */
export function decodeModelRequest (body: Uint8Array): CheckedModelRequest {
  let r: ModelRequest
  try {
    r = ModelRequest.decode(body)
  } catch (err) {
    throw bad(`malformed model request: ${(err as Error).message}`)
  }
  if (!SHA256_HEX.test(r.sha256)) throw bad('sha256 must be 64 lowercase hex digits')
  const offset = Number(r.offset)
  if (!Number.isSafeInteger(offset)) throw bad(`offset ${r.offset} is out of range`)
  return { sha256: r.sha256, offset }
}

/**
 * Decodes a ModelReply body and checks it carries exactly one of header, chunk or error, with a
 * size a JS number holds exactly; anything else is a `bad-request` TaskError.
 */
export function decodeModelReply (body: Uint8Array): ModelReply {
  let r: ModelReply
  try {
    r = ModelReply.decode(body)
  } catch (err) {
    throw bad(`malformed model reply: ${(err as Error).message}`)
  }
  const set = (r.header != null ? 1 : 0) + (r.chunk != null ? 1 : 0) + (r.error != null ? 1 : 0)
  if (set !== 1) throw bad(`a model reply must carry exactly one of header, chunk or error, this one carries ${set}`)
  if (r.header != null && r.header.size > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`model size ${r.header.size} is out of range`)
  return r
}

/** Model transfer protocol (/p2p-ai-agents/model/1.0.0): its name, limits and shared types. */

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

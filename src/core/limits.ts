/** Size limits checked before anything is allocated; both sides enforce them. */
export interface ProtocolLimits {
  /** Largest frame accepted, in bytes (length prefix checked before buffering). */
  maxFrameBytes: number
  /** Most input or output tensors per task. */
  maxTensors: number
  /** Most dimensions per tensor. */
  maxDims: number
  /** Most elements per tensor. */
  maxElements: number
  /** Longest id or name string. */
  maxIdLength: number
}

export const DEFAULT_LIMITS: Readonly<ProtocolLimits> = {
  maxFrameBytes: 32 * 1024 * 1024,
  maxTensors: 64,
  maxDims: 8,
  maxElements: 16 * 1024 * 1024,
  maxIdLength: 128
}

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

/**
 * Bounds on frames that have started to arrive but are not complete. A frame of N bytes (its
 * length prefix says N) must arrive within `floorMs + N / minBytesPerSecond` of its first byte,
 * or its stream is reset; and what unfinished frames hold is capped per remote peer and in all.
 */
export interface UnfinishedFrameLimits {
  /** Time every frame gets from its first byte, whatever its size, ms. */
  floorMs: number
  /** Slowest average rate a frame may arrive at beyond the floor, bytes per second. */
  minBytesPerSecond: number
  /** Most bytes one remote peer may hold in unfinished frames, across all its streams. */
  maxBytesPerPeer: number
  /** Most bytes all remote peers together may hold in unfinished frames. */
  maxBytesTotal: number
}

export const DEFAULT_UNFINISHED_FRAME_LIMITS: Readonly<UnfinishedFrameLimits> = {
  // 10 s, plus 1 s per 128 KiB (1 Mbit/s): a 32 MiB frame gets 266 s, a 1 MiB one 18 s.
  floorMs: 10_000,
  minBytesPerSecond: 128 * 1024,
  // One frame of the largest size and half another: a requester sends frames one at a time per stream.
  maxBytesPerPeer: 48 * 1024 * 1024,
  maxBytesTotal: 256 * 1024 * 1024
}

/**
 * Time bounds on one model transfer, applied by both sides: a total deadline that grows with the
 * model's size from a floor, and a minimum rate over each window. A holder trickling a byte every
 * few seconds re-armed a plain no-data timer forever and held the fetcher's task slot with it.
 */

export interface TransferLimits {
  /** The total deadline is never shorter than this (default 30 s). */
  minDeadlineMs?: number
  /** The total deadline allows this rate for the whole model (default 128 KiB/s: 100 MB in 13 min). */
  deadlineBytesPerSecond?: number
  /** Length of each window the minimum rate is measured over (default 15 s). */
  windowMs?: number
  /** Bytes each window must bring, or the rest of the model if less (default 64 KiB: ~4 KiB/s). */
  minBytesPerWindow?: number
}

export const DEFAULT_TRANSFER_LIMITS: Required<TransferLimits> = {
  minDeadlineMs: 30_000,
  deadlineBytesPerSecond: 128 * 1024,
  windowMs: 15_000,
  minBytesPerWindow: 64 * 1024
}

/** The limits with defaults filled in. */
export function transferLimits (limits: TransferLimits = {}): Required<TransferLimits> {
  return { ...DEFAULT_TRANSFER_LIMITS, ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v != null)) }
}

/** The total deadline for a model of `size` bytes. */
export function transferDeadlineMs (size: number, limits: Required<TransferLimits>): number {
  return Math.max(limits.minDeadlineMs, Math.ceil(size / limits.deadlineBytesPerSecond * 1000))
}

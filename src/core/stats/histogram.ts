/**
 * A fixed-size latency histogram with geometric bins: constant memory whatever the task rate, and
 * quantiles within ±10 % (each bin spans a factor of 1.2; a quantile reads as its bin's geometric
 * middle). Exact percentiles would need every sample kept; a dashboard needs the shape, not the digits.
 */

/** Smallest latency told apart (ms); anything below reads as this. */
export const MIN_MS = 0.1
const RATIO = 1.2
/** 0.1 ms · 1.2^80 ≈ 21 min: the last bin holds anything longer. */
export const BINS = 80
const LOG_RATIO = Math.log(RATIO)

/** The bin a latency falls in. */
export function binOf (ms: number): number {
  if (!(ms > MIN_MS)) return 0
  return Math.min(BINS - 1, Math.floor(Math.log(ms / MIN_MS) / LOG_RATIO))
}

/** The value a bin stands for: the geometric middle of its bounds. */
export function binValue (bin: number): number {
  return MIN_MS * Math.pow(RATIO, bin + 0.5)
}

/**
 * The q-quantile (0 < q ≤ 1) of the counts in `bins[offset … offset+BINS)`, or undefined when they
 * are all zero: the smallest bin at which the running count reaches q of the total.
 */
export function quantile (bins: ArrayLike<number>, q: number, offset = 0): number | undefined {
  let total = 0
  for (let i = 0; i < BINS; i++) total += bins[offset + i]
  if (total === 0) return undefined
  const rank = q * total
  let seen = 0
  for (let i = 0; i < BINS; i++) {
    seen += bins[offset + i]
    if (seen >= rank) return binValue(i)
  }
  return binValue(BINS - 1)
}

/**
 * What a job's inference time would have cost on a cloud function, so "cheaper than the cloud"
 * is a figure per job rather than a claim.
 *
 * Default price: AWS Lambda, x86, on-demand duration charge, US East (N. Virginia), first tier
 * (the first 6 billion GB-seconds a month): USD 0.0000166667 per GB-second.
 * Source: https://aws.amazon.com/lambda/pricing/ (the figure as published there in 2024–2025; read
 * for this code on 2026-11-29 from copies of that table, not re-fetched from AWS: check it before
 * quoting). The arm64 price is USD 0.0000133334 per GB-second.
 *
 * Default memory: 2 GB. Lambda bills memory × duration and gives CPU in proportion to memory (one
 * full vCPU from 1769 MB); the inference times measured here come from one worker's CPU, so the
 * comparable function needs about one vCPU, and 2 GB also holds the models and onnxruntime.
 *
 * Left out, each of which would make the cloud figure higher, so it is a lower bound: the request
 * charge (USD 0.20 per million calls), rounding each call up to the next millisecond, cold starts
 * (model download and session creation), data transfer, and the free tier (which makes small jobs
 * free on the cloud too). Only inference time counts: queueing and network time on the volunteer
 * side are not billed by a cloud function either.
 */

/** USD per GB-second: AWS Lambda x86 on-demand, us-east-1, first tier (see the module comment). */
export const DEFAULT_PRICE_PER_GB_SECOND = 0.0000166667
/** GB of function memory assumed (about one vCPU on Lambda; see the module comment). */
export const DEFAULT_MEMORY_GB = 2
export const PRICE_SOURCE = 'AWS Lambda x86 on-demand, us-east-1, first tier (aws.amazon.com/lambda/pricing)'
export const PRICE_SOURCE_URL = 'https://aws.amazon.com/lambda/pricing/'

export interface CostOptions {
  /** USD per GB-second (default DEFAULT_PRICE_PER_GB_SECOND). */
  pricePerGbSecond?: number
  /** Function memory in GB (default DEFAULT_MEMORY_GB). */
  memoryGb?: number
}

export interface CloudCost {
  /** USD. */
  usd: number
  gbSeconds: number
  pricePerGbSecond: number
  memoryGb: number
}

/** Thrown for a price, memory size or duration that is not a finite non-negative number. */
export class CostInputError extends RangeError {
  constructor (message: string) {
    super(message)
    this.name = 'CostInputError'
  }
}

function checked (name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new CostInputError(`${name} must be a finite non-negative number, got ${String(value)}`)
  return value
}

/** The cloud function cost of `inferenceMs` of inference (billed as memory × seconds × price). */
export function cloudCost (inferenceMs: number, options: CostOptions = {}): CloudCost {
  const ms = checked('inferenceMs', inferenceMs)
  const pricePerGbSecond = checked('pricePerGbSecond', options.pricePerGbSecond ?? DEFAULT_PRICE_PER_GB_SECOND)
  const memoryGb = checked('memoryGb', options.memoryGb ?? DEFAULT_MEMORY_GB)
  const gbSeconds = memoryGb * ms / 1000
  return { usd: gbSeconds * pricePerGbSecond, gbSeconds, pricePerGbSecond, memoryGb }
}

/** "$0.0042", "$12.35", "< $0.000001": enough digits that a small job's figure is not shown as $0.00. */
export function formatUsd (usd: number): string {
  if (!Number.isFinite(usd) || usd < 0) return '—'
  if (usd === 0) return '$0'
  if (usd < 0.000001) return '< $0.000001'
  if (usd >= 1) return `$${usd.toFixed(2)}`
  // Two significant digits below a dollar.
  const digits = Math.min(6, Math.max(2, 1 - Math.floor(Math.log10(usd))))
  return `$${usd.toFixed(digits)}`
}

/** The assumptions behind a figure, in words, to show next to it. */
export function describeCost (cost: CloudCost): string {
  return `${cost.gbSeconds.toFixed(1)} GB-s at $${cost.pricePerGbSecond} per GB-second with ${cost.memoryGb} GB of memory; request charges, cold starts and the free tier left out`
}

/**
 * A job's verification level in words, the same on the page and in the CLIs, so a requester knows
 * what "verified" means for the results in front of them.
 */
import type { DiversityMode } from './diversity.js'

export interface VerificationSettings {
  replicas: number
  adaptive: boolean
  /** Share of decided tasks the requester recomputes itself (0 = none). */
  spotCheck: number
  diversity: DiversityMode
}

/** Default share of decided tasks a requester recomputes: 1 in 20. */
export const DEFAULT_SPOT_CHECK = 0.05

const INDEPENDENT: Record<DiversityMode, string> = {
  standard: 'workers (workers on one public host or /24, IPv6 /48, network count as one; private and loopback addresses count as your own network)',
  strict: 'workers (workers on one host or network, or reached through one relay, count as one)',
  lan: 'workers (LAN mode: every worker counts on its own, whatever its address)'
}

export function describeVerification (v: VerificationSettings): string {
  const parts: string[] = []
  if (v.replicas <= 1 && !v.adaptive) {
    parts.push('each result comes from one worker, unchecked by others')
  } else if (v.adaptive) {
    parts.push(`results from new workers are checked by ${Math.max(2, v.replicas)} independent ${INDEPENDENT[v.diversity]}; trusted workers are spot-checked by others`)
  } else {
    parts.push(`each result must agree across ${v.replicas} independent ${INDEPENDENT[v.diversity]}`)
  }
  parts.push('results that do not match the model\'s declared outputs are rejected')
  if (v.spotCheck > 0) {
    parts.push(`${formatShare(v.spotCheck)} of results are recomputed on this machine; a worker caught lying loses every vote it cast in the job and its results are recomputed`)
  } else {
    parts.push('no results are recomputed on this machine (spot checks off)')
  }
  return parts.join('; ')
}

function formatShare (f: number): string {
  const pct = f * 100
  return `${pct >= 10 || Number.isInteger(pct) ? pct.toFixed(0) : pct.toFixed(1)} %`
}

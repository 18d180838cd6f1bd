/** How the page words a job's figures: its state, whether an ETA means anything, why it is blocked. */
import { isTerminalState } from '../../core/job-store.js'
import type { JobState } from '../../core/job-store.js'
import type { RunningIn } from '../../browser/batch.js'

/** What a job's progress says about it being stuck (JobProgress.blocked, src/core/job-blocked.ts). */
export interface BlockedView {
  code: string
  message: string
  /** When it became blocked (Date.now() ms, as the job runner keeps it). */
  sinceMs: number
}

/** The figures an ETA is made from. */
export interface RateView {
  done: number
  total: number
  failed: number
  tasksPerSec: number
  etaSeconds: number
  blocked?: BlockedView
}

/**
 * Below this rate (one decision per second, over the runner's 5 s window) an ETA is a guess from
 * a handful of results; a batch with the relay down trickled in on this tab alone and showed
 * "ETA 11990 s".
 */
export const MIN_ETA_RATE = 1
/** An ETA longer than a day says nothing useful either. */
export const MAX_ETA_SECONDS = 24 * 3600

/** "ETA 42 s", "ETA 3 min", or undefined when an estimate would mean nothing (blocked, too slow, finished). */
export function etaText (p: RateView): string | undefined {
  if (p.blocked != null) return undefined
  if (p.done + p.failed >= p.total) return undefined
  if (!(p.tasksPerSec >= MIN_ETA_RATE) || !Number.isFinite(p.etaSeconds) || p.etaSeconds > MAX_ETA_SECONDS) return undefined
  const s = Math.max(1, Math.round(p.etaSeconds))
  if (s < 120) return `ETA ${s} s`
  if (s < 7200) return `ETA ${Math.round(s / 60)} min`
  return `ETA ${(s / 3600).toFixed(1)} h`
}

/** "for 12 s", "for 3 min": how long a job has been blocked. */
export function blockedFor (blocked: BlockedView, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - blocked.sinceMs) / 1000))
  return s < 120 ? `for ${s} s` : `for ${Math.round(s / 60)} min`
}

/**
 * The state the page shows: a job another tab of this browser runs says so (no Pause or Resume
 * here); a non-terminal job its user paused is 'paused'; one stored as running with no runner
 * anywhere (stopped while starting, failed to resume, its tab closed) is 'stopped'.
 */
export function shownState (state: JobState, paused: boolean, runningIn: RunningIn): string {
  if (isTerminalState(state)) return state
  if (runningIn === 'another tab') return 'running in another tab'
  if (paused) return 'paused'
  return runningIn === 'this tab' ? state : 'stopped'
}

/** "1.2 s", "3 min 4 s", "2.1 h" of inference. */
export function formatDuration (ms: number): string {
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(1)} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
  return `${(s / 3600).toFixed(1)} h`
}

/** What this browser has given to the network (src/browser/contribution-ledger.ts), as the page shows it. */
import { ContributionLedger } from '../browser/contribution-ledger.js'
import type { Ledger } from '../browser/contribution-ledger.js'
import type { WorkEvent } from '../core/work-queue.js'

const RENDER_MS = 500

function storage (): Storage | undefined {
  try {
    return typeof localStorage === 'undefined' ? undefined : localStorage
  } catch {
    return undefined
  }
}

class ContributionState {
  value = $state.raw<Ledger>({ since: Date.now(), tasks: 0, inferenceMs: 0, byRequester: {} })
  private readonly ledger = new ContributionLedger(storage())
  private timer?: ReturnType<typeof setTimeout>

  constructor () {
    this.value = this.ledger.value
    // Saved when the page goes away too, so the last seconds' work is not lost.
    if (typeof addEventListener === 'function') addEventListener('pagehide', () => { this.ledger.save() })
  }

  /** A work event of this tab's worker (fed from app-state's onWork). */
  record (e: WorkEvent): void {
    this.ledger.record(e)
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      this.value = this.ledger.value
    }, RENDER_MS)
  }
}

export const contribution = new ContributionState()

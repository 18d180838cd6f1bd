/** What this browser has given to the network (src/browser/contribution-ledger.ts), as the page shows it. */
import { ContributionLedger, LEDGER_KEY } from '../browser/contribution-ledger.js'
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
  /** The browser's figures since install, every tab's work included; the work log's totals read them too. */
  value = $state.raw<Ledger>({ since: Date.now(), tasks: 0, failed: 0, inferenceMs: 0, byRequester: {} })
  private readonly ledger = new ContributionLedger(storage())
  private timer?: ReturnType<typeof setTimeout>

  constructor () {
    this.value = this.ledger.value
    if (typeof addEventListener === 'function') {
      // Saved when the page goes away too, so the last seconds' work is not lost.
      addEventListener('pagehide', () => { this.ledger.save() })
      // Another tab of this browser saved its share: the sum changed.
      addEventListener('storage', (e) => { if (e.key == null || e.key.startsWith(LEDGER_KEY)) this.renderSoon() })
    }
  }

  /** The tab's identity slot, once TabPeer knows it: this tab's share is kept under it. */
  bindSlot (slot: number): void {
    this.ledger.bindSlot(slot)
  }

  /** A work event of this tab's worker (fed from app-state's onWork). */
  record (e: WorkEvent): void {
    this.ledger.record(e)
    this.renderSoon()
  }

  private renderSoon (): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      this.value = this.ledger.value
    }, RENDER_MS)
  }
}

export const contribution = new ContributionState()

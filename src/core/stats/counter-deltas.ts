/**
 * Turns the running totals peers advertise (tasks done and failed since they started) into "this
 * many more since the last advert, over that span": the network's rate as far as this peer hears.
 * The first advert of a peer only sets a baseline (when its earlier tasks ran is unknown); a total
 * that went down means the peer restarted, so it becomes the new baseline rather than a negative rate.
 */

export interface CounterDelta {
  ok: number
  failed: number
  fromMs: number
  toMs: number
}

interface Last { done: number, failed: number, atMs: number }

export class CounterDeltas {
  private readonly last = new Map<string, Last>()
  private readonly maxPeers: number

  /** `maxPeers` bounds the memory whatever the number of peers heard (the advert table's own cap by default). */
  constructor (maxPeers = 10_000) {
    this.maxPeers = maxPeers
  }

  /** A peer's advert said `done` and `failed` at `atMs`: what changed since its previous one, if anything. */
  update (peerId: string, done: number, failed: number, atMs: number): CounterDelta | undefined {
    const before = this.last.get(peerId)
    this.last.delete(peerId)
    this.last.set(peerId, { done, failed, atMs })
    if (this.last.size > this.maxPeers) this.last.delete(this.last.keys().next().value!)
    if (before == null || done < before.done || failed < before.failed || atMs < before.atMs) return undefined
    const ok = done - before.done
    const bad = failed - before.failed
    if (ok + bad === 0) return undefined
    return { ok, failed: bad, fromMs: before.atMs, toMs: atMs }
  }

  /** The peer left or expired: a later advert starts a new baseline. */
  forget (peerId: string): void {
    this.last.delete(peerId)
  }
}

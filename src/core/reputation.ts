/**
 * Peer reputation from cross-checked results. Every time a replicated task is decided, each peer
 * whose result was part of the accepted answer `agree`s and each whose result lost the vote
 * `disagree`s; unverified results (a single replica) change nothing.
 *
 * - score: a Beta posterior mean with disagreements weighted `disagreementWeight` (4) times
 *   heavier than agreements: (agreed + 1) / (agreed + 4 × disagreed + 2). A new peer scores 0.5;
 *   one lie costs about as much as four honest answers earn.
 * - trusted: at least `trustStreak` (20) agreements in a row since its last disagreement (so no
 *   disagreement in its last 20 votes, and at least 20 agreements) and a score ≥ `trustScore`
 *   (0.95). With no disagreement ever that is 20 agreements (score 21/22 ≈ 0.955); one
 *   disagreement needs about 95 agreements before the score is back to 0.95.
 * - spotCheckProbability: 1 for a peer that is not trusted; for a trusted one
 *   max(`spotCheckFloor` 0.03, `spotCheckScale` 10 / streak): 0.5 right after it earns trust,
 *   0.1 after 100 clean votes, the floor of 0.03 from about 334 on. A trusted peer caught lying
 *   once loses trust at once (its streak restarts at 0) and is checked every time again.
 *
 * Records are plain JSON. `streak` (agreements since the last disagreement) is an optional
 * addition to the record; a record stored without it counts as streak = agreed when it never
 * disagreed, else 0 (conservative: the peer re-earns its clean run).
 */

/** Disagreements one conviction counts as: a convicted worker needs about 4 × 25 = 100 agreements to win back a score of 0.5. */
const CONVICTION_WEIGHT = 25

export interface PeerRecord {
  agreed: number
  disagreed: number
  lastSeen: number
  /** Agreements since the last disagreement (optional: derived as above when absent). */
  streak?: number
}

export interface ReputationOptions {
  /** How many agreements one disagreement cancels in the score (default 4). */
  disagreementWeight?: number
  /** Agreements in a row, since the last disagreement, needed for trust (default 20). */
  trustStreak?: number
  /** Minimum score for trust (default 0.95). */
  trustScore?: number
  /** Lowest spot-check probability for a long-trusted peer (default 0.03). */
  spotCheckFloor?: number
  /** Spot-check probability of a trusted peer is min(1, scale / streak) above the floor (default 10). */
  spotCheckScale?: number
}

interface Rec {
  agreed: number
  disagreed: number
  lastSeen: number
  streak: number
}

function count (value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0
}

export class Reputation {
  private readonly records = new Map<string, Rec>()
  private readonly weight: number
  private readonly trustStreak: number
  private readonly trustScore: number
  private readonly floor: number
  private readonly scale: number

  constructor (records?: Record<string, PeerRecord>, options: ReputationOptions = {}) {
    this.weight = options.disagreementWeight ?? 4
    this.trustStreak = options.trustStreak ?? 20
    this.trustScore = options.trustScore ?? 0.95
    this.floor = options.spotCheckFloor ?? 0.03
    this.scale = options.spotCheckScale ?? 10
    if (!(this.weight >= 1)) throw new RangeError('disagreementWeight must be ≥ 1')
    if (!(this.floor > 0 && this.floor <= 1)) throw new RangeError('spotCheckFloor must be in (0, 1]')
    for (const [peerId, r] of Object.entries(records ?? {})) {
      if (r == null || typeof r !== 'object') continue
      const agreed = count(r.agreed)
      const disagreed = count(r.disagreed)
      const lastSeen = typeof r.lastSeen === 'number' && Number.isFinite(r.lastSeen) ? r.lastSeen : 0
      const streak = r.streak !== undefined ? Math.min(count(r.streak), agreed) : disagreed === 0 ? agreed : 0
      this.records.set(peerId, { agreed, disagreed, lastSeen, streak })
    }
  }

  /** A copy of the peer's record; zeros for an unknown peer. */
  record (peerId: string): PeerRecord {
    const r = this.records.get(peerId)
    return r != null ? { ...r } : { agreed: 0, disagreed: 0, lastSeen: 0, streak: 0 }
  }

  /** Peers with a record. */
  peers (): string[] {
    return [...this.records.keys()]
  }

  /** Its result matched the accepted one. */
  agree (peerId: string, now: number): void {
    const r = this.get(peerId)
    r.agreed++
    r.streak++
    r.lastSeen = now
  }

  /** Its result lost a vote. */
  disagree (peerId: string, now: number): void {
    const r = this.get(peerId)
    r.disagreed++
    r.streak = 0
    r.lastSeen = now
  }

  /**
   * The requester caught it lying by recomputing a task itself: proof, not a vote. Its agreements
   * are void (colluders earn them by agreeing with each other) and it counts as CONVICTION_WEIGHT
   * disagreements, enough to keep it untrusted and excluded for a long time.
   */
  convict (peerId: string, now: number): void {
    const r = this.get(peerId)
    r.agreed = 0
    r.disagreed += CONVICTION_WEIGHT
    r.streak = 0
    r.lastSeen = now
  }

  /** (agreed + 1) / (agreed + w × disagreed + 2), in (0, 1); 0.5 for a new peer. */
  score (peerId: string): number {
    const r = this.records.get(peerId)
    if (r == null) return 0.5
    return (r.agreed + 1) / (r.agreed + this.weight * r.disagreed + 2)
  }

  /** ≥ trustStreak agreements since its last disagreement and score ≥ trustScore. */
  trusted (peerId: string): boolean {
    const r = this.records.get(peerId)
    return r != null && r.streak >= this.trustStreak && this.score(peerId) >= this.trustScore
  }

  /** 1 unless trusted; then max(floor, min(1, scale / streak)). */
  spotCheckProbability (peerId: string): number {
    if (!this.trusted(peerId)) return 1
    const streak = this.records.get(peerId)!.streak
    return Math.max(this.floor, Math.min(1, this.scale / streak))
  }

  toJSON (): Record<string, PeerRecord> {
    // fromEntries defines own properties, so even a peer id like "__proto__" stays plain data.
    return Object.fromEntries([...this.records].map(([peerId, r]) => [peerId, { ...r }]))
  }

  private get (peerId: string): Rec {
    let r = this.records.get(peerId)
    if (r == null) {
      r = { agreed: 0, disagreed: 0, lastSeen: 0, streak: 0 }
      this.records.set(peerId, r)
    }
    return r
  }
}

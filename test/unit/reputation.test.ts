import { describe, expect, it } from 'vitest'
import { Reputation } from '../../src/core/reputation.js'
import { liarSimulation } from '../../scripts/sim-scheduler.js'

function agreeTimes (r: Reputation, peer: string, n: number, now = 1): void {
  for (let i = 0; i < n; i++) r.agree(peer, now)
}

describe('Reputation', () => {
  it('knows nothing about a new peer: zeros, score 0.5, not trusted, always checked', () => {
    const r = new Reputation()
    expect(r.record('new')).toEqual({ agreed: 0, disagreed: 0, lastSeen: 0, streak: 0 })
    expect(r.score('new')).toBe(0.5)
    expect(r.trusted('new')).toBe(false)
    expect(r.spotCheckProbability('new')).toBe(1)
    expect(r.toJSON()).toEqual({})
  })

  it('scores with a Beta posterior mean that weighs a disagreement like four agreements', () => {
    const r = new Reputation()
    agreeTimes(r, 'p', 8, 100)
    expect(r.score('p')).toBeCloseTo(9 / 10)
    r.disagree('p', 200)
    expect(r.score('p')).toBeCloseTo(9 / 14)
    expect(r.record('p')).toEqual({ agreed: 8, disagreed: 1, lastSeen: 200, streak: 0 })
    for (let i = 0; i < 50; i++) r.disagree('liar', 1)
    expect(r.score('liar')).toBeGreaterThanOrEqual(0)
    expect(r.score('liar')).toBeLessThan(0.01)
    agreeTimes(r, 'saint', 10_000)
    expect(r.score('saint')).toBeLessThanOrEqual(1)
    expect(r.score('saint')).toBeGreaterThan(0.999)
  })

  it('trusts a peer after 20 clean agreements and withdraws trust at its first disagreement', () => {
    const r = new Reputation()
    agreeTimes(r, 'p', 19)
    expect(r.trusted('p')).toBe(false)
    r.agree('p', 1)
    expect(r.trusted('p')).toBe(true)
    r.disagree('p', 2)
    expect(r.trusted('p')).toBe(false)
    expect(r.spotCheckProbability('p')).toBe(1)
    // 20 agreements in a row are not enough while the score is below 0.95 …
    agreeTimes(r, 'p', 20)
    expect(r.trusted('p')).toBe(false)
    // … the score needs (a + 1) / (a + 6) ≥ 0.95, that is 94 agreements in all with one disagreement.
    agreeTimes(r, 'p', 53)
    expect(r.record('p').agreed).toBe(93)
    expect(r.trusted('p')).toBe(false)
    r.agree('p', 3)
    expect(r.trusted('p')).toBe(true)
  })

  it('spot-checks a trusted peer less the longer its clean run, down to the floor', () => {
    const r = new Reputation()
    agreeTimes(r, 'p', 20)
    expect(r.spotCheckProbability('p')).toBe(0.5)
    agreeTimes(r, 'p', 80)
    expect(r.spotCheckProbability('p')).toBeCloseTo(0.1)
    agreeTimes(r, 'p', 1000)
    expect(r.spotCheckProbability('p')).toBe(0.03)
    const probabilities = [25, 50, 200, 400].map(n => { const q = new Reputation(); agreeTimes(q, 'p', n); return q.spotCheckProbability('p') })
    expect([...probabilities].sort((a, b) => b - a)).toEqual(probabilities)
  })

  it('round-trips through JSON and reads records stored without a streak', () => {
    const r = new Reputation()
    agreeTimes(r, 'a', 30, 5)
    r.disagree('b', 6)
    const json = JSON.parse(JSON.stringify(r.toJSON())) as ReturnType<Reputation['toJSON']>
    const back = new Reputation(json)
    expect(back.toJSON()).toEqual(r.toJSON())
    expect(back.trusted('a')).toBe(true)

    // A store that keeps only agreed/disagreed/lastSeen: a clean record keeps its run, a blemished one restarts it.
    const legacy = new Reputation({ clean: { agreed: 30, disagreed: 0, lastSeen: 1 }, blemished: { agreed: 500, disagreed: 1, lastSeen: 1 } })
    expect(legacy.trusted('clean')).toBe(true)
    expect(legacy.record('blemished').streak).toBe(0)
    expect(legacy.trusted('blemished')).toBe(false)
    agreeTimes(legacy, 'blemished', 20)
    expect(legacy.trusted('blemished')).toBe(true)
  })

  it('sanitises stored records and keeps odd peer ids as plain data', () => {
    const r = new Reputation({ x: { agreed: -3, disagreed: Number.NaN, lastSeen: Infinity, streak: 99 } })
    expect(r.record('x')).toEqual({ agreed: 0, disagreed: 0, lastSeen: 0, streak: 0 })
    r.agree('__proto__', 1)
    const json = r.toJSON()
    expect(Object.getPrototypeOf(json)).toBe(Object.prototype)
    expect(Object.keys(json)).toContain('__proto__')
    expect(new Reputation(JSON.parse(JSON.stringify(json))).record('__proto__').agreed).toBe(1)
  })

  it('returns copies: changing a returned record changes nothing', () => {
    const r = new Reputation()
    r.agree('p', 1)
    r.record('p').agreed = 100
    r.toJSON().p.agreed = 100
    expect(r.record('p').agreed).toBe(1)
  })
})

describe('Reputation.convict', () => {
  it('voids the agreements a colluder earned and leaves it untrusted, far below exclusion', () => {
    const r = new Reputation({ colluder: { agreed: 500, disagreed: 0, lastSeen: 0 } })
    expect(r.trusted('colluder')).toBe(true)
    r.convict('colluder', 10)
    expect(r.trusted('colluder')).toBe(false)
    expect(r.record('colluder')).toMatchObject({ agreed: 0, streak: 0, lastSeen: 10 })
    expect(r.score('colluder')).toBeLessThan(0.02)
    expect(r.spotCheckProbability('colluder')).toBe(1)
  })
})

describe('Reputation under the scheduler with one liar', () => {
  it("drops the liar's score, raises the honest peers' and never blames an honest peer", () => {
    const result = liarSimulation({ workers: 6, liarFraction: 1 / 6, tasks: 400, adaptive: false, replicas: 2, seed: 3 })
    const [liar, ...honest] = result.peers
    expect(liar.liar).toBe(true)
    expect(liar.agreed).toBe(0)
    // Caught on its first votes, it is excluded from the job (scheduler excludeBelow), so it loses only a few.
    expect(liar.disagreed).toBeGreaterThan(0)
    expect(liar.score).toBeLessThan(0.3)
    expect(liar.trusted).toBe(false)
    for (const h of honest) {
      expect(h.liar).toBe(false)
      expect(h.disagreed).toBe(0)
      expect(h.agreed).toBeGreaterThan(50)
      expect(h.score).toBeGreaterThan(0.95)
      expect(h.trusted).toBe(true)
    }
    expect(result.honestFlagged).toBe(0)
    expect(result.caughtFraction).toBe(1)
    expect(result.wrongDecisions).toBe(0)
    expect(result.decided).toBe(400)
  })
})

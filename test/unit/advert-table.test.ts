/** The advert table: the newest advert of every peer heard of, forgotten on leave, silence or overflow. */
import { describe, expect, it } from 'vitest'
import { AdvertTable, DEFAULT_ADVERT_TTL_MS } from '../../src/core/discovery/table.js'
import { NOT_A_WORKER } from '../../src/core/discovery/advert.js'
import { FakeClock } from '../helpers/fake-clock.js'
import type { Advert } from '../../src/core/discovery/advert.js'
import type { AdvertEnvelope } from '../../src/core/discovery/codec.js'
import type { AdvertEvent, AdvertTableOptions, GoneEvent } from '../../src/core/discovery/table.js'

const advert = (freeSlots: number): Advert => ({ ...NOT_A_WORKER, kind: 'node', worker: true, slots: 4, freeSlots })
const env = (seq: number, opts: { leaving?: boolean, freeSlots?: number } = {}): AdvertEnvelope =>
  ({ seq, leaving: opts.leaving ?? false, advert: advert(opts.freeSlots ?? seq) })
const signed = (seq: number): Uint8Array => Uint8Array.of(0xa0, seq & 0xff)

function setup (options: Omit<AdvertTableOptions, 'clock'> = {}): { clock: FakeClock, table: AdvertTable, adverts: AdvertEvent[], gone: GoneEvent[] } {
  const clock = new FakeClock(1000)
  const table = new AdvertTable({ clock, ...options })
  const adverts: AdvertEvent[] = []
  const gone: GoneEvent[] = []
  table.addEventListener('advert', e => { adverts.push((e as CustomEvent<AdvertEvent>).detail) })
  table.addEventListener('gone', e => { gone.push((e as CustomEvent<GoneEvent>).detail) })
  return { clock, table, adverts, gone }
}

const ids = (table: AdvertTable): string[] => [...table.values()].map(e => e.peerId).sort()

describe('advert table: newest seq wins', () => {
  it('takes a first advert as new and keeps what a sync answer passes on', () => {
    const { table, adverts, gone } = setup()
    expect(table.accept('A', env(5), signed(5))).toBe('accepted')
    expect(table.size).toBe(1)
    expect(table.get('A')).toEqual({ peerId: 'A', seq: 5, advert: advert(5), signed: signed(5), heardAt: 1000 })
    expect(adverts).toEqual([{ peerId: 'A', advert: advert(5), isNew: true }])
    expect(gone).toEqual([])
  })

  it('replaces an advert with a newer seq, as an update rather than a new peer', () => {
    const { clock, table, adverts } = setup()
    table.accept('A', env(5), signed(5))
    clock.advance(1000)
    expect(table.accept('A', env(9), signed(9))).toBe('accepted')
    expect(table.size).toBe(1)
    expect(table.get('A')).toEqual({ peerId: 'A', seq: 9, advert: advert(9), signed: signed(9), heardAt: 2000 })
    expect(adverts.map(a => [a.peerId, a.advert.freeSlots, a.isNew])).toEqual([['A', 5, true], ['A', 9, false]])
  })

  it('ignores an equal or older seq as stale, however late it comes, and emits nothing', () => {
    const { clock, table, adverts, gone } = setup()
    table.accept('A', env(5), signed(5))
    clock.advance(10_000)
    expect(table.accept('A', env(5, { freeSlots: 0 }), signed(5))).toBe('stale')
    expect(table.accept('A', env(4), signed(4))).toBe('stale')
    expect(table.accept('A', env(0), signed(0))).toBe('stale')
    expect(table.get('A')).toMatchObject({ seq: 5, advert: advert(5), heardAt: 1000 })
    expect(adverts).toHaveLength(1)
    expect(gone).toEqual([])
  })

  it('keeps each peer apart: one peer\'s seq says nothing about another\'s', () => {
    const { table } = setup()
    table.accept('A', env(100), signed(100))
    expect(table.accept('B', env(1), signed(1))).toBe('accepted')
    expect(ids(table)).toEqual(['A', 'B'])
  })
})

describe('advert table: flood control', () => {
  it('ignores a newer advert sooner than minIntervalMs after the last one taken', () => {
    const { clock, table, adverts } = setup({ minIntervalMs: 500 })
    table.accept('A', env(1), signed(1))
    clock.advance(499)
    expect(table.accept('A', env(2), signed(2))).toBe('too-soon')
    expect(table.get('A')).toMatchObject({ seq: 1, heardAt: 1000 })
    expect(adverts).toHaveLength(1)
    // Measured from the last advert taken, not the last one refused.
    clock.advance(1)
    expect(table.accept('A', env(3), signed(3))).toBe('accepted')
    expect(table.get('A')).toMatchObject({ seq: 3, heardAt: 1500 })
    expect(adverts).toHaveLength(2)
  })

  it('does not hold one peer\'s flood against another', () => {
    const { clock, table } = setup({ minIntervalMs: 500 })
    table.accept('A', env(1), signed(1))
    clock.advance(10)
    expect(table.accept('B', env(1), signed(1))).toBe('accepted')
  })

  it('uses 250 ms by default', () => {
    const { clock, table } = setup()
    table.accept('A', env(1), signed(1))
    clock.advance(249)
    expect(table.accept('A', env(2), signed(2))).toBe('too-soon')
    clock.advance(1)
    expect(table.accept('A', env(3), signed(3))).toBe('accepted')
  })
})

describe('advert table: leaving', () => {
  it('forgets a peer that says it is leaving and tells listeners why', () => {
    const { clock, table, adverts, gone } = setup()
    table.accept('A', env(1), signed(1))
    table.accept('B', env(1), signed(1))
    clock.advance(5000)
    expect(table.accept('A', env(2, { leaving: true }), signed(2))).toBe('left')
    expect(table.get('A')).toBeUndefined()
    expect(ids(table)).toEqual(['B'])
    expect(gone).toEqual([{ peerId: 'A', reason: 'left' }])
    expect(adverts).toHaveLength(2) // the leaving advert is no advert
  })

  it('honours a leaving advert even right after the last advert', () => {
    const { clock, table, gone } = setup({ minIntervalMs: 1000 })
    table.accept('A', env(1), signed(1))
    clock.advance(1)
    expect(table.accept('A', env(2, { leaving: true }), signed(2))).toBe('left')
    expect(table.size).toBe(0)
    expect(gone).toEqual([{ peerId: 'A', reason: 'left' }])
  })

  it('ignores a leaving advert with an older or equal seq: a replay cannot remove a live peer', () => {
    const { clock, table, gone } = setup()
    table.accept('A', env(7), signed(7))
    clock.advance(5000)
    expect(table.accept('A', env(6, { leaving: true }), signed(6))).toBe('stale')
    expect(table.accept('A', env(7, { leaving: true }), signed(7))).toBe('stale')
    expect(table.get('A')).toMatchObject({ seq: 7 })
    expect(gone).toEqual([])
  })

  it('says left for a peer it never knew, without an event', () => {
    const { table, adverts, gone } = setup()
    expect(table.accept('Z', env(3, { leaving: true }), signed(3))).toBe('left')
    expect(table.size).toBe(0)
    expect(adverts).toEqual([])
    expect(gone).toEqual([])
  })

  it('takes a peer back as new after it left', () => {
    const { clock, table, adverts } = setup()
    table.accept('A', env(1), signed(1))
    table.accept('A', env(2, { leaving: true }), signed(2))
    clock.advance(1000)
    expect(table.accept('A', env(3), signed(3))).toBe('accepted')
    expect(adverts.at(-1)).toEqual({ peerId: 'A', advert: advert(3), isNew: true })
  })
})

describe('advert table: expiry', () => {
  it('forgets a peer silent for ttlMs, and only the silent one', () => {
    const { clock, table, gone } = setup({ ttlMs: 10_000 })
    table.accept('silent', env(1), signed(1))
    table.accept('chatty', env(1), signed(1))
    // chatty publishes every 3 s.
    for (let seq = 2; seq <= 4; seq++) {
      clock.advance(3000)
      table.accept('chatty', env(seq), signed(seq))
    }
    clock.advance(10_000 - 9000 - 1) // silent for ttl - 1
    expect(ids(table)).toEqual(['chatty', 'silent'])
    expect(gone).toEqual([])
    clock.advance(2) // silent for ttl + 1
    expect(ids(table)).toEqual(['chatty'])
    expect(gone).toEqual([{ peerId: 'silent', reason: 'expired' }])

    // chatty keeps publishing for a long while and stays.
    for (let seq = 5; seq < 40; seq++) {
      clock.advance(3000)
      expect(table.accept('chatty', env(seq), signed(seq))).toBe('accepted')
    }
    expect(ids(table)).toEqual(['chatty'])
    expect(gone).toHaveLength(1)

    // Then it stops, and goes one ttl after its last advert.
    clock.advance(10_000 - 1)
    expect(ids(table)).toEqual(['chatty'])
    clock.advance(2)
    expect(table.size).toBe(0)
    expect(gone).toEqual([{ peerId: 'silent', reason: 'expired' }, { peerId: 'chatty', reason: 'expired' }])
  })

  it('expires each peer on its own schedule, and each only once', () => {
    const { clock, table, gone } = setup({ ttlMs: 1000 })
    table.accept('A', env(1), signed(1))
    clock.advance(300)
    table.accept('B', env(1), signed(1))
    clock.advance(300)
    table.accept('C', env(1), signed(1))
    clock.advance(1000 - 600 + 1)
    expect(gone.map(g => g.peerId)).toEqual(['A'])
    clock.advance(300)
    expect(gone.map(g => g.peerId)).toEqual(['A', 'B'])
    clock.advance(300)
    expect(gone).toEqual(['A', 'B', 'C'].map(peerId => ({ peerId, reason: 'expired' })))
    clock.advance(100_000)
    expect(gone).toHaveLength(3)
  })

  it('forgets after DEFAULT_ADVERT_TTL_MS by default', () => {
    const { clock, table } = setup()
    table.accept('A', env(1), signed(1))
    clock.advance(DEFAULT_ADVERT_TTL_MS - 1)
    expect(table.size).toBe(1)
    clock.advance(2)
    expect(table.size).toBe(0)
  })

  it('a refused advert does not keep a peer alive', () => {
    const { clock, table, gone } = setup({ ttlMs: 1000 })
    table.accept('A', env(5), signed(5))
    clock.advance(900)
    expect(table.accept('A', env(5), signed(5))).toBe('stale') // a replay, e.g. from a sync answer
    clock.advance(101)
    expect(table.size).toBe(0)
    expect(gone).toEqual([{ peerId: 'A', reason: 'expired' }])
  })

  it('takes a peer back as new after it expired', () => {
    const { clock, table, adverts } = setup({ ttlMs: 1000 })
    table.accept('A', env(1), signed(1))
    clock.advance(5000)
    expect(table.accept('A', env(2), signed(2))).toBe('accepted')
    expect(adverts.at(-1)?.isNew).toBe(true)
  })

  it('sweep() forgets every silent peer at once', () => {
    const { clock, table, gone } = setup({ ttlMs: 1000 })
    table.accept('A', env(1), signed(1))
    table.accept('B', env(1), signed(1))
    table.stop() // no timer: only the explicit sweep acts
    clock.advance(1001)
    expect(table.size).toBe(2)
    table.sweep()
    expect(table.size).toBe(0)
    expect(gone.map(g => g.reason)).toEqual(['expired', 'expired'])
  })
})

describe('advert table: bounded size', () => {
  it('evicts the longest silent peer to make room, not the oldest added', () => {
    const { clock, table, gone, adverts } = setup({ maxEntries: 3 })
    table.accept('A', env(1), signed(1))
    clock.advance(1000)
    table.accept('B', env(1), signed(1))
    clock.advance(1000)
    table.accept('C', env(1), signed(1))
    clock.advance(1000)
    table.accept('A', env(2), signed(2)) // A speaks again: B is now the longest silent
    clock.advance(1000)
    expect(table.accept('D', env(1), signed(1))).toBe('accepted')
    expect(ids(table)).toEqual(['A', 'C', 'D'])
    expect(gone).toEqual([{ peerId: 'B', reason: 'evicted' }])
    expect(adverts.at(-1)).toEqual({ peerId: 'D', advert: advert(1), isNew: true })

    clock.advance(1000)
    table.accept('E', env(1), signed(1))
    expect(ids(table)).toEqual(['A', 'D', 'E'])
    expect(gone.map(g => g.peerId)).toEqual(['B', 'C'])
  })

  it('does not evict anyone for an update of a known peer, nor for a refused advert', () => {
    const { clock, table, gone } = setup({ maxEntries: 2 })
    table.accept('A', env(1), signed(1))
    table.accept('B', env(1), signed(1))
    clock.advance(1000)
    expect(table.accept('B', env(2), signed(2))).toBe('accepted')
    expect(table.accept('A', env(1), signed(1))).toBe('stale')
    expect(table.accept('A', env(2), signed(2))).toBe('accepted')
    expect(table.accept('C', env(5, { leaving: true }), signed(5))).toBe('left')
    expect(ids(table)).toEqual(['A', 'B'])
    expect(gone).toEqual([])
  })

  it('never holds more than maxEntries', () => {
    const { clock, table, gone } = setup({ maxEntries: 5 })
    for (let i = 0; i < 50; i++) {
      clock.advance(10)
      table.accept(`p${i}`, env(1), signed(1))
      expect(table.size).toBeLessThanOrEqual(5)
    }
    expect(ids(table)).toEqual(['p45', 'p46', 'p47', 'p48', 'p49'])
    expect(gone).toHaveLength(45)
    expect(gone.every(g => g.reason === 'evicted')).toBe(true)
  })
})

describe('advert table: timers', () => {
  it('stop() leaves no pending timer, and nothing expires after it', () => {
    const { clock, table, gone } = setup({ ttlMs: 1000 })
    table.accept('A', env(1), signed(1))
    table.accept('B', env(1), signed(1))
    expect(clock.pendingTimers).toBeGreaterThan(0)
    table.stop()
    expect(clock.pendingTimers).toBe(0)
    clock.advance(1_000_000)
    expect(gone).toEqual([])
    table.stop() // twice is fine
    expect(clock.pendingTimers).toBe(0)
  })

  it('holds one timer while it has entries and none once it is empty', () => {
    const { clock, table } = setup({ ttlMs: 1000 })
    expect(clock.pendingTimers).toBe(0)
    for (let i = 0; i < 20; i++) {
      clock.advance(300)
      table.accept(`p${i}`, env(1), signed(1))
      expect(clock.pendingTimers).toBe(1)
    }
    clock.advance(1001)
    expect(table.size).toBe(0)
    expect(clock.pendingTimers).toBe(0)
  })
})

describe('a peer we could not reach', () => {
  it('is gone at once, offered again after 5 s, then after 10 s if it stays unreachable; a newer advert brings it back at once', () => {
    const clock = new FakeClock()
    const table = new AdvertTable({ clock, ttlMs: 1_000_000 })
    const events: string[] = []
    table.addEventListener('advert', (e) => { events.push(`advert ${(e as CustomEvent<AdvertEvent>).detail.isNew ? 'new' : 'update'}`) })
    table.addEventListener('gone', (e) => { events.push(`gone ${(e as CustomEvent<GoneEvent>).detail.reason}`) })
    table.accept('w', { seq: 1, leaving: false, advert: NOT_A_WORKER }, new Uint8Array())
    table.forget('w')
    expect(table.get('w')).toBeUndefined()
    expect([...table.values()]).toEqual([])
    expect([...table.all()].map(e => e.peerId), 'still passed on in sync answers').toEqual(['w'])
    clock.advance(4999)
    expect(table.get('w')).toBeUndefined()
    clock.advance(1)
    expect(table.get('w')?.seq).toBe(1)
    table.forget('w')
    clock.advance(9999)
    expect(table.get('w')).toBeUndefined()
    clock.advance(1)
    expect(table.get('w')).toBeDefined()
    table.forget('w')
    expect(table.accept('w', { seq: 2, leaving: false, advert: NOT_A_WORKER }, new Uint8Array())).toBe('accepted')
    expect(table.get('w')?.seq).toBe(2)
    expect(events).toEqual(['advert new', 'gone unreachable', 'advert new', 'gone unreachable', 'advert new', 'gone unreachable', 'advert new'])
    // Back to the first back-off after the fresh advert.
    table.forget('w')
    clock.advance(5000)
    expect(table.get('w')).toBeDefined()
    table.stop()
    expect(clock.pendingTimers).toBe(0)
  })

  it('that leaves or expires while suspended says gone only once', () => {
    const clock = new FakeClock()
    const table = new AdvertTable({ clock, ttlMs: 3000 })
    const gone: string[] = []
    table.addEventListener('gone', (e) => { gone.push((e as CustomEvent<GoneEvent>).detail.reason) })
    table.accept('w', { seq: 1, leaving: false, advert: NOT_A_WORKER }, new Uint8Array())
    table.forget('w')
    clock.advance(3001)
    expect(table.size).toBe(0)
    clock.advance(10_000)
    expect(table.get('w')).toBeUndefined()
    expect(gone).toEqual(['unreachable'])
    expect(clock.pendingTimers).toBe(0)
  })
})

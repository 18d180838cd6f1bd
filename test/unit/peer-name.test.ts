import { describe, expect, it } from 'vitest'
import { PEER_NAME_SPACE, peerName, shortPeerId } from '../../src/core/peer-name.js'
import { seededRandom } from '../../src/core/random.js'

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** Peer-id-shaped strings: the common "12D3KooW" prefix and 44 random base58 characters. */
function randomIds (count: number, seed: number): string[] {
  const random = seededRandom(seed)
  const ids = new Set<string>()
  while (ids.size < count) {
    let id = '12D3KooW'
    for (let i = 0; i < 44; i++) id += BASE58[Math.floor(random() * BASE58.length)]
    ids.add(id)
  }
  return [...ids]
}

describe('peerName', () => {
  it('is stable: the same id gives the same name on every call and every engine', () => {
    const id = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'
    expect(peerName(id)).toBe(peerName(id))
    // Pinned: a change of word lists or hash would rename every peer people already know.
    expect(peerName(id)).toBe('fierce-lark-e4')
  })

  it('is two words and two hex characters, short enough for a table cell', () => {
    for (const id of randomIds(500, 7)) {
      const name = peerName(id)
      expect(name).toMatch(/^[a-z]+-[a-z]+-[0-9a-f]{2}$/)
      expect(name.length).toBeLessThanOrEqual(22)
    }
  })

  it('names 3,000 random ids with at most a handful of collisions (expected ≈ 1.1 pairs for 2^22 names)', () => {
    expect(PEER_NAME_SPACE).toBe(2 ** 22)
    const ids = randomIds(3000, 42)
    const seen = new Map<string, number>()
    for (const id of ids) seen.set(peerName(id), (seen.get(peerName(id)) ?? 0) + 1)
    const collidingIds = [...seen.values()].filter((n) => n > 1).reduce((a, n) => a + n, 0)
    // Birthday bound: C(3000,2) / 2^22 ≈ 1.07 expected colliding pairs; 0.2 % of ids at most.
    expect(collidingIds).toBeLessThanOrEqual(6)
    expect(seen.size).toBeGreaterThanOrEqual(2997)
  })

  it('differs for ids that differ in one character', () => {
    const a = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'
    const b = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtg'
    expect(peerName(a)).not.toBe(peerName(b))
  })
})

describe('shortPeerId', () => {
  it('keeps the tail that tells peer ids apart', () => {
    expect(shortPeerId('12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf')).toBe('…LvKXtf')
    expect(shortPeerId('abc')).toBe('abc')
  })
})

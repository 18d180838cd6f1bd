/** Which direct connections a peer closes: over its budget, or idle too long; never one carrying work. */
import { describe, expect, it } from 'vitest'
import { connectionsToClose } from '../../src/core/connection-budget.js'
import type { HeldConnection } from '../../src/core/connection-budget.js'

const held = (id: string, lastUsed: number, busy = false): HeldConnection => ({ id, lastUsed, busy })

describe('connection budget', () => {
  it('closes nothing within the budget while every connection was used recently', () => {
    expect(connectionsToClose([held('a', 90), held('b', 95)], 100, { max: 2, idleMs: 60 })).toEqual([])
  })

  it('over the budget, closes the least recently used idle connections first', () => {
    const cs = [held('new', 99), held('old', 10), held('mid', 50), held('older', 5)]
    expect(connectionsToClose(cs, 100, { max: 2, idleMs: 1000 })).toEqual(['older', 'old'])
  })

  it('never closes a connection carrying work, even over the budget (the budget is met as work ends)', () => {
    const cs = [held('a', 1, true), held('b', 2, true), held('c', 3, true)]
    expect(connectionsToClose(cs, 100, { max: 1, idleMs: 10 })).toEqual([])
    expect(connectionsToClose([...cs, held('d', 50)], 100, { max: 1, idleMs: 1000 })).toEqual(['d'])
  })

  it('closes connections idle for idleMs or longer, and only those', () => {
    const cs = [held('stale', 40), held('edge', 50), held('fresh', 51)]
    expect(connectionsToClose(cs, 110, { max: 32, idleMs: 60 })).toEqual(['stale', 'edge'])
  })

  it('counts busy connections against the budget when choosing idle ones to close', () => {
    const cs = [held('busy1', 1, true), held('busy2', 2, true), held('idle1', 90), held('idle2', 95)]
    expect(connectionsToClose(cs, 100, { max: 3, idleMs: 1000 })).toEqual(['idle1'])
  })
})

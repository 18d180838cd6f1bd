/** HandedModels: the page's belief of which models a Web Worker holds stays bounded and follows what the worker reports. */
import { describe, expect, it } from 'vitest'
import { HandedModels } from '../../src/runtime/worker-executor.js'
import { TAB_SESSION_BUDGET } from '../../src/runtime/ort-runner.js'

describe('HandedModels', () => {
  it('stays bounded however many models pass through a worker, forgetting the least recently used first', () => {
    const handed = new HandedModels()
    for (let i = 0; i < 1000; i++) handed.add(`m${i}`)
    expect(handed.size).toBe(2 * TAB_SESSION_BUDGET.maxSessions)
    expect(handed.has('m999')).toBe(true)
    expect(handed.has('m0')).toBe(false)
    // A model used again is kept over ones used since.
    const small = new HandedModels(2)
    small.add('a')
    small.add('b')
    small.add('a')
    small.add('c')
    expect(['a', 'b', 'c'].filter(m => small.has(m))).toEqual(['a', 'c'])
  })

  it('forgets the models the worker reports it no longer holds (its session budget dropped them), so a worker left with none is seen empty', () => {
    const handed = new HandedModels()
    for (const m of ['a', 'b', 'c']) handed.add(m)
    handed.keep(['b'])
    expect(['a', 'b', 'c'].filter(m => handed.has(m))).toEqual(['b'])
    handed.keep([])
    expect(handed.size).toBe(0)
  })
})

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
    handed.keep(['b'], handed.now())
    expect(['a', 'b', 'c'].filter(m => handed.has(m))).toEqual(['b'])
    handed.keep([], handed.now())
    expect(handed.size).toBe(0)
  })

  it('lets a report forget only models used before it was asked for: a call posted behind the report keeps its model', () => {
    const handed = new HandedModels()
    handed.add('a')
    handed.add('b')
    const asked = handed.now()
    // Posted after the report was asked for: the worker answers the report before it sees this call.
    handed.add('b')
    handed.add('c')
    handed.keep([], asked)
    expect(['a', 'b', 'c'].filter(m => handed.has(m))).toEqual(['b', 'c'])
    // The same for a single call answered `needsModel`.
    const before = handed.now()
    handed.add('c')
    handed.dropped('c', before)
    expect(handed.has('c')).toBe(true)
    handed.dropped('c', handed.now())
    expect(handed.has('c')).toBe(false)
  })

  it('keeps a model whose bytes are being fetched through any report, and holds other calls for it until the bytes are posted', async () => {
    const handed = new HandedModels(1)
    const handoff = handed.handing('a')
    expect(handed.has('a')).toBe(true)
    handed.keep([], handed.now())
    handed.dropped('a', handed.now())
    handed.add('b') // past the bound: the model being handed is not the one forgotten
    expect(handed.has('a')).toBe(true)
    const order: string[] = []
    const waiter = handed.posted('a').then(() => { order.push('waiter') })
    await Promise.resolve()
    order.push('bytes posted')
    handoff(true)
    await waiter
    expect(order).toEqual(['bytes posted', 'waiter'])
    expect(handed.has('a')).toBe(true)
  })

  it('forgets a model whose bytes could not be had, and the next call hands them itself', async () => {
    const handed = new HandedModels()
    const handoff = handed.handing('a')
    const waiter = handed.posted('a')
    handoff(false)
    await waiter
    expect(handed.has('a')).toBe(false)
    // A second handoff started before a waiter resumes keeps it waiting for that one.
    const again = handed.handing('a')
    let resumed = false
    const second = handed.posted('a').then(() => { resumed = true })
    await Promise.resolve()
    expect(resumed).toBe(false)
    again(true)
    await second
    expect(resumed).toBe(true)
  })
})

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
    // A model used again (a call without its bytes) is kept over ones used since.
    const small = new HandedModels(2)
    small.add('a')
    small.add('b')
    small.use('a')
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

  it('lets a report forget only models whose bytes were handed before it was asked for: bytes posted behind the report keep their model', () => {
    const handed = new HandedModels()
    handed.add('a')
    handed.add('b')
    const asked = handed.now()
    // Handed after the report was asked for: the worker answers the report before it sees these bytes.
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

  it('is not kept from forgetting a dropped model by calls that brought no bytes: only bytes handed since the call tell', () => {
    const handed = new HandedModels()
    handed.add('x')
    // Two calls post without bytes (each a use); the worker has dropped the session meanwhile.
    handed.use('x')
    const firstAsked = handed.now()
    handed.use('x')
    // The first call's `needsModel` forgets it despite the second, later use: its retry brings the bytes.
    handed.dropped('x', firstAsked)
    expect(handed.has('x')).toBe(false)
  })

  it('keeps a model whose bytes are being fetched through any report, and holds other calls for it until the bytes are posted', async () => {
    const handed = new HandedModels(1)
    const handoff = handed.handing('a')
    expect(handed.has('a')).toBe(true)
    handed.keep([], handed.now())
    handed.dropped('a', handed.now())
    // Past the bound with only the model being handed left to forget: neither it nor the newcomer goes.
    handed.add('b')
    expect(handed.has('a')).toBe(true)
    expect(handed.has('b')).toBe(true)
    const order: string[] = []
    const waiter = handed.pending('a')!.then(() => { order.push('waiter') })
    await Promise.resolve()
    order.push('bytes posted')
    handoff(true)
    await waiter
    expect(order).toEqual(['bytes posted', 'waiter'])
    expect(handed.has('a')).toBe(true)
    expect(handed.pending('a')).toBeUndefined()
  })

  it('forgets a model whose bytes could not be had, and the next call hands them itself', async () => {
    const handed = new HandedModels()
    const handoff = handed.handing('a')
    const waiter = handed.pending('a')
    handoff(false)
    await waiter
    expect(handed.has('a')).toBe(false)
    expect(handed.pending('a')).toBeUndefined()
  })
})

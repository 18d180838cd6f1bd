/** ModelProvider: where a worker's model bytes come from, and that only verified bytes are cached. */
import { describe, expect, it } from 'vitest'
import { MemoryModelStore, ModelProvider, evictionPlan } from '../../src/core/model-store.js'
import { TaskError } from '../../src/core/errors.js'
import { sha256Hex } from '../../src/core/hash.js'
import type { ModelEvent, ModelProviderOptions } from '../../src/core/model-store.js'
import type { ModelRef } from '../../src/core/task-types.js'

const bytes = new Uint8Array(5000).map((_, i) => (i * 7) % 256)
const refP = (async (): Promise<ModelRef> => ({ sha256: await sha256Hex(bytes), size: bytes.byteLength, name: 'm' }))()

function provider (peers: Record<string, Uint8Array | Error>, extra: Partial<ModelProviderOptions> = {}) {
  const store = new MemoryModelStore()
  const fetches: string[] = []
  const events: ModelEvent[] = []
  const p = new ModelProvider({
    store,
    fetchFrom: async (peer, ref, onProgress) => {
      fetches.push(peer)
      const got = peers[peer]
      if (got == null) throw new TaskError('model-unavailable', `${peer} does not have it`)
      if (got instanceof Error) throw got
      onProgress({ received: got.byteLength, size: got.byteLength })
      if (await sha256Hex(got) !== ref.sha256) throw new TaskError('model-hash-mismatch', 'corrupted')
      return got
    },
    onEvent: e => events.push(e),
    ...extra
  })
  return { p, store, fetches, events }
}

describe('ModelProvider', () => {
  it('fetches a missing model from the requester once, caches it, and serves later tasks locally', async () => {
    const ref = await refP
    const { p, store, fetches, events } = provider({ requester: bytes })
    expect(await p.get(ref, 'requester')).toEqual(bytes)
    expect(await store.get(ref.sha256)).toEqual(bytes)
    expect(p.cached).toEqual([ref.sha256])
    expect(await p.get(ref, 'requester')).toEqual(bytes)
    expect(fetches).toEqual(['requester'])
    expect(events.map(e => e.type)).toEqual(['transfer', 'cached'])
  })

  it('shares one transfer between concurrent tasks of the same model', async () => {
    const ref = await refP
    const { p, fetches } = provider({ requester: bytes })
    await Promise.all([p.get(ref, 'requester'), p.get(ref, 'requester'), p.get(ref, 'requester')])
    expect(fetches).toEqual(['requester'])
  })

  it('rejects a corrupted transfer, caches nothing, and tries a peer that advertises the model next', async () => {
    const ref = await refP
    const bad = bytes.slice()
    bad[10] ^= 1
    const { p, store, fetches, events } = provider({ requester: bad, holder: bytes }, { holders: () => ['holder'] })
    expect(await p.get(ref, 'requester')).toEqual(bytes)
    expect(fetches).toEqual(['requester', 'holder'])
    expect(events.find(e => e.type === 'rejected')).toMatchObject({ from: 'requester', error: { code: 'model-hash-mismatch' } })
    expect((await store.list()).map(m => m.sha256)).toEqual([ref.sha256])
  })

  it('fails with the last peer\'s error when nobody sends good bytes, leaving the cache empty', async () => {
    const ref = await refP
    const bad = bytes.slice()
    bad[0] ^= 1
    const { p, store } = provider({ requester: bad })
    await expect(p.get(ref, 'requester')).rejects.toMatchObject({ code: 'model-hash-mismatch' })
    expect(await store.list()).toEqual([])
    expect(p.cached).toEqual([])
  })

  it('says model-unavailable when there is no peer to ask', async () => {
    const ref = await refP
    await expect(provider({}).p.get(ref)).rejects.toMatchObject({ code: 'model-unavailable' })
  })

  it('prefers built-in bytes, and refetches over a damaged cache entry', async () => {
    const ref = await refP
    const builtin = provider({}, { builtin: async sha => sha === ref.sha256 ? bytes : undefined })
    expect(await builtin.p.get(ref, 'requester')).toEqual(bytes)
    expect(builtin.fetches).toEqual([])

    const damaged = provider({ requester: bytes })
    const broken = bytes.slice()
    broken[1] ^= 1
    await damaged.store.put(ref.sha256, broken)
    await damaged.p.init()
    expect(await damaged.p.get(ref, 'requester')).toEqual(bytes)
    expect(damaged.fetches).toEqual(['requester'])
    expect(await damaged.store.get(ref.sha256)).toEqual(bytes)
  })

  it('takes a built-in source\'s bytes as they are when that source checks them itself (a tab\'s BuiltinModelCache), and hashes them otherwise', async () => {
    const ref = await refP
    // Stands for bytes the source already hashed: the provider must not hash them a second time,
    // so a source that vouches is believed (here: even for bytes that would not match).
    const vouched = bytes.slice()
    vouched[2] ^= 1
    const trusting = provider({ requester: bytes }, { builtin: async sha => sha === ref.sha256 ? vouched : undefined, builtinVerified: true })
    expect(await trusting.p.get(ref, 'requester')).toBe(vouched)
    expect(trusting.fetches).toEqual([])
    const checking = provider({ requester: bytes }, { builtin: async sha => sha === ref.sha256 ? vouched : undefined })
    expect(await checking.p.get(ref, 'requester')).toEqual(bytes)
    expect(checking.fetches).toEqual(['requester'])
  })

  it('adds a model its user brings and lists it', async () => {
    const ref = await refP
    const { p, store } = provider({})
    expect(await p.add(bytes)).toBe(ref.sha256)
    expect(await store.get(ref.sha256)).toEqual(bytes)
    expect(await p.local(ref.sha256)).toEqual(bytes)
    expect(p.cached).toEqual([ref.sha256])
  })
})

describe('model cache budget', () => {
  /** Sizes scaled down (the finding was 24 models of 4 MiB): the policy does not depend on scale. */
  const MB = 64 * 1024
  /** A distinct model of `mb` MiB and its ref. */
  async function model (seed: number, mb = 4): Promise<{ bytes: Uint8Array, ref: ModelRef }> {
    const b = new Uint8Array(mb * MB).fill(seed)
    return { bytes: b, ref: { sha256: await sha256Hex(b), size: b.byteLength, name: `m${seed}` } }
  }

  it('evictionPlan evicts least recently used first, only until the rest fits, and never a kept model', () => {
    const models = [
      { sha256: 'a', bytes: 4, lastUse: 3 },
      { sha256: 'b', bytes: 4, lastUse: 1 },
      { sha256: 'c', bytes: 4, lastUse: 2 },
      { sha256: 'd', bytes: 4, lastUse: 4 }
    ]
    expect(evictionPlan(models, 16, new Set())).toEqual([])
    expect(evictionPlan(models, 12, new Set())).toEqual(['b'])
    expect(evictionPlan(models, 8, new Set())).toEqual(['b', 'c'])
    expect(evictionPlan(models, 8, new Set(['b']))).toEqual(['c', 'a'])
    // Kept models alone over the budget: everything else goes, and the store stays over it.
    expect(evictionPlan(models, 4, new Set(['a', 'd']))).toEqual(['b', 'c'])
  })

  it('24 distinct models of 4 units through a 16-unit cache leave at most 16 units, the newest kept', async () => {
    const models = await Promise.all(Array.from({ length: 24 }, async (_, i) => await model(i + 1)))
    const store = new MemoryModelStore({ budgetBytes: 16 * MB })
    const evicted: string[] = []
    const p = new ModelProvider({ store, fetchFrom: async (_peer, ref) => models.find(m => m.ref.sha256 === ref.sha256)!.bytes, onEvict: sha => evicted.push(sha) })
    for (const m of models) expect(await p.get(m.ref, 'requester')).toBe(m.bytes)
    const left = await store.list()
    expect(left.reduce((s, m) => s + m.bytes, 0)).toBeLessThanOrEqual(16 * MB)
    expect(left.map(m => m.sha256).sort()).toEqual(models.slice(-4).map(m => m.ref.sha256).sort())
    expect(evicted).toEqual(models.slice(0, 20).map(m => m.ref.sha256))
    expect(p.cached.sort()).toEqual(models.slice(-4).map(m => m.ref.sha256).sort())
  })

  it('keeps a recently used model over an older unused one, and never evicts a model in use', async () => {
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(async i => await model(i)))
    const store = new MemoryModelStore({ budgetBytes: 8 * MB })
    const inUse = new Set<string>()
    const all = [a, b, c, d]
    const p = new ModelProvider({ store, inUse: () => inUse, fetchFrom: async (_peer, ref) => all.find(m => m.ref.sha256 === ref.sha256)!.bytes })
    await p.get(a.ref, 'r')
    await p.get(b.ref, 'r')
    await p.get(a.ref, 'r') // a is now more recent than b
    await p.get(c.ref, 'r') // over budget: b goes, not a
    expect((await store.list()).map(m => m.sha256).sort()).toEqual([a.ref.sha256, c.ref.sha256].sort())
    inUse.add(a.ref.sha256) // a loaded session
    await p.get(d.ref, 'r') // over budget: c goes (a is in use, d is the task's)
    expect((await store.list()).map(m => m.sha256).sort()).toEqual([a.ref.sha256, d.ref.sha256].sort())
  })

  it('a model bigger than the whole budget is still stored for the task that fetched it', async () => {
    const [small, big] = await Promise.all([model(1, 1), model(2, 6)])
    const store = new MemoryModelStore({ budgetBytes: 4 * MB })
    const p = new ModelProvider({ store, fetchFrom: async (_peer, ref) => [small, big].find(m => m.ref.sha256 === ref.sha256)!.bytes })
    await p.get(small.ref, 'r')
    expect(await p.get(big.ref, 'r')).toBe(big.bytes)
    expect((await store.list()).map(m => m.sha256)).toEqual([big.ref.sha256])
  })

  it('init prunes a store left over its budget by an earlier run, oldest stored first', async () => {
    const [a, b, c] = await Promise.all([1, 2, 3].map(async i => await model(i)))
    const store = new MemoryModelStore({ budgetBytes: 8 * MB })
    for (const m of [a, b, c]) await store.put(m.ref.sha256, m.bytes)
    const p = new ModelProvider({ store })
    await p.init()
    expect((await store.list()).map(m => m.sha256).sort()).toEqual([b.ref.sha256, c.ref.sha256].sort())
    expect(p.cached).not.toContain(a.ref.sha256)
  })
})

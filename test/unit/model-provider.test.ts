/** ModelProvider: where a worker's model bytes come from, and that only verified bytes are cached. */
import { describe, expect, it } from 'vitest'
import { MemoryModelStore, ModelProvider } from '../../src/core/model-store.js'
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
    expect(await store.list()).toEqual([ref.sha256])
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

  it('adds a model its user brings and lists it', async () => {
    const ref = await refP
    const { p, store } = provider({})
    expect(await p.add(bytes)).toBe(ref.sha256)
    expect(await store.get(ref.sha256)).toEqual(bytes)
    expect(await p.local(ref.sha256)).toEqual(bytes)
    expect(p.cached).toEqual([ref.sha256])
  })
})

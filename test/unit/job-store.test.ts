import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { JOB_STATES, JOB_TRANSITIONS, JobStateError, MemoryJobStore, isTerminalState, nextState, transitionJob } from '../../src/core/job-store.js'
import { DTYPES, DTYPE_BYTES } from '../../src/core/tensor.js'
import { FileJobStore } from '../../src/node/file-job-store.js'
import type { JobMeta, JobState, JobStore, StoredResult } from '../../src/core/job-store.js'
import type { DTypeName, WireTensor } from '../../src/core/tensor.js'

const SHA = 'ab'.repeat(32)

function meta (jobId: string, extra: Partial<JobMeta> = {}): JobMeta {
  return {
    jobId,
    modelId: 'digits',
    model: { sha256: SHA, size: 1234, name: 'digits' },
    datasetId: 'mnist-test',
    taskCount: 100,
    replicas: 2,
    adaptive: true,
    state: 'queued',
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    ...extra
  }
}

/** A tensor of `dtype` whose bytes are a pattern seeded by `seed` (every byte value occurs). */
function tensor (name: string, dtype: DTypeName, dims: number[], seed: number): WireTensor {
  const n = dims.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype]
  const data = new Uint8Array(n)
  for (let i = 0; i < n; i++) data[i] = (seed * 31 + i * 7) & 0xff
  return { name, dtype, dims, data }
}

function result (index: number, extra: Partial<StoredResult> = {}): StoredResult {
  return {
    index,
    outputs: [tensor('probs', 'float32', [1, 10], index)],
    agreedBy: [`peer-${index % 3}`, 'peer-x'],
    crossChecked: index % 2 === 0,
    ...extra
  }
}

/** Every dtype, including odd shapes: a scalar, an empty tensor, a multi-dim one. */
function allDtypeOutputs (seed: number): WireTensor[] {
  return [
    ...DTYPES.map((dtype, k) => tensor(`out_${dtype}`, dtype, [2, 3], seed + k)),
    tensor('scalar_i64', 'int64', [], seed),
    tensor('empty_f16', 'float16', [0, 4], seed),
    tensor('bool_4d', 'bool', [1, 2, 2, 2], seed)
  ]
}

/** Checks byte-exact equality, insisting on plain Uint8Arrays. */
function expectSameResults (actual: StoredResult[], expected: StoredResult[]): void {
  expect(actual.map(r => r.index)).toEqual(expected.map(r => r.index))
  actual.forEach((r, i) => {
    const e = expected[i]
    expect(r.agreedBy).toEqual(e.agreedBy)
    expect(r.crossChecked).toBe(e.crossChecked)
    expect(r.outputs.map(t => [t.name, t.dtype, t.dims])).toEqual(e.outputs.map(t => [t.name, t.dtype, t.dims]))
    r.outputs.forEach((t, k) => {
      expect(Object.getPrototypeOf(t.data)).toBe(Uint8Array.prototype)
      expect(Array.from(t.data)).toEqual(Array.from(e.outputs[k].data))
    })
  })
}

async function expectCode (p: Promise<unknown>, code: JobStateError['code']): Promise<JobStateError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(JobStateError)
  expect((err as JobStateError).code).toBe(code)
  return err as JobStateError
}

const tempDirs: string[] = []
async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'p2p-job-store-'))
  tempDirs.push(dir)
  return dir
}
afterAll(async () => {
  await Promise.all(tempDirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
})

interface Harness {
  store: JobStore
  /** A new store over the same persisted data (the same instance for the memory store). */
  reopen(): JobStore
}

const IMPLEMENTATIONS: Array<[string, () => Promise<Harness>]> = [
  ['MemoryJobStore', async () => {
    const store = new MemoryJobStore()
    return { store, reopen: () => store }
  }],
  ['FileJobStore', async () => {
    const dir = join(await tempDir(), 'jobs') // not created yet: the store creates it
    return { store: new FileJobStore(dir), reopen: () => new FileJobStore(dir) }
  }]
]

describe.each(IMPLEMENTATIONS)('%s', (_name, create) => {
  it('starts empty', async () => {
    const { store } = await create()
    expect(await store.listJobs()).toEqual([])
    expect(await store.getJob('nope')).toBeUndefined()
    expect(await store.getResults('nope')).toEqual([])
    expect(await store.getReputation()).toEqual({})
    await store.deleteJob('nope') // no-op
  })

  it('round-trips a result\'s receipt and refuses a malformed one', async () => {
    const { store, reopen } = await create()
    await store.putJob(meta('job-rc', { taskCount: 2 }))
    const receipt = {
      version: 'p2p-ai-agents/receipt/1' as const, jobId: 'job-rc', taskId: 'job-rc/0/1', requester: 'req', worker: 'peer-0',
      modelSha256: 'a'.repeat(64), inputsSha256: 'b'.repeat(64), outputsSha256: 'c'.repeat(64), backend: 'wasm', startedAt: 1, endedAt: 2, signature: 'd'.repeat(128)
    }
    await store.putResults('job-rc', [result(0, { receipt }), result(1)])
    const [withReceipt, without] = await reopen().getResults('job-rc')
    expect(withReceipt.receipt).toEqual(receipt)
    expect(Object.hasOwn(without, 'receipt')).toBe(false)
    await expect(store.putResults('job-rc', [result(1, { receipt: { ...receipt, signature: 'xyz' } })])).rejects.toThrow(/signature/)
  })

  it('deletes revoked results until they are put again, across a reopen', async () => {
    const { store, reopen } = await create()
    await store.putJob(meta('job-r', { taskCount: 5 }))
    await store.putResults('job-r', [0, 1, 2, 3].map(i => result(i)))
    await store.deleteResults('job-r', [1, 3, 4])
    expect((await store.getResults('job-r')).map(r => r.index)).toEqual([0, 2])
    expect((await reopen().getResults('job-r')).map(r => r.index)).toEqual([0, 2])
    await store.putResults('job-r', [result(3, { agreedBy: ['self'] })])
    const again = await reopen().getResults('job-r')
    expect(again.map(r => r.index)).toEqual([0, 2, 3])
    expect(again[2].agreedBy).toEqual(['self'])
    await store.deleteResults('nope', [1]) // unknown job: nothing
  })

  it('appends audit lines in order, across a reopen, and deletes them with the job', async () => {
    const { store, reopen } = await create()
    expect(await store.getAudit('job-a')).toEqual([])
    expect(await store.lastAudit('job-a')).toBeUndefined()
    await expectCode(store.appendAudit('job-a', ['{"seq":0}']), 'unknown-job')
    await store.putJob(meta('job-a'))
    await store.appendAudit('job-a', ['{"seq":0}', '{"seq":1}'])
    await store.appendAudit('job-a', ['{"seq":2}'])
    await store.appendAudit('job-a', [])
    expect(await reopen().getAudit('job-a')).toEqual(['{"seq":0}', '{"seq":1}', '{"seq":2}'])
    expect(await reopen().lastAudit('job-a')).toBe('{"seq":2}')
    // Lines longer than the file store's read chunk come back whole.
    const long = `{"seq":3,"pad":"${'x'.repeat(150_000)}"}`
    await store.appendAudit('job-a', [long])
    expect(await reopen().lastAudit('job-a')).toBe(long)
    await store.appendAudit('job-a', ['{"seq":4}'])
    expect(await reopen().lastAudit('job-a')).toBe('{"seq":4}')
    expect((await reopen().getAudit('job-a')).slice(3)).toEqual([long, '{"seq":4}'])
    await expect(store.appendAudit('job-a', ['two\nlines'])).rejects.toThrow(TypeError)
    expect(await store.getAudit('job-a')).toHaveLength(5)
    await store.deleteJob('job-a')
    expect(await reopen().getAudit('job-a')).toEqual([])
  })

  it('round-trips a meta, dropping unknown fields, and replaces it on put', async () => {
    const { store } = await create()
    const m = meta('job-1', { error: 'oops', stats: { tasksDone: 3, meanMs: 12.5 } })
    await store.putJob({ ...m, bogus: 1 } as JobMeta)
    expect(await store.getJob('job-1')).toStrictEqual(m)

    const plain = meta('job-1', { state: 'running', updatedAt: m.updatedAt + 5 })
    await store.putJob({ ...plain, error: undefined })
    const got = await store.getJob('job-1')
    expect(got).toStrictEqual(plain)
    expect(Object.hasOwn(got!, 'error')).toBe(false)
  })

  it('copies metas in and out', async () => {
    const { store } = await create()
    const m = meta('job-1', { stats: { a: 1 } })
    await store.putJob(m)
    m.model.size = 9
    m.stats!.a = 2
    const got = (await store.getJob('job-1'))!
    expect(got.model.size).toBe(1234)
    expect(got.stats).toEqual({ a: 1 })
    got.model.name = 'changed'
    expect((await store.getJob('job-1'))!.model.name).toBe('digits')
  })

  it('rejects malformed metas and invalid job ids', async () => {
    const { store } = await create()
    await expect(store.putJob(meta('../evil'))).rejects.toThrow(TypeError)
    await expect(store.putJob(meta(''))).rejects.toThrow(TypeError)
    await expect(store.putJob(meta('.hidden'))).rejects.toThrow(TypeError)
    await expect(store.putJob(meta('x'.repeat(129)))).rejects.toThrow(TypeError)
    await expect(store.putJob(meta('ok', { state: 'paused' as JobState }))).rejects.toThrow(/state/)
    await expect(store.putJob(meta('ok', { replicas: 0 }))).rejects.toThrow(/replicas/)
    await expect(store.putJob(meta('ok', { stats: { x: Number.NaN } }))).rejects.toThrow(/stats/)
    await expect(store.putJob(meta('ok', { model: { sha256: 'XYZ', size: 1, name: 'm' } }))).rejects.toThrow(/sha256/)
    expect(await store.listJobs()).toEqual([])
    expect(await store.getJob('../evil')).toBeUndefined()
  })

  it('lists jobs newest first (ties by job id)', async () => {
    const { store } = await create()
    await store.putJob(meta('b', { createdAt: 10 }))
    await store.putJob(meta('old', { createdAt: 5 }))
    await store.putJob(meta('new', { createdAt: 30 }))
    await store.putJob(meta('a', { createdAt: 10 }))
    expect((await store.listJobs()).map(m => m.jobId)).toEqual(['new', 'a', 'b', 'old'])
  })

  it('round-trips results of every dtype byte for byte', async () => {
    const { store } = await create()
    await store.putJob(meta('job-1'))
    const results = [0, 1, 99].map(i => result(i, { outputs: allDtypeOutputs(i) }))
    await store.putResults('job-1', results)
    expectSameResults(await store.getResults('job-1'), results)
    expect(await store.getResults('job-1')).toEqual(results)
  })

  it('keeps int64 extremes, float16 NaN payloads and bool bytes exact', async () => {
    const { store } = await create()
    await store.putJob(meta('job-1'))
    const i64 = new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n])
    const f16 = new Uint16Array([0x7e01, 0xfc00, 0x8000, 0x3c00]) // a NaN with a payload, -inf, -0, 1
    const bools = new Uint8Array([0, 1, 1, 0])
    const outputs: WireTensor[] = [
      { name: 'i64', dtype: 'int64', dims: [4], data: new Uint8Array(i64.buffer) },
      { name: 'f16', dtype: 'float16', dims: [2, 2], data: new Uint8Array(f16.buffer) },
      { name: 'b', dtype: 'bool', dims: [4], data: bools }
    ]
    await store.putResults('job-1', [result(7, { outputs })])
    const [got] = await store.getResults('job-1')
    const back = got.outputs.map(t => new Uint8Array(t.data))
    expect(Array.from(new BigInt64Array(back[0].buffer))).toEqual(Array.from(i64))
    expect(Array.from(new Uint16Array(back[1].buffer))).toEqual(Array.from(f16))
    expect(Array.from(back[2])).toEqual([0, 1, 1, 0])
  })

  it('stores a view without its surrounding buffer, and copies data in and out', async () => {
    const { store } = await create()
    await store.putJob(meta('job-1'))
    const big = new Uint8Array(4096).map((_, i) => i & 0xff)
    const view = big.subarray(100, 140) // float32[10]
    const r = result(0, { outputs: [{ name: 'probs', dtype: 'float32', dims: [1, 10], data: view }] })
    await store.putResults('job-1', [r])
    big.fill(0)
    const [got] = await store.getResults('job-1')
    expect(got.outputs[0].data.byteLength).toBe(40)
    expect(got.outputs[0].data.buffer.byteLength).toBe(40)
    expect(Array.from(got.outputs[0].data)).toEqual(Array.from({ length: 40 }, (_, i) => (100 + i) & 0xff))
    got.outputs[0].data.fill(1)
    got.agreedBy.push('mallory')
    const [again] = await store.getResults('job-1')
    expect(again.outputs[0].data[0]).toBe(100)
    expect(again.agreedBy).not.toContain('mallory')
  })

  it('overwrites per index (last write wins, also within a batch) and sorts by index', async () => {
    const { store } = await create()
    await store.putJob(meta('job-1'))
    await store.putResults('job-1', [result(5), result(2), result(9)])
    await store.putResults('job-1', [result(0), result(5, { agreedBy: ['late'], crossChecked: true })])
    await store.putResults('job-1', [result(2, { agreedBy: ['first'] }), result(2, { agreedBy: ['second'] })])
    await store.putResults('job-1', [])
    const got = await store.getResults('job-1')
    expect(got.map(r => r.index)).toEqual([0, 2, 5, 9])
    expect(got.find(r => r.index === 5)!.agreedBy).toEqual(['late'])
    expect(got.find(r => r.index === 2)!.agreedBy).toEqual(['second'])
  })

  it('keeps jobs\' results apart', async () => {
    const { store } = await create()
    await store.putJob(meta('a'))
    await store.putJob(meta('a2'))
    await store.putResults('a', [result(1)])
    await store.putResults('a2', [result(2), result(3)])
    expect((await store.getResults('a')).map(r => r.index)).toEqual([1])
    expect((await store.getResults('a2')).map(r => r.index)).toEqual([2, 3])
  })

  it('rejects results for an unknown job, and bad batches without writing any of them', async () => {
    const { store } = await create()
    await expectCode(store.putResults('ghost', [result(0)]), 'unknown-job')
    await expectCode(store.putResults('../etc', [result(0)]), 'unknown-job')
    await store.putJob(meta('job-1', { taskCount: 10 }))
    await expect(store.putResults('job-1', [result(1), result(10)])).rejects.toThrow(RangeError)
    await expect(store.putResults('job-1', [result(1), result(-1)])).rejects.toThrow(TypeError)
    await expect(store.putResults('job-1', [result(1), result(2, {
      outputs: [{ name: 'x', dtype: 'float32', dims: [3], data: new Uint8Array(11) }]
    })])).rejects.toThrow(/needs 12/)
    await expect(store.putResults('job-1', [result(1, {
      outputs: [{ name: 'x', dtype: 'complex64' as DTypeName, dims: [1], data: new Uint8Array(8) }]
    })])).rejects.toThrow(/dtype/)
    expect(await store.getResults('job-1')).toEqual([])
  })

  it('deletes a job with its results, leaving others alone', async () => {
    const { store, reopen } = await create()
    await store.putJob(meta('a', { createdAt: 1 }))
    await store.putJob(meta('b', { createdAt: 2 }))
    await store.putResults('a', [result(0), result(1)])
    await store.putResults('b', [result(0)])
    await store.deleteJob('a')
    await store.deleteJob('a')
    expect(await store.getJob('a')).toBeUndefined()
    expect(await store.getResults('a')).toEqual([])
    expect((await store.listJobs()).map(m => m.jobId)).toEqual(['b'])
    expect(await store.getResults('b')).toHaveLength(1)
    await expectCode(store.putResults('a', [result(0)]), 'unknown-job')
    // A job recreated under the same id starts without results.
    await store.putJob(meta('a'))
    expect(await store.getResults('a')).toEqual([])
    expect((await reopen().listJobs()).map(m => m.jobId).sort()).toEqual(['a', 'b'])
  })

  it('round-trips reputation, replacing rather than merging', async () => {
    const { store, reopen } = await create()
    const first = { 'peer-a': { agreed: 10, disagreed: 1, lastSeen: 1_700_000_000_123 }, 'peer-b': { agreed: 0, disagreed: 0, lastSeen: 0 } }
    await store.putReputation(first)
    first['peer-a'].agreed = 99
    expect(await store.getReputation()).toStrictEqual({ 'peer-a': { agreed: 10, disagreed: 1, lastSeen: 1_700_000_000_123 }, 'peer-b': { agreed: 0, disagreed: 0, lastSeen: 0 } })
    await store.putReputation({ 'peer-c': { agreed: 1, disagreed: 2, lastSeen: 3 } })
    expect(await reopen().getReputation()).toStrictEqual({ 'peer-c': { agreed: 1, disagreed: 2, lastSeen: 3 } })
    await expect(store.putReputation({ x: { agreed: -1, disagreed: 0, lastSeen: 0 } })).rejects.toThrow(TypeError)
    await expect(store.putReputation({ x: { agreed: 1, disagreed: Number.POSITIVE_INFINITY, lastSeen: 0 } })).rejects.toThrow(TypeError)
    await expect(store.putReputation({ x: { agreed: 1, disagreed: 0, lastSeen: 0, streak: -1 } })).rejects.toThrow(/streak/)
    await store.putReputation({ decayed: { agreed: 2.75, disagreed: 0.5, lastSeen: 9 }, streaky: { agreed: 30, disagreed: 1, lastSeen: 4, streak: 25 } })
    expect(await reopen().getReputation()).toStrictEqual({ decayed: { agreed: 2.75, disagreed: 0.5, lastSeen: 9 }, streaky: { agreed: 30, disagreed: 1, lastSeen: 4, streak: 25 } })
    const tricky = JSON.parse('{"__proto__": {"agreed": 1, "disagreed": 0, "lastSeen": 2}}') as Record<string, { agreed: number, disagreed: number, lastSeen: number }>
    await store.putReputation(tricky)
    const back = await reopen().getReputation()
    expect(Object.keys(back)).toEqual(['__proto__'])
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    await expect(store.putReputation({ x: { agreed: 1, disagreed: 0 } } as never)).rejects.toThrow(TypeError)
  })

  it('cancels a running job for good, and reads it back cancelled after a reopen', async () => {
    const { store, reopen } = await create()
    await store.putJob(meta('job-c', { state: 'running' }))
    const cancelled = await transitionJob(store, 'job-c', 'cancelled', { error: 'cancelled' }, 900)
    expect(cancelled).toMatchObject({ state: 'cancelled', error: 'cancelled', updatedAt: 900 })
    expect(await reopen().getJob('job-c')).toStrictEqual(cancelled)
    const err = await expectCode(transitionJob(store, 'job-c', 'running'), 'invalid-transition')
    expect(err.message).toMatch(/cancelled is final/)
  })

  it('the first end stands: putJob never replaces a terminal meta with another state (a stale runner\'s write after a cancel)', async () => {
    const { store, reopen } = await create()
    await store.putJob(meta('job-e', { state: 'running' }))
    const stale = (await store.getJob('job-e'))!
    await transitionJob(store, 'job-e', 'cancelled', { error: 'cancelled' }, 900)
    for (const state of ['running', 'verifying', 'done', 'failed'] as const) {
      const err = await expectCode(store.putJob({ ...stale, state, updatedAt: 950 }), 'invalid-transition')
      expect(err.message).toBe(`job job-e has ended (cancelled); it cannot become ${state}`)
    }
    expect(await reopen().getJob('job-e')).toMatchObject({ state: 'cancelled', error: 'cancelled', updatedAt: 900 })
    // The same end may be written again (its figures updated).
    await store.putJob({ ...stale, state: 'cancelled', error: 'cancelled', updatedAt: 1000, stats: { done: 3 } })
    expect(await reopen().getJob('job-e')).toMatchObject({ state: 'cancelled', updatedAt: 1000, stats: { done: 3 } })
    expect(await reopen().listJobs()).toMatchObject([{ jobId: 'job-e', state: 'cancelled' }])
  })

  it('walks a job through its states with transitionJob', async () => {
    const { store } = await create()
    await store.putJob(meta('job-1'))
    await transitionJob(store, 'job-1', 'running', {}, 100)
    await transitionJob(store, 'job-1', 'verifying', {}, 200)
    await transitionJob(store, 'job-1', 'running', {}, 300) // a disagreement re-opens it
    await transitionJob(store, 'job-1', 'verifying', {}, 400)
    const done = await transitionJob(store, 'job-1', 'done', { stats: { tasks: 100 } }, 500)
    expect(done).toMatchObject({ state: 'done', updatedAt: 500, stats: { tasks: 100 } })
    expect(await store.getJob('job-1')).toStrictEqual(done)
    const err = await expectCode(transitionJob(store, 'job-1', 'running'), 'invalid-transition')
    expect(err.message).toMatch(/done/)
    expect((await store.getJob('job-1'))!.state).toBe('done')
    await expectCode(transitionJob(store, 'ghost', 'running'), 'unknown-job')
  })

  it('resumes: a store reopened over the same data sees every job and result', async () => {
    const { store, reopen } = await create()
    await store.putJob(meta('job-1', { state: 'running', taskCount: 1000, createdAt: 1 }))
    await store.putJob(meta('job-2', { state: 'done', createdAt: 2, stats: { ok: 1 } }))
    const written: StoredResult[] = []
    for (let start = 0; start < 1000; start += 250) {
      const batch = Array.from({ length: 125 }, (_, k) => result(start + k * 2, { outputs: allDtypeOutputs(start + k) }))
      await store.putResults('job-1', batch)
      written.push(...batch)
    }
    await store.putResults('job-1', [result(0, { agreedBy: ['redo'] })])
    written[0] = result(0, { agreedBy: ['redo'] })
    await store.putReputation({ p: { agreed: 1, disagreed: 0, lastSeen: 5 } })

    const again = reopen()
    expect((await again.listJobs()).map(m => [m.jobId, m.state])).toEqual([['job-2', 'done'], ['job-1', 'running']])
    expect(await again.getJob('job-2')).toStrictEqual(meta('job-2', { state: 'done', createdAt: 2, stats: { ok: 1 } }))
    expectSameResults(await again.getResults('job-1'), written.sort((a, b) => a.index - b.index))
    expect(await again.getReputation()).toEqual({ p: { agreed: 1, disagreed: 0, lastSeen: 5 } })
    // And it carries on where the first left off.
    await again.putResults('job-1', [result(1)])
    expect((await again.getResults('job-1')).length).toBe(501)
  })

  it('serialises concurrent batches', async () => {
    const { store } = await create()
    await store.putJob(meta('job-1', { taskCount: 400 }))
    await Promise.all(Array.from({ length: 20 }, async (_, b) => {
      await store.putResults('job-1', Array.from({ length: 20 }, (_, k) => result(b * 20 + k)))
    }))
    expect((await store.getResults('job-1')).map(r => r.index)).toEqual(Array.from({ length: 400 }, (_, i) => i))
  })
})

describe('job state transitions', () => {
  it('allows exactly the documented transitions', () => {
    const allowed = new Set(Object.entries(JOB_TRANSITIONS).flatMap(([from, tos]) => tos.map(to => `${from}→${to}`)))
    expect([...allowed].sort()).toEqual([
      'queued→cancelled', 'queued→failed', 'queued→running',
      'running→cancelled', 'running→failed', 'running→running', 'running→verifying',
      'verifying→cancelled', 'verifying→done', 'verifying→failed', 'verifying→running', 'verifying→verifying'
    ].sort())
    for (const from of JOB_STATES) {
      for (const to of JOB_STATES) {
        if (allowed.has(`${from}→${to}`)) {
          expect(nextState(from, to)).toBe(to)
        } else {
          expect(() => nextState(from, to)).toThrow(JobStateError)
        }
      }
    }
  })

  it('reports invalid transitions with a code and a readable message', () => {
    const cases: Array<[JobState, JobState, RegExp]> = [
      ['queued', 'done', /queued job cannot become done \(allowed: running, failed, cancelled\)/],
      ['running', 'done', /running job cannot become done/],
      ['queued', 'verifying', /cannot become verifying/],
      ['done', 'running', /done is final/],
      ['failed', 'queued', /failed is final/],
      ['done', 'done', /done is final/],
      ['cancelled', 'running', /cancelled is final/],
      ['cancelled', 'failed', /cancelled is final/]
    ]
    for (const [from, to, message] of cases) {
      try {
        nextState(from, to)
        expect.unreachable(`${from} → ${to} was allowed`)
      } catch (err) {
        expect(err).toBeInstanceOf(JobStateError)
        expect((err as JobStateError).code).toBe('invalid-transition')
        expect((err as JobStateError).name).toBe('JobStateError')
        expect((err as Error).message).toMatch(message)
      }
    }
    expect(() => nextState('running', 'paused' as JobState)).toThrow(/unknown job state/)
  })

  it('marks done, failed and cancelled as terminal', () => {
    expect(JOB_STATES.filter(isTerminalState)).toEqual(['done', 'failed', 'cancelled'])
  })
})

describe('FileJobStore on disk', () => {
  async function storeWithResults (count: number): Promise<{ dir: string, store: FileJobStore, path: string }> {
    const dir = await tempDir()
    const store = new FileJobStore(dir)
    await store.putJob(meta('job-1'))
    await store.putResults('job-1', Array.from({ length: count }, (_, i) => result(i)))
    return { dir, store, path: join(dir, 'job-1', 'results.jsonl') }
  }

  it('lays out meta.json, results.jsonl (one line per result, base64 data) and reputation.json', async () => {
    const { dir, store, path } = await storeWithResults(3)
    await store.putReputation({ p: { agreed: 1, disagreed: 2, lastSeen: 3 } })
    expect((await readdir(dir)).sort()).toEqual(['job-1', 'reputation.json'])
    expect((await readdir(join(dir, 'job-1'))).sort()).toEqual(['meta.json', 'results.jsonl'])
    expect(JSON.parse(await readFile(join(dir, 'job-1', 'meta.json'), 'utf8'))).toEqual(meta('job-1'))
    const lines = (await readFile(path, 'utf8')).split('\n')
    expect(lines).toHaveLength(4)
    expect(lines[3]).toBe('')
    const first = JSON.parse(lines[0])
    expect(first.index).toBe(0)
    expect(Buffer.from(first.outputs[0].data, 'base64')).toEqual(Buffer.from(result(0).outputs[0].data))
  })

  it('reads the audit log\'s last complete line, ignoring one a crash cut short', async () => {
    const { dir, store } = await storeWithResults(1)
    await store.appendAudit('job-1', ['{"seq":0}', '{"seq":1}'])
    const path = join(dir, 'job-1', 'audit.jsonl')
    await writeFile(path, (await readFile(path, 'utf8')) + '{"seq":2,"cut sho')
    expect(await new FileJobStore(dir).lastAudit('job-1')).toBe('{"seq":1}')
    expect(await new FileJobStore(dir).getAudit('job-1')).toEqual(['{"seq":0}', '{"seq":1}'])
    await store.appendAudit('job-1', ['{"seq":2}'])
    expect(await new FileJobStore(dir).getAudit('job-1')).toEqual(['{"seq":0}', '{"seq":1}', '{"seq":2}'])
  })

  it('survives a truncated last line and cuts it off before the next append', async () => {
    const { dir, store, path } = await storeWithResults(5)
    const full = await readFile(path)
    await truncate(path, full.byteLength - 20) // the crash hit mid-way through the last line
    for (const s of [store, new FileJobStore(dir)]) {
      expect((await s.getResults('job-1')).map(r => r.index)).toEqual([0, 1, 2, 3])
    }
    await store.putResults('job-1', [result(7)])
    expect((await store.getResults('job-1')).map(r => r.index)).toEqual([0, 1, 2, 3, 7])
    const text = await readFile(path, 'utf8')
    expect(text.endsWith('\n')).toBe(true)
    expect(text.split('\n')).toHaveLength(6)
  })

  it('ignores a last line that lost only its newline, and a file cut inside its first line', async () => {
    const { dir, path } = await storeWithResults(2)
    const full = await readFile(path)
    await truncate(path, full.byteLength - 1)
    expect((await new FileJobStore(dir).getResults('job-1')).map(r => r.index)).toEqual([0])
    await truncate(path, 10)
    const store = new FileJobStore(dir)
    expect(await store.getResults('job-1')).toEqual([])
    await store.putResults('job-1', [result(4)])
    expect((await store.getResults('job-1')).map(r => r.index)).toEqual([4])
  })

  it('reports a damaged complete line as corrupt-store', async () => {
    const { dir, path } = await storeWithResults(3)
    const lines = (await readFile(path, 'utf8')).split('\n')
    lines[1] = lines[1].slice(0, 30) + lines[1].slice(40)
    await writeFile(path, lines.join('\n'))
    const err = await expectCode(new FileJobStore(dir).getResults('job-1'), 'corrupt-store')
    expect(err.message).toMatch(/results\.jsonl line 2/)
  })

  it('reports a line that parses but is not a result as corrupt-store', async () => {
    for (const bad of [
      '{"index":1}',
      '{"index":1,"outputs":[{"name":"p","dtype":"float32","dims":[2],"data":"AAAA"}],"agreedBy":[],"crossChecked":false}',
      '{"index":1,"outputs":[{"name":"p","dtype":"uint8","dims":[3],"data":"AA!A"}],"agreedBy":[],"crossChecked":false}',
      '[]'
    ]) {
      const { dir, path } = await storeWithResults(1)
      await appendFile(path, bad + '\n')
      await expectCode(new FileJobStore(dir).getResults('job-1'), 'corrupt-store')
    }
  })

  it('reports a corrupt meta.json or reputation.json as corrupt-store', async () => {
    const { dir, store } = await storeWithResults(1)
    await writeFile(join(dir, 'job-1', 'meta.json'), '{"jobId": "job-1", "sta')
    await expectCode(store.getJob('job-1'), 'corrupt-store')
    await expectCode(store.listJobs(), 'corrupt-store')
    await expectCode(store.putResults('job-1', [result(0)]), 'corrupt-store')
    await writeFile(join(dir, 'job-1', 'meta.json'), JSON.stringify(meta('other')))
    await expectCode(store.getJob('job-1'), 'corrupt-store')
    await writeFile(join(dir, 'reputation.json'), '{"p": {"agreed": "lots"}}')
    await expectCode(store.getReputation(), 'corrupt-store')
  })

  it('ignores stray files, hidden directories and directories without a meta', async () => {
    const { dir, store } = await storeWithResults(1)
    await writeFile(join(dir, 'notes.txt'), 'hi')
    await writeFile(join(dir, 'job-1', 'meta.json.123.abc.tmp'), 'half a temp file')
    await rm(join(dir, 'job-1', 'results.jsonl'))
    await mkdir(join(dir, '.deleted-job-9-x'))
    await mkdir(join(dir, 'half-created'))
    expect((await store.listJobs()).map(m => m.jobId)).toEqual(['job-1'])
  })

  it('an end written by another process stands: ended.json is created once and read before meta.json', async () => {
    const dir = await tempDir()
    const runnerSide = new FileJobStore(dir)
    const cancelSide = new FileJobStore(dir) // its own in-process locks: as good as another process
    await runnerSide.putJob(meta('job-1', { state: 'running' }))
    const stale = (await runnerSide.getJob('job-1'))!
    await transitionJob(cancelSide, 'job-1', 'cancelled', { error: 'cancelled' }, 900)
    await expectCode(runnerSide.putJob({ ...stale, updatedAt: 950 }), 'invalid-transition')
    // The runner passed its check just before the cancel and then renamed its meta.json in: unread.
    await writeFile(join(dir, 'job-1', 'meta.json'), JSON.stringify({ ...stale, updatedAt: 960 }))
    expect(await runnerSide.getJob('job-1')).toMatchObject({ state: 'cancelled', updatedAt: 900 })
    expect(await readdir(join(dir, 'job-1'))).toContain('ended.json')
    // Two ends racing from two "processes": exactly one is recorded, whichever it is, and kept.
    for (let i = 0; i < 20; i++) {
      const id = `race-${i}`
      await runnerSide.putJob(meta(id, { state: 'verifying' }))
      const outcomes = await Promise.allSettled([
        runnerSide.putJob(meta(id, { state: 'done' })),
        cancelSide.putJob(meta(id, { state: 'cancelled' }))
      ])
      const won = outcomes.findIndex(o => o.status === 'fulfilled')
      expect(outcomes.filter(o => o.status === 'fulfilled')).toHaveLength(1)
      expect((outcomes[1 - won] as PromiseRejectedResult).reason).toMatchObject({ code: 'invalid-transition' })
      expect((await new FileJobStore(dir).getJob(id))!.state).toBe(won === 0 ? 'done' : 'cancelled')
    }
  })

  it('reports an ended.json that holds a job still running as corrupt-store', async () => {
    const dir = await tempDir()
    const store = new FileJobStore(dir)
    await store.putJob(meta('job-1'))
    await writeFile(join(dir, 'job-1', 'ended.json'), JSON.stringify(meta('job-1', { state: 'running' })))
    await expectCode(store.getJob('job-1'), 'corrupt-store')
  })
})

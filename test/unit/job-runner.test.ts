/**
 * JobRunner against the reference store with a requester-only job (its own worker, no network):
 * how a run ends when it is stopped early or when another writer ends the job under it; and with
 * two workers, how a replicated task is decided once the workers' places are learnt.
 */
import { describe, expect, it, vi } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { JobRunner } from '../../src/net/job-runner.js'
import { MemoryJobStore } from '../../src/core/job-store.js'
import { AdvertTable } from '../../src/core/discovery/table.js'
import { Reputation } from '../../src/core/reputation.js'
import { NOT_A_WORKER } from '../../src/core/discovery/advert.js'
import { FakeClock } from '../helpers/fake-clock.js'
import type { JobMeta, StoredResult } from '../../src/core/job-store.js'
import type { LocalWorker } from '../../src/net/job-runner.js'
import type { TaskProtocol } from '../../src/net/task-service.js'
import type { PeerEndpoint } from '../../src/core/diversity.js'
import type { PeerId } from '@libp2p/interface'

const SHA = 'ab'.repeat(32)

function meta (taskCount: number): JobMeta {
  return { jobId: 'job-1', modelId: 'm', model: { sha256: SHA, size: 10, name: 'm' }, datasetId: 'd', taskCount, replicas: 1, adaptive: false, state: 'queued', createdAt: 1, updatedAt: 1 }
}

function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>(r => { resolve = r })
  return { promise, resolve }
}

/** The requester's own worker: every task answers at once with one byte. */
const local: LocalWorker = {
  slots: 1,
  run: async () => ({ outputs: [{ name: 'y', dtype: 'uint8', dims: [1], data: new Uint8Array([7]) }], timings: { queueMs: 0, loadMs: 0, inferenceMs: 1, totalMs: 1 }, backend: 'test', threads: 1 })
}

function runner (store: MemoryJobStore, adverts: AdvertTable, m: JobMeta): JobRunner {
  return new JobRunner({
    meta: m,
    source: { task: () => ({ inputs: [], outputNames: ['y'] }) },
    tasks: { hasDirect: () => false, run: async () => { throw new Error('no network in this test') } } as unknown as TaskProtocol,
    adverts,
    store,
    compare: () => true,
    reputation: new Reputation(),
    local,
    flushMs: 0,
    stallMs: Number.POSITIVE_INFINITY
  })
}

describe('JobRunner', () => {
  it('stop() during run()\'s opening reads ends run(): no state written, no advert listener left', async () => {
    const gate = deferred()
    const store = new (class extends MemoryJobStore {
      override async getResults (jobId: string): Promise<StoredResult[]> {
        await gate.promise // a slow store (IndexedDB on a busy page)
        return await super.getResults(jobId)
      }
    })()
    await store.putJob(meta(4))
    const adverts = new AdvertTable({ clock: new FakeClock(0) })
    const listen = vi.spyOn(adverts, 'addEventListener')
    const r = runner(store, adverts, meta(4))
    const ran = r.run()
    await r.stop() // the page's Pause right after Resume
    gate.resolve()
    const final = await ran
    expect(final.state).toBe('queued')
    expect((await store.getJob('job-1'))!.state).toBe('queued')
    expect(listen).not.toHaveBeenCalled()
  })

  it('a cancel written by another process or tab just before the runner writes its meta stands; the run stops with it', async () => {
    // Another writer cancels the job just before the runner's next meta write, however the runner
    // goes about it (a read then a write, or the write alone): the window the review found.
    let armed = false
    const store = new (class extends MemoryJobStore {
      private async cancelNow (): Promise<void> {
        if (!armed) return
        armed = false
        const stored = (await super.getJob('job-1'))!
        await super.putJob({ ...stored, state: 'cancelled', error: 'cancelled', updatedAt: 2 })
      }

      override async getJob (jobId: string): Promise<JobMeta | undefined> {
        const m = await super.getJob(jobId)
        await this.cancelNow()
        return m
      }

      override async putJob (m: JobMeta): Promise<void> {
        if (m.state !== 'cancelled') await this.cancelNow()
        await super.putJob(m)
      }
    })()
    await store.putJob(meta(50))
    const r = runner(store, new AdvertTable({ clock: new FakeClock(0) }), meta(50))
    r.addEventListener('result', () => { if (r.progress.done === 1) armed = true })
    const final = await r.run()
    expect(final.state).toBe('cancelled')
    expect((await store.getJob('job-1'))!.state).toBe('cancelled')
    expect(final.error).toBe('cancelled')
  })

  it('ends a replicated job decided only when a worker is placed, after its result (its first direct connection came with the task)', async () => {
    const [a, b] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')]).then(keys => keys.map(k => peerIdFromPrivateKey(k).toString()))
    // A worker has a direct connection once a task went to it: the first task dials it.
    const dialled = new Set<string>()
    const output = { name: 'y', dtype: 'uint8' as const, dims: [1], data: new Uint8Array([7]) }
    const tasks = {
      hasDirect: (peer: PeerId) => dialled.has(peer.toString()),
      run: async (peer: PeerId) => {
        dialled.add(peer.toString())
        return { result: { outputs: [output], timings: { queueMs: 0, loadMs: 0, inferenceMs: 1, totalMs: 1 }, backend: 'test', threads: 1 }, roundTripMs: 1, networkMs: 0 }
      }
    } as unknown as TaskProtocol
    const located: string[] = []
    const m = { ...meta(1), replicas: 2 }
    const store = new MemoryJobStore()
    await store.putJob(m)
    const adverts = new AdvertTable({ clock: new FakeClock(0) })
    for (const [i, peer] of [a, b].entries()) {
      adverts.accept(peer, { seq: 1, leaving: false, advert: { ...NOT_A_WORKER, kind: 'node', worker: true, slots: 1, freeSlots: 1, models: [SHA] } }, Uint8Array.of(i))
    }
    const r = new JobRunner({
      meta: m,
      source: { task: () => ({ inputs: [], outputNames: ['y'] }) },
      tasks,
      adverts,
      store,
      compare: () => true,
      reputation: new Reputation(),
      // Private addresses: two independent witnesses once both are placed.
      endpoint: async (peer): Promise<PeerEndpoint> => { located.push(peer); return { ip: `10.0.0.${located.length}` } },
      flushMs: 0,
      stallMs: Number.POSITIVE_INFINITY
    })
    const final = await r.run()
    expect(final.state).toBe('done')
    expect(located.sort()).toEqual([a, b].sort())
    const [result] = await store.getResults('job-1')
    expect(result!.agreedBy.sort()).toEqual([a, b].sort())
  })
})

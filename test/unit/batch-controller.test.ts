/**
 * BatchController's control of a job while it starts (its parts are read before a runner exists):
 * one run per job, and a pause or cancel in that window is never lost. The page's IndexedDB store is
 * stood in for by the core's MemoryJobStore with the page's records; no runner is ever built here.
 */
import { describe, expect, it } from 'vitest'
import { BatchController } from '../../src/browser/batch.js'
import { MemoryJobStore, transitionJob } from '../../src/core/job-store.js'
import type { CustomModel, Dataset } from '../../src/browser/job-custom.js'
import type { IdbJobStore } from '../../src/browser/idb-job-store.js'
import type { TabJobRecord } from '../../src/browser/job-record.js'
import type { TabPeer } from '../../src/browser/tab-peer.js'
import type { WireTensor } from '../../src/core/tensor.js'
import type { ModelRef } from '../../src/core/task-types.js'

/** MemoryJobStore plus what the page keeps next to a job (its record, model and inputs). */
class PageStore extends MemoryJobStore {
  private readonly records = new Map<string, TabJobRecord>()
  private readonly inputs = new Map<string, WireTensor[][]>()
  private readonly models = new Map<string, Uint8Array>()
  async getTabJob (jobId: string): Promise<TabJobRecord | undefined> { return this.records.get(jobId) }
  async putTabJob (record: TabJobRecord): Promise<void> { this.records.set(record.jobId, { ...record }) }
  async listTabJobs (): Promise<TabJobRecord[]> { return [...this.records.values()] }
  async putInputs (jobId: string, tasks: readonly WireTensor[][]): Promise<void> { this.inputs.set(jobId, [...tasks]) }
  async getInputs (jobId: string): Promise<WireTensor[][]> { return this.inputs.get(jobId) ?? [] }
  async putModel (jobId: string, bytes: Uint8Array): Promise<void> { this.models.set(jobId, bytes) }
  async getModel (jobId: string): Promise<Uint8Array | undefined> { return this.models.get(jobId) }
}

/**
 * The tab as far as a starting job uses it: a run serves its model again (addModel) before it can
 * start; the test holds those calls to act while the job is starting.
 */
class HeldTab {
  /** addModel calls made by runs (the job's creation not counted). */
  runCalls = 0
  private holding = false
  private readonly held: Array<() => void> = []
  private readonly called: Array<() => void> = []

  async addModel (bytes: Uint8Array, name: string): Promise<ModelRef> {
    if (this.holding) {
      this.runCalls++
      this.called.shift()?.()
      await new Promise<void>(resolve => this.held.push(resolve))
    }
    return { sha256: 'a'.repeat(64), size: bytes.byteLength, name }
  }

  hold (): void { this.holding = true }
  /** Resolves at the next held call. */
  async nextCall (): Promise<void> { await new Promise<void>(resolve => this.called.push(resolve)) }
  release (): void { for (const r of this.held.splice(0)) r() }
}

const model = { name: 'tiny.onnx', bytes: new Uint8Array(16), inputs: [], outputs: [], declared: { inputs: [], outputs: [] } } as unknown as CustomModel
const dataset: Dataset = { tasks: [[], []], source: 'two tasks', bytes: 0 }

async function setup (): Promise<{ c: BatchController, store: PageStore, tab: HeldTab, jobId: string }> {
  const store = new PageStore()
  const tab = new HeldTab()
  const c = new BatchController(tab as unknown as TabPeer, store as unknown as IdbJobStore)
  const { jobId } = await c.createCustom(model, dataset, { replicas: 1 })
  tab.hold()
  return { c, store, tab, jobId }
}

describe('BatchController while a job starts', () => {
  it('runs a job once however often run() is called meanwhile (a Resume clicked while it starts), and a cancel then is kept', async () => {
    const { c, store, tab, jobId } = await setup()
    const called = tab.nextCall()
    const first = c.run(jobId)
    const second = c.run(jobId)
    await called
    expect(c.isRunning(jobId)).toBe(true)
    expect((await c.list()).find(e => e.meta.jobId === jobId)?.runningIn).toBe('this tab')
    const cancelling = c.cancel(jobId)
    tab.release()
    await cancelling
    const [a, b] = await Promise.all([first, second])
    expect(tab.runCalls).toBe(1)
    expect(a).toBe(b)
    expect(a.stopped).toBe(true)
    expect(a.meta.state).toBe('cancelled')
    expect((await store.getJob(jobId))?.state).toBe('cancelled')
    expect(c.isRunning(jobId)).toBe(false)
  })

  it('does not start a job cancelled elsewhere while its parts were read (another tab, another process)', async () => {
    const { c, store, tab, jobId } = await setup()
    const called = tab.nextCall()
    const run = c.run(jobId)
    await called
    await transitionJob(store, jobId, 'cancelled', { error: 'cancelled by its requester' })
    tab.release()
    const outcome = await run
    expect(outcome.stopped).toBe(true)
    expect(outcome.meta.state).toBe('cancelled')
    expect((await store.getJob(jobId))?.state).toBe('cancelled')
  })

  it('keeps a job paused while it started paused: it never runs and stays resumable', async () => {
    const { c, store, tab, jobId } = await setup()
    const called = tab.nextCall()
    const run = c.run(jobId)
    await called
    const pausing = c.pause(jobId)
    tab.release()
    await pausing
    const outcome = await run
    expect(outcome.stopped).toBe(true)
    expect(outcome.meta.state).toBe('queued')
    expect((await store.getTabJob(jobId))?.paused).toBe(true)
    expect(await c.unfinished()).toBeUndefined()
  })
})

/**
 * Job.results() (src/node/requester-job.ts): outcomes in input order however results arrive,
 * failed tasks in place, revoked results not yielded, stored results first, a stopped job's rest
 * refused, an abort honoured. Driven by a stand-in runner (an EventTarget with meta and stop) over
 * the reference MemoryJobStore.
 */
import { describe, expect, it, vi } from 'vitest'
import { Job } from '../../src/node/requester-job.js'
import { MemoryJobStore } from '../../src/core/job-store.js'
import type { JobMeta, StoredResult } from '../../src/core/job-store.js'
import type { TaskOutput } from '../../src/node/requester-job.js'
import type { JobRunner, TaskFailedEvent } from '../../src/net/job-runner.js'
import type { JobBlocked } from '../../src/core/job-blocked.js'

const sha = 'a'.repeat(64)

function meta (taskCount: number): JobMeta {
  return { jobId: 'job-1', modelId: 'm', model: { sha256: sha, size: 1, name: 'm' }, datasetId: 'd', taskCount, replicas: 1, adaptive: false, state: 'running', createdAt: 1, updatedAt: 1 }
}

function result (index: number): StoredResult {
  return { index, outputs: [{ name: 'y', dtype: 'float32', dims: [1], data: new Uint8Array(new Float32Array([index]).buffer) }], agreedBy: ['w'], crossChecked: false }
}

class StandIn extends EventTarget {
  meta: JobMeta
  /** What the runner's blocked check says now (JobRunner.blockedNow). */
  blockedNow?: JobBlocked
  block (b: JobBlocked | undefined): void { this.blockedNow = b; this.dispatchEvent(new Event('progress')) }
  /** Decided results not yet written to the store (the runner's flush comes later). */
  readonly pending: StoredResult[] = []
  private end!: (m: JobMeta) => void
  readonly run = new Promise<JobMeta>(resolve => { this.end = resolve })
  constructor (m: JobMeta) { super(); this.meta = m }
  decide (r: StoredResult): void { this.dispatchEvent(new CustomEvent('result', { detail: r })) }
  fail (task: number): void { this.dispatchEvent(new CustomEvent<TaskFailedEvent>('task-failed', { detail: { task, reason: 'max-attempts', lastError: 'inference-failed: boom' } })) }
  revoke (tasks: number[]): void { this.dispatchEvent(new CustomEvent('revoke', { detail: tasks })) }
  finish (state: JobMeta['state'], error?: string): void { this.meta = { ...this.meta, state, error }; this.end(this.meta) }
  async stop (): Promise<void> { this.finish('running') }
  get progress (): unknown { return {} }
  unflushed (): StoredResult[] { return [...this.pending] }
}

async function setup (taskCount: number, stored: StoredResult[] = []): Promise<{ job: Job, runner: StandIn, store: MemoryJobStore }> {
  const store = new MemoryJobStore()
  await store.putJob(meta(taskCount))
  if (stored.length > 0) await store.putResults('job-1', stored)
  const runner = new StandIn(meta(taskCount))
  return { job: new Job(store, meta(taskCount), runner as unknown as JobRunner, runner.run), runner, store }
}

/** Pulls `n` outcomes from the generator. */
async function take (it: AsyncGenerator<TaskOutput>, n: number): Promise<TaskOutput[]> {
  const out = []
  for (let i = 0; i < n; i++) {
    const next = await it.next()
    if (next.done === true) break
    out.push(next.value)
  }
  return out
}

describe('Job.results', () => {
  it('yields in input order whatever order results come in, failed tasks in their place', async () => {
    const { job, runner } = await setup(4)
    const it = job.results()
    const first = take(it, 4)
    await Promise.resolve()
    runner.decide(result(2))
    runner.fail(1)
    runner.decide(result(3))
    runner.decide(result(0))
    const got = await first
    expect(got.map(o => o.index)).toEqual([0, 1, 2, 3])
    expect(got[1]!.error).toBe('failed after repeated attempts (last error: inference-failed: boom)')
    expect(got[2]!.outputs![0]!.data).toEqual([2])
  })

  it('starts with what the store holds and does not yield a result revoked before its turn', async () => {
    const { job, runner, store } = await setup(3, [result(0)])
    const it = job.results()
    expect((await take(it, 1)).map(o => o.index)).toEqual([0])
    const rest = take(it, 2)
    await Promise.resolve()
    runner.decide(result(2))
    runner.revoke([2])
    runner.decide(result(1))
    await store.putResults('job-1', [result(1), { ...result(2), agreedBy: ['other'] }])
    runner.finish('done')
    const got = await rest
    expect(got.map(o => o.index)).toEqual([1, 2])
    // Task 2's outcome is the one stored after the revocation, not the revoked one.
    expect(got[1]!.agreedBy).toEqual(['other'])
  })

  it('gives a reader that starts mid-job the results decided but not yet in the store', async () => {
    const { job, runner } = await setup(3, [result(0)])
    // Decided before the reader came: its event is gone, the store does not have it yet.
    runner.pending.push(result(1))
    runner.decide(result(1))
    const got = take(job.results(), 3)
    await Promise.resolve()
    runner.decide(result(2))
    runner.finish('done')
    const outcomes = await got
    expect(outcomes.map(o => o.index)).toEqual([0, 1, 2])
    expect(outcomes[1]).not.toHaveProperty('error')
    expect(outcomes[1]).toMatchObject({ outputs: [{ data: [1] }] })
  })

  it('gives every missing task the job\'s error once it failed', async () => {
    const { job, runner } = await setup(2)
    const it = job.results()
    const got = take(it, 2)
    await Promise.resolve()
    runner.decide(result(0))
    runner.finish('failed', '1 task(s) could not be verified')
    expect(await got).toEqual([expect.objectContaining({ index: 0 }), { index: 1, error: '1 task(s) could not be verified' }])
  })

  it('refuses the rest of a job stopped before it finished: it is resumable', async () => {
    const { job } = await setup(2)
    const it = job.results()
    const pending = it.next()
    await job.stop()
    await expect(pending).rejects.toMatchObject({ code: 'cancelled', message: expect.stringMatching(/stopped before it finished.*resume/) })
  })

  it('ends with a cancelled error on abort, and removes its listeners', async () => {
    const { job, runner } = await setup(2)
    const controller = new AbortController()
    const it = job.results({ signal: controller.signal })
    const removed = vi.spyOn(job, 'removeEventListener')
    const pending = it.next()
    await Promise.resolve()
    controller.abort()
    await expect(pending).rejects.toMatchObject({ code: 'cancelled' })
    expect(removed.mock.calls.map(c => c[0]).sort()).toEqual(['end', 'result', 'revoke', 'task-failed'])
    // A result after the generator ended reaches no leftover listener, and throws nothing.
    runner.decide(result(0))
  })

  it('cancels a running job for good, and refuses to cancel a finished one', async () => {
    const { job, store } = await setup(2)
    const cancelled = await job.cancel()
    expect(cancelled.state).toBe('cancelled')
    expect(cancelled.error).toBe('cancelled')
    expect((await store.getJob('job-1'))!.state).toBe('cancelled')
    await expect(job.cancel()).rejects.toMatchObject({ code: 'conflict' })
  })
})

describe('Job.giveUpAfter', () => {
  const tooFew = (sinceMs: number): JobBlocked => ({ code: 'too-few-workers', message: 'needs 3 different workers, 1 available', sinceMs })

  it('stops a job blocked for the wait (counted from when the block began) and results() says why', async () => {
    vi.useFakeTimers({ now: 10_000 })
    try {
      const { job, runner } = await setup(2)
      job.giveUpAfter(5000)
      runner.block(tooFew(9000)) // blocked for 1 s already
      await vi.advanceTimersByTimeAsync(3999)
      expect(job.finished).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      await job.done
      expect(job.stalled).toMatchObject({ code: 'stalled', message: 'needs 3 different workers, 1 available (no progress for 5 s)' })
      await expect(job.results().next()).rejects.toMatchObject({ code: 'stalled', message: expect.stringMatching(/needs 3 different workers/) })
    } finally {
      vi.useRealTimers()
    }
  })

  it('keeps waiting when the block clears in time, and starts counting again from a new one', async () => {
    vi.useFakeTimers({ now: 0 })
    try {
      const { job, runner } = await setup(2)
      job.giveUpAfter(5000)
      runner.block(tooFew(0))
      await vi.advanceTimersByTimeAsync(4000)
      runner.block(undefined)
      await vi.advanceTimersByTimeAsync(10_000)
      expect(job.finished).toBe(false)
      runner.block(tooFew(14_000))
      await vi.advanceTimersByTimeAsync(4999)
      expect(job.finished).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      await job.done
      expect(job.stalled?.code).toBe('stalled')
    } finally {
      vi.useRealTimers()
    }
  })
})

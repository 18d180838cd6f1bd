/** WorkQueue batches: waiting tasks that look the same go to the executor in one call, each keeping its own outcome and deadline. */
import { describe, expect, it } from 'vitest'
import { TaskError } from '../../src/core/errors.js'
import { WorkQueue, batchKey } from '../../src/core/work-queue.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { flushMicrotasks } from '../helpers/memory-channel.js'
import type { TaskRequest } from '../../src/core/task-types.js'
import type { BatchOutcome, ExecutionResult, Executor, WorkQueueOptions } from '../../src/core/work-queue.js'

const SHA = 'a'.repeat(64)

function request (taskId: string, options: { rows?: number, width?: number, outputNames?: string[], sha?: string, timeoutMs?: number } = {}): TaskRequest {
  const rows = options.rows ?? 1
  const width = options.width ?? 4
  return {
    taskId,
    jobId: 'job',
    model: { sha256: options.sha ?? SHA, size: 1, name: 'm' },
    inputs: [fromTypedArray('x', 'float32', [rows, width], new Float32Array(rows * width))],
    timeoutMs: options.timeoutMs ?? 0,
    outputNames: options.outputNames ?? []
  }
}

const ok = (): ExecutionResult => ({ outputs: [], loadMs: 0, inferenceMs: 1, backend: 'cpu', threads: 1 })

/** Calls run until the test answers them; each call records the task ids it was given. */
class BatchingExecutor implements Executor {
  readonly calls: Array<{ ids: string[], requester: string, signal?: AbortSignal, answer: (outcomes: BatchOutcome[]) => void, fail: (e: unknown) => void }> = []

  async execute (r: TaskRequest, requester: string, signal?: AbortSignal): Promise<ExecutionResult> {
    const [outcome] = await this.executeMany([r], requester, signal)
    if (outcome instanceof Error) throw outcome
    return outcome
  }

  async executeMany (requests: TaskRequest[], requester: string, signal?: AbortSignal): Promise<BatchOutcome[]> {
    return await new Promise((resolve, reject) => {
      this.calls.push({ ids: requests.map(r => r.taskId), requester, signal, answer: resolve, fail: reject })
    })
  }
}

function setup (options: WorkQueueOptions = {}) {
  const clock = new FakeClock()
  const executor = new BatchingExecutor()
  const queue = new WorkQueue(executor, { clock, ...options })
  const outcomes = new Map<string, { ok?: boolean, error?: TaskError }>()
  const submit = (r: TaskRequest, requester = 'peer-A'): void => {
    const o: { ok?: boolean, error?: TaskError } = {}
    outcomes.set(r.taskId, o)
    queue.submit(r, requester).then(() => { o.ok = true }, (e: unknown) => { o.error = e as TaskError })
  }
  return { clock, executor, queue, outcomes, submit }
}

describe('batchKey', () => {
  it('is the same for tasks that differ only in their first dim, and differs for anything else', () => {
    expect(batchKey(request('a'))).toBe(batchKey(request('b', { rows: 3 })))
    expect(batchKey(request('a'))).not.toBe(batchKey(request('b', { width: 5 })))
    expect(batchKey(request('a'))).not.toBe(batchKey(request('b', { outputNames: ['probs'] })))
    expect(batchKey(request('a'))).not.toBe(batchKey(request('b', { sha: 'b'.repeat(64) })))
  })

  it('is undefined for a task that cannot be stacked: a scalar input, or inputs whose first dims differ', () => {
    const scalar = { ...request('s'), inputs: [fromTypedArray('x', 'float32', [], new Float32Array(1))] }
    expect(batchKey(scalar)).toBeUndefined()
    const uneven = { ...request('u'), inputs: [fromTypedArray('x', 'float32', [1, 2], new Float32Array(2)), fromTypedArray('y', 'float32', [2, 2], new Float32Array(4))] }
    expect(batchKey(uneven)).toBeUndefined()
    const twice = { ...request('t'), inputs: [fromTypedArray('x', 'float32', [1, 2], new Float32Array(2)), fromTypedArray('x', 'float32', [1, 2], new Float32Array(2))] }
    expect(batchKey(twice)).toBeUndefined()
  })
})

describe('WorkQueue batches', () => {
  it('gives a freed slot every waiting task of the same requester that looks the same, up to maxTasks', async () => {
    const { executor, queue, outcomes, submit } = setup({ slots: 1, batch: { maxTasks: 3 } })
    for (const id of ['t1', 't2', 't3', 't4', 't5']) submit(request(id))
    submit(request('wide', { width: 5 }))
    submit(request('t6'))
    await flushMicrotasks()
    expect(executor.calls.map(c => c.ids)).toEqual([['t1']])
    expect(queue.batchTasks).toBe(3)

    executor.calls[0].answer([ok()])
    await flushMicrotasks()
    expect(outcomes.get('t1')?.ok).toBe(true)
    // The oldest same-looking tasks, never the one with other dims.
    expect(executor.calls.map(c => c.ids)).toEqual([['t1'], ['t2', 't3', 't4']])
    expect(queue.running).toBe(3)
    expect(queue.queued).toBe(3)

    executor.calls[1].answer([ok(), ok(), ok()])
    await flushMicrotasks()
    expect(executor.calls[2].ids).toEqual(['t5', 't6'])
    executor.calls[2].answer([ok(), ok()])
    await flushMicrotasks()
    expect(executor.calls[3].ids).toEqual(['wide'])
  })

  it('never puts tasks of two requesters in one call, and still serves requesters round-robin', async () => {
    const { executor, submit } = setup({ slots: 1 })
    submit(request('a0'), 'peer-A')
    await flushMicrotasks()
    submit(request('a1'), 'peer-A')
    submit(request('b1'), 'peer-B')
    submit(request('a2'), 'peer-A')
    submit(request('b2'), 'peer-B')
    executor.calls[0].answer([ok()])
    await flushMicrotasks()
    expect(executor.calls[1]).toMatchObject({ ids: ['a1', 'a2'], requester: 'peer-A' })
    executor.calls[1].answer([ok(), ok()])
    await flushMicrotasks()
    expect(executor.calls[2]).toMatchObject({ ids: ['b1', 'b2'], requester: 'peer-B' })
  })

  it('runs each task alone with batching off, or when the executor cannot batch', async () => {
    const off = setup({ slots: 1, batch: false })
    for (const id of ['t1', 't2', 't3']) off.submit(request(id))
    await flushMicrotasks()
    off.executor.calls[0].answer([ok()])
    await flushMicrotasks()
    expect(off.executor.calls.map(c => c.ids)).toEqual([['t1'], ['t2']])
    expect(off.queue.batchTasks).toBe(1)

    const plain = new WorkQueue({ execute: async () => ok() }, { batch: { maxTasks: 8 } })
    expect(plain.batchTasks).toBe(1)
  })

  it('never takes (nor lets a worker advertise) a batch larger than the tasks that may wait', () => {
    const batching = { execute: async () => ok(), executeMany: async () => [] }
    expect(new WorkQueue(batching, { maxQueued: 4, batch: { maxTasks: 64 } }).batchTasks).toBe(4)
    expect(new WorkQueue(batching, { batch: { maxTasks: 64 } }).batchTasks).toBe(32)
  })

  it('stacks no more input bytes than maxInputBytes; a bigger task runs alone', async () => {
    // Each task: 4 float32 = 16 bytes.
    const { executor, submit } = setup({ slots: 1, batch: { maxTasks: 10, maxInputBytes: 40 } })
    for (const id of ['t0', 't1', 't2', 't3']) submit(request(id))
    submit(request('big', { rows: 3 }))
    await flushMicrotasks()
    executor.calls[0].answer([ok()])
    await flushMicrotasks()
    expect(executor.calls[1].ids).toEqual(['t1', 't2'])
    executor.calls[1].answer([ok(), ok()])
    await flushMicrotasks()
    expect(executor.calls[2].ids).toEqual(['t3'])
    executor.calls[2].answer([ok()])
    await flushMicrotasks()
    expect(executor.calls[3].ids).toEqual(['big'])
  })

  it('gives each task its own outcome: one failing in a batch fails alone', async () => {
    const { executor, outcomes, submit } = setup({ slots: 1 })
    for (const id of ['t0', 't1', 't2', 't3']) submit(request(id))
    await flushMicrotasks()
    executor.calls[0].answer([ok()])
    await flushMicrotasks()
    executor.calls[1].answer([ok(), new TaskError('bad-request', 'model has no input "y"'), ok()])
    await flushMicrotasks()
    expect(outcomes.get('t1')?.ok).toBe(true)
    expect(outcomes.get('t2')?.error?.code).toBe('bad-request')
    expect(outcomes.get('t3')?.ok).toBe(true)
  })

  it('fails every task of a call that throws, or answers the wrong number of outcomes, and frees the slot', async () => {
    const { executor, outcomes, submit, queue } = setup({ slots: 1 })
    for (const id of ['t0', 't1', 't2', 't3', 't4']) submit(request(id))
    await flushMicrotasks()
    executor.calls[0].answer([ok()])
    await flushMicrotasks()
    executor.calls[1].fail(new TaskError('inference-failed', 'the inference process ended'))
    await flushMicrotasks()
    expect(['t1', 't2', 't3', 't4'].map(id => outcomes.get(id)?.error?.code)).toEqual(['inference-failed', 'inference-failed', 'inference-failed', 'inference-failed'])
    expect(queue.running).toBe(0)

    for (const id of ['u0', 'u1', 'u2']) submit(request(id))
    await flushMicrotasks()
    executor.calls[2].answer([ok()])
    await flushMicrotasks()
    executor.calls[3].answer([ok()])
    await flushMicrotasks()
    expect(outcomes.get('u1')?.error?.message).toMatch(/1 outcomes for 2 tasks/)
    expect(outcomes.get('u2')?.error?.code).toBe('inference-failed')
  })

  it('fails a task past its deadline alone; the run is stopped and its slot freed only once every task in it is past', async () => {
    const { clock, executor, outcomes, submit, queue } = setup({ slots: 1 })
    submit(request('t0'))
    await flushMicrotasks()
    submit(request('short', { timeoutMs: 2000 }))
    submit(request('long', { timeoutMs: 5000 }))
    submit(request('other', { width: 9 }))
    executor.calls[0].answer([ok()])
    await flushMicrotasks()
    const batch = executor.calls[1]
    expect(batch.ids).toEqual(['short', 'long'])

    clock.advance(2000)
    await flushMicrotasks()
    expect(outcomes.get('short')?.error?.code).toBe('timeout')
    expect(batch.signal?.aborted).toBe(false)
    expect(executor.calls).toHaveLength(2) // the slot is still the long task's
    expect(queue.running).toBe(1)

    clock.advance(3000)
    await flushMicrotasks()
    expect(outcomes.get('long')?.error?.code).toBe('timeout')
    expect(batch.signal?.aborted).toBe(true)
    expect(executor.calls[2].ids).toEqual(['other'])

    // A late answer changes nothing.
    batch.answer([ok(), ok()])
    await flushMicrotasks()
    expect(outcomes.get('long')?.ok).toBeUndefined()
    expect(queue.running).toBe(1)
  })

  it('lands the other tasks of a batch when one of them timed out', async () => {
    const { clock, executor, outcomes, submit, queue } = setup({ slots: 1 })
    submit(request('t0'))
    await flushMicrotasks()
    submit(request('short', { timeoutMs: 2000 }))
    submit(request('long', { timeoutMs: 5000 }))
    executor.calls[0].answer([ok()])
    await flushMicrotasks()
    clock.advance(2000)
    await flushMicrotasks()
    executor.calls[1].answer([ok(), ok()])
    await flushMicrotasks()
    expect(outcomes.get('short')?.error?.code).toBe('timeout')
    expect(outcomes.get('long')?.ok).toBe(true)
    expect(queue.running).toBe(0)
  })

  it('cancels a waiting task before it joins a batch', async () => {
    const { executor, outcomes, submit, queue } = setup({ slots: 1 })
    for (const id of ['t0', 't1', 't2', 't3']) submit(request(id))
    await flushMicrotasks()
    expect(queue.cancel('t2', 'peer-A')).toBe(true)
    executor.calls[0].answer([ok()])
    await flushMicrotasks()
    expect(executor.calls[1].ids).toEqual(['t1', 't3'])
    expect(outcomes.get('t2')?.error?.message).toMatch(/cancelled/)
  })
})

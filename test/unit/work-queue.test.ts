import { describe, expect, it } from 'vitest'
import { TaskError } from '../../src/core/errors.js'
import { MAX_TIMEOUT_MS, OWN_REQUESTER, WorkQueue } from '../../src/core/work-queue.js'
import { LOCAL_PEER } from '../../src/net/job-runner.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { flushMicrotasks } from '../helpers/memory-channel.js'
import type { TaskRequest, TaskResult } from '../../src/core/task-types.js'
import type { ExecutionResult, Executor, WorkEvent, WorkQueueOptions } from '../../src/core/work-queue.js'

/** An executor whose tasks run until the test finishes or fails them. */
class ControlledExecutor implements Executor {
  /** Task ids in the order execution started. */
  readonly started: string[] = []
  private readonly running = new Map<string, { resolve: (r: ExecutionResult) => void, reject: (e: unknown) => void }>()

  /** The abort signal each task was started with. */
  readonly signals = new Map<string, AbortSignal>()

  async execute (request: TaskRequest, _requester: string, signal?: AbortSignal): Promise<ExecutionResult> {
    this.started.push(request.taskId)
    if (signal != null) this.signals.set(request.taskId, signal)
    return await new Promise((resolve, reject) => { this.running.set(request.taskId, { resolve, reject }) })
  }

  async finish (taskId: string, extra: Partial<ExecutionResult> = {}): Promise<void> {
    this.take(taskId).resolve({ outputs: [], loadMs: 0, inferenceMs: 0, backend: 'cpu', threads: 1, ...extra })
    await flushMicrotasks()
  }

  async fail (taskId: string, err: unknown): Promise<void> {
    this.take(taskId).reject(err)
    await flushMicrotasks()
  }

  private take (taskId: string) {
    const r = this.running.get(taskId)
    if (r == null) throw new Error(`task ${taskId} is not running`)
    this.running.delete(taskId)
    return r
  }
}

function request (taskId: string, timeoutMs = 0): TaskRequest {
  return { taskId, jobId: 'job', model: { sha256: 'a'.repeat(64), size: 1, name: 'm' }, inputs: [], timeoutMs, outputNames: [] }
}

type Outcome = { result?: TaskResult, error?: TaskError }

function setup (options: WorkQueueOptions = {}) {
  const clock = new FakeClock()
  const executor = new ControlledExecutor()
  const events: WorkEvent[] = []
  let wall = 1_700_000_000_000
  const queue = new WorkQueue(executor, { clock, wallClock: () => wall + clock.now(), onEvent: e => events.push(e), ...options })
  const outcomes = new Map<string, Outcome>()
  /** Submits without awaiting; the outcome lands in `outcomes`. */
  function submit (taskId: string, requester = 'peer-A', timeoutMs = 0): void {
    const outcome: Outcome = {}
    outcomes.set(taskId, outcome)
    queue.submit(request(taskId, timeoutMs), requester).then(
      r => { outcome.result = r },
      (e: unknown) => { outcome.error = e as TaskError }
    )
  }
  return { clock, executor, events, queue, outcomes, submit, wall }
}

describe('WorkQueue admission', () => {
  it('runs at most `slots` tasks at once and starts the next as one finishes', async () => {
    const { executor, queue, submit, outcomes } = setup({ slots: 2 })
    for (const id of ['t1', 't2', 't3', 't4', 't5']) submit(id)
    await flushMicrotasks()
    expect(executor.started).toEqual(['t1', 't2'])
    expect(queue.running).toBe(2)
    expect(queue.queued).toBe(3)

    await executor.finish('t2')
    expect(outcomes.get('t2')?.result).toBeDefined()
    expect(executor.started).toEqual(['t1', 't2', 't3'])
    expect(queue.running).toBe(2)
    expect(queue.queued).toBe(2)
  })

  it('answers busy once every slot is taken and the waiting room is full', async () => {
    const { executor, queue, submit, outcomes } = setup({ slots: 1, maxQueued: 2 })
    for (const id of ['run', 'wait1', 'wait2']) submit(id)
    await expect(queue.submit(request('extra'), 'peer-A')).rejects.toMatchObject({ code: 'busy', message: expect.stringMatching(/full \(2 waiting, 1 running\)/) })

    await executor.finish('run')
    expect(outcomes.get('run')?.result).toBeDefined()
    submit('later') // a place opened up
    await flushMicrotasks()
    expect(outcomes.get('later')?.error).toBeUndefined()
    expect(queue.queued).toBe(2)
  })

  it('with no waiting room, runs a task when a slot is free and answers busy otherwise', async () => {
    const { executor, queue, submit, outcomes } = setup({ slots: 1, maxQueued: 0 })
    submit('first')
    await flushMicrotasks()
    expect(outcomes.get('first')).toEqual({})
    expect(executor.started).toEqual(['first'])

    await expect(queue.submit(request('second'), 'peer-A')).rejects.toMatchObject({ code: 'busy' })
    await executor.finish('first')
    expect(outcomes.get('first')?.result).toBeDefined()
  })

  it('serves requesters round-robin: a late requester is not stuck behind a long backlog', async () => {
    const { executor, submit } = setup({ slots: 1 })
    for (let i = 0; i < 10; i++) submit(`A${i}`, 'peer-A')
    submit('B0', 'peer-B')
    submit('B1', 'peer-B')
    await flushMicrotasks()

    while (executor.started.length < 12) {
      await executor.finish(executor.started[executor.started.length - 1])
    }
    expect(executor.started).toEqual(['A0', 'A1', 'B0', 'A2', 'B1', 'A3', 'A4', 'A5', 'A6', 'A7', 'A8', 'A9'])
    expect(executor.started.indexOf('B1')).toBeLessThan(executor.started.indexOf('A9'))
  })
})

describe('WorkQueue deadlines and cancellation', () => {
  it('fails a task still waiting at its deadline with timeout, and never runs it', async () => {
    const { clock, executor, queue, submit, outcomes } = setup({ slots: 1 })
    submit('long')
    submit('short', 'peer-B', 1000)
    await flushMicrotasks()

    clock.advance(999)
    await flushMicrotasks()
    expect(outcomes.get('short')).toEqual({})
    clock.advance(1)
    await flushMicrotasks()
    expect(outcomes.get('short')?.error?.code).toBe('timeout')
    expect(outcomes.get('short')?.error?.message).toMatch(/1000 ms/)
    expect(queue.queued).toBe(0)

    await executor.finish('long')
    expect(executor.started).toEqual(['long'])
  })

  it('fails a running task at its deadline, using the default deadline when the request has none', async () => {
    const { clock, executor, submit, outcomes } = setup({ defaultTimeoutMs: 5000 })
    submit('stuck')
    await flushMicrotasks()
    clock.advance(5000)
    await flushMicrotasks()
    expect(outcomes.get('stuck')?.error?.code).toBe('timeout')

    await executor.finish('stuck') // a result after the deadline changes nothing
    expect(outcomes.get('stuck')?.result).toBeUndefined()
  })

  it('cancel drops a waiting task (only for its own requester) but not a running one', async () => {
    const { executor, queue, submit, outcomes } = setup({ slots: 1 })
    submit('running')
    submit('waiting')
    submit('other')
    await flushMicrotasks()

    expect(queue.cancel('waiting', 'peer-B')).toBe(false) // someone else's task
    expect(queue.cancel('running', 'peer-A')).toBe(false)
    expect(queue.cancel('unknown', 'peer-A')).toBe(false)
    expect(queue.cancel('waiting', 'peer-A')).toBe(true)
    await flushMicrotasks()
    expect(outcomes.get('waiting')?.error?.message).toMatch(/cancelled/)
    expect(queue.queued).toBe(1)

    await executor.finish('running')
    expect(executor.started).toEqual(['running', 'other'])
  })

  it('computes queue and total time from the clock, and passes the executor timings through', async () => {
    const { clock, executor, submit, outcomes } = setup({ slots: 1 })
    submit('first')
    submit('second')
    await flushMicrotasks()

    clock.advance(300)
    await executor.finish('first', { loadMs: 120, inferenceMs: 80, backend: 'webgpu', threads: 2 })
    clock.advance(200)
    await executor.finish('second', { inferenceMs: 150 })

    expect(outcomes.get('first')?.result).toMatchObject({ backend: 'webgpu', threads: 2, timings: { queueMs: 0, loadMs: 120, inferenceMs: 80, totalMs: 300 } })
    expect(outcomes.get('second')?.result?.timings).toEqual({ queueMs: 300, loadMs: 0, inferenceMs: 150, totalMs: 500 })
  })

  it('emits queued → running → done, and queued → running → failed with the error', async () => {
    const { executor, events, submit } = setup({ slots: 1 })
    submit('ok', 'peer-A')
    submit('bad', 'peer-B')
    await flushMicrotasks()
    await executor.finish('ok')
    await executor.fail('bad', new Error('shape mismatch'))

    const summary = events.map(e => `${e.taskId}:${e.state}`)
    expect(summary).toEqual(['ok:queued', 'ok:running', 'bad:queued', 'ok:done', 'bad:running', 'bad:failed'])
    expect(events.find(e => e.state === 'done')).toMatchObject({ taskId: 'ok', requester: 'peer-A', jobId: 'job', model: 'm' })
    expect(events.find(e => e.state === 'done')?.result).toBeDefined()
    const failed = events.find(e => e.state === 'failed')
    expect(failed?.requester).toBe('peer-B')
    expect(failed?.error).toBeInstanceOf(TaskError)
    expect(failed?.error?.code).toBe('inference-failed')
    expect(failed?.error?.message).toBe('shape mismatch')
  })

  it('emits queued → failed for a task that timed out before running', async () => {
    const { clock, events, submit } = setup({ slots: 1 })
    submit('blocker')
    submit('doomed', 'peer-A', 1000)
    await flushMicrotasks()
    clock.advance(1000)
    await flushMicrotasks()
    expect(events.filter(e => e.taskId === 'doomed').map(e => e.state)).toEqual(['queued', 'failed'])
  })

  it('raises a deadline below a second to one (a tiny deadline would replace an inference process per task)', async () => {
    const { clock, outcomes, submit } = setup({ slots: 1 })
    submit('blocker')
    submit('hurried', 'peer-A', 1)
    await flushMicrotasks()
    clock.advance(999)
    await flushMicrotasks()
    expect(outcomes.get('hurried')).toEqual({})
    clock.advance(1)
    await flushMicrotasks()
    expect(outcomes.get('hurried')?.error).toMatchObject({ code: 'timeout', message: expect.stringMatching(/no less than 1000 ms/) })
  })
})

describe('WorkQueue fair shares between requesters', () => {
  it('admits a newcomer\'s first task while another requester fills every place, dropping that one\'s newest waiting task', async () => {
    // The attack: one requester queues as much as the worker takes, with the longest deadline.
    const { executor, queue, submit, outcomes } = setup({ slots: 1, maxQueued: 32 })
    for (let i = 0; i < 33; i++) submit(`A${i}`, 'peer-A', 2 ** 31 - 1)
    await flushMicrotasks()
    expect(queue.running + queue.queued).toBe(33)
    await expect(queue.submit(request('A-extra'), 'peer-A')).rejects.toMatchObject({ code: 'busy' })

    submit('B0', 'peer-B')
    await flushMicrotasks()
    expect(outcomes.get('B0')).toEqual({}) // admitted, waiting
    expect(outcomes.get('A32')?.error).toMatchObject({ code: 'busy', message: expect.stringMatching(/make room for another requester/) })
    expect(queue.running + queue.queued).toBe(33) // the bound holds

    // B is served within one round, ahead of A's backlog.
    await executor.finish('A0')
    await executor.finish('A1')
    expect(executor.started).toEqual(['A0', 'A1', 'B0'])
  })

  it('lets each requester hold its share of a full worker, and no more', async () => {
    const { queue, submit, outcomes } = setup({ slots: 2, maxQueued: 4 })
    for (let i = 0; i < 6; i++) submit(`A${i}`, 'peer-A')
    await flushMicrotasks()
    for (let i = 0; i < 3; i++) submit(`B${i}`, 'peer-B')
    await flushMicrotasks()
    // 6 places, 2 requesters: 3 each. A gave up its three newest waiting tasks.
    expect(['B0', 'B1', 'B2'].map(id => outcomes.get(id)?.error)).toEqual([undefined, undefined, undefined])
    expect(['A3', 'A4', 'A5'].map(id => outcomes.get(id)?.error?.code)).toEqual(['busy', 'busy', 'busy'])
    await expect(queue.submit(request('B3'), 'peer-B')).rejects.toMatchObject({ code: 'busy', message: expect.stringMatching(/2 requesters share it, 3 place\(s\) each/) })
    await expect(queue.submit(request('A6'), 'peer-A')).rejects.toMatchObject({ code: 'busy' })

    // A third requester gets in too: 2 places each now.
    submit('C0', 'peer-C')
    await flushMicrotasks()
    expect(outcomes.get('C0')?.error).toBeUndefined()
    expect(queue.running + queue.queued).toBe(6)
  })

  it('never drops a running task to make room: with no waiting room a full worker is busy for everyone', async () => {
    const { queue, submit, outcomes } = setup({ slots: 2, maxQueued: 0 })
    submit('A0', 'peer-A')
    submit('A1', 'peer-A')
    await flushMicrotasks()
    await expect(queue.submit(request('B0'), 'peer-B')).rejects.toMatchObject({ code: 'busy' })
    expect(outcomes.get('A0')).toEqual({})
    expect(outcomes.get('A1')).toEqual({})
  })
})

describe('WorkQueue deadline cap', () => {
  it('clamps a deadline above the maximum to it, and says so when the task times out', async () => {
    const { clock, submit, outcomes } = setup({ maxTimeoutMs: 60_000 })
    submit('greedy', 'peer-A', 2 ** 31 - 1)
    await flushMicrotasks()
    clock.advance(59_999)
    await flushMicrotasks()
    expect(outcomes.get('greedy')).toEqual({})
    clock.advance(1)
    await flushMicrotasks()
    expect(outcomes.get('greedy')?.error).toMatchObject({ code: 'timeout', message: expect.stringMatching(/within 60000 ms .*asked 2147483647 ms.*at most 60000 ms/) })
  })

  it('has a documented maximum of ten minutes by default', async () => {
    expect(MAX_TIMEOUT_MS).toBe(600_000)
    const { clock, submit, outcomes } = setup()
    submit('greedy', 'peer-A', 2 ** 31 - 1)
    await flushMicrotasks()
    clock.advance(MAX_TIMEOUT_MS)
    await flushMicrotasks()
    expect(outcomes.get('greedy')?.error?.code).toBe('timeout')
  })
})

describe('WorkQueue deadlines stop running work', () => {
  it('frees the slot at the deadline, aborts the running execution, and starts the next task at once', async () => {
    const { clock, executor, queue, submit, outcomes } = setup({ slots: 1 })
    submit('slow', 'peer-A', 1000)
    submit('next', 'peer-B', 5000)
    await flushMicrotasks()
    const signal = executor.signals.get('slow')!
    expect(signal.aborted).toBe(false)

    clock.advance(1000)
    await flushMicrotasks()
    expect(outcomes.get('slow')?.error?.code).toBe('timeout')
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toMatchObject({ code: 'timeout' })
    // The executor has not given up yet, but the slot already went to the next task.
    expect(executor.started).toEqual(['slow', 'next'])
    expect(queue.running).toBe(1)

    // When the aborted execution finally ends it does not free a second slot.
    await executor.fail('slow', signal.reason)
    expect(queue.running).toBe(1)
    submit('third', 'peer-A')
    await flushMicrotasks()
    expect(executor.started).toEqual(['slow', 'next'])
    await executor.finish('next')
    expect(executor.started).toEqual(['slow', 'next', 'third'])
  })

  it('reports when a task ran by the wall clock, on its result and its events', async () => {
    const { clock, executor, events, submit, outcomes, wall } = setup({ slots: 1 })
    submit('t')
    await flushMicrotasks()
    clock.advance(250)
    await executor.finish('t')
    expect(outcomes.get('t')?.result).toMatchObject({ startedAt: wall, endedAt: wall + 250 })
    expect(events.find(e => e.state === 'running')?.startedAt).toBe(wall)
    expect(events.find(e => e.state === 'done')).toMatchObject({ startedAt: wall, endedAt: wall + 250 })
  })
})

describe('WorkQueue volunteer pause', () => {
  it('refuses others\' tasks while paused but runs this peer\'s own (its jobs\' tasks and spot checks)', async () => {
    const { executor, queue, submit, outcomes } = setup({ slots: 1 })
    queue.paused = true
    submit('theirs', 'peer-A')
    submit('mine', OWN_REQUESTER)
    await flushMicrotasks()
    expect(outcomes.get('theirs')?.error?.code).toBe('busy')
    expect(executor.started).toEqual(['mine'])
    await executor.finish('mine')
    expect(outcomes.get('mine')?.result).toBeDefined()
  })

  it('names its own requester as the job runner names the requester\'s own worker', () => {
    expect(OWN_REQUESTER).toBe(LOCAL_PEER)
  })
})

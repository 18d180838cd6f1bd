/** BackendPicker: each model runs on the backend that measured fastest on its first task. */
import { describe, expect, it } from 'vitest'
import { BackendPicker } from '../../src/core/backend-picker.js'
import { TaskError } from '../../src/core/errors.js'
import { FakeClock } from '../helpers/fake-clock.js'
import type { BackendCandidate, BackendChoice } from '../../src/core/backend-picker.js'
import type { TaskRequest } from '../../src/core/task-types.js'

function request (sha: string, taskId = 't'): TaskRequest {
  return { taskId, jobId: 'j', model: { sha256: sha.padEnd(64, '0'), size: 1, name: sha }, inputs: [], timeoutMs: 0, outputNames: [] }
}

/** A candidate whose inference time per model is given; counts its runs and releases. */
function candidate (name: string, msByModel: Record<string, number | Error>, log: string[] = []) {
  const runs: string[] = []
  const released: string[] = []
  const c: BackendCandidate = {
    name,
    execute: async (r) => {
      runs.push(r.taskId)
      log.push(name)
      const ms = msByModel[r.model.name]
      if (ms instanceof Error) throw ms
      return { outputs: [], loadMs: 0, inferenceMs: ms, backend: name, threads: 1 }
    },
    release: async (sha) => { released.push(sha) }
  }
  return { c, runs, released }
}

/** A picker whose choices can be awaited: the measurement ends after the first task is answered. */
/** A candidate whose runs wait until open() (a measurement held under way). */
function gated (name: string): { c: BackendCandidate, open: () => void } {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  return {
    c: { name, execute: async () => { await gate; return { outputs: [], loadMs: 0, inferenceMs: 1, backend: name, threads: 1 } } },
    open
  }
}

function picker (candidates: BackendCandidate[], options: ConstructorParameters<typeof BackendPicker>[1] = {}) {
  const made = new Map<string, (c: BackendChoice) => void>()
  const promises = new Map<string, Promise<BackendChoice>>()
  const choice = async (sha: string): Promise<BackendChoice> => {
    const key = sha.padEnd(64, '0')
    if (!promises.has(key)) promises.set(key, new Promise(resolve => made.set(key, resolve)))
    return await promises.get(key)!
  }
  const p = new BackendPicker(candidates, {
    ...options,
    onChoice: (sha, c) => {
      options.onChoice?.(sha, c)
      void choice(sha)
      made.get(sha)?.(c)
    }
  })
  return { p, choice }
}

describe('BackendPicker', () => {
  it('measures every candidate on a model\'s first task, then runs that model on the fastest only', async () => {
    const one = candidate('wasm 1 thread', { tiny: 0.1, big: 60 })
    const two = candidate('wasm 2 threads', { tiny: 0.3, big: 33 })
    const choices: string[] = []
    const { p, choice } = picker([two.c, one.c], { trials: 3, onChoice: (sha, c) => choices.push(`${sha.slice(0, 4)}:${c.backend}`) })
    await p.execute(request('tiny'), 'r')
    expect((await choice('tiny')).backend).toBe('wasm 1 thread')
    await p.execute(request('big'), 'r')
    expect((await choice('big')).backend).toBe('wasm 2 threads')
    expect(choices).toEqual(['tiny:wasm 1 thread', 'big0:wasm 2 threads'])
    expect(p.choices.get(request('big').model.sha256)?.medians).toEqual({ 'wasm 2 threads': 33, 'wasm 1 thread': 60 })
    // The losers free the model's session.
    expect(two.released).toEqual([request('tiny').model.sha256])
    expect(one.released).toEqual([request('big').model.sha256])

    const runs = one.runs.length
    expect((await p.execute(request('big', 'later'), 'r')).backend).toBe('wasm 2 threads')
    expect(two.runs.at(-1)).toBe('later')
    expect(one.runs.length).toBe(runs)
  })

  it('answers a model\'s first task from the first candidate\'s first run, and measures the others after it', async () => {
    const log: string[] = []
    const a = candidate('a', { m: 2 }, log)
    // b's runs wait until the gate opens: the first task must not wait for them.
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    const b: BackendCandidate = {
      name: 'b',
      execute: async () => {
        log.push('b')
        await gate
        return { outputs: [], loadMs: 0, inferenceMs: 1, backend: 'b', threads: 1 }
      }
    }
    const { p, choice } = picker([a.c, b], { warmups: 2, trials: 3, clearMargin: 10 })
    const first = await p.execute(request('m'), 'r')
    expect(first.backend).toBe('a')
    expect(a.runs.length).toBeLessThanOrEqual(2)
    expect(p.measuringModels).toEqual([request('m').model.sha256])
    open()
    // A task arriving meanwhile waits for the winner.
    const second = p.execute(request('m', 'second'), 'r')
    expect((await choice('m')).backend).toBe('b')
    expect((await second).backend).toBe('b')
    // Both warmed up (a's answering run was its first warm-up), then timed in turn.
    expect(log).toEqual(['a', 'a', 'b', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'b'])
  })

  it('never holds a model\'s session on more than two candidates at once: each duel\'s loser frees it before the next', async () => {
    const loaded = new Set<string>()
    let most = 0
    const session = (name: string, ms: number): BackendCandidate => ({
      name,
      execute: async () => {
        loaded.add(name)
        most = Math.max(most, loaded.size)
        return { outputs: [], loadMs: 0, inferenceMs: ms, backend: name, threads: 1 }
      },
      release: async () => { loaded.delete(name) }
    })
    const { p, choice } = picker([session('wasm 4 threads', 30), session('wasm 1 thread', 50), session('webgpu', 20)])
    await p.execute(request('big'), 'r')
    expect((await choice('big')).backend).toBe('webgpu')
    expect(most).toBe(2)
    expect([...loaded]).toEqual(['webgpu'])
  })

  it('measures a slow model in fewer runs: a duel ends once its timed runs used the budget or one side is clearly faster', async () => {
    const a = candidate('a', { big: 500, close: 10 })
    const b = candidate('b', { big: 450, close: 11 })
    const { p, choice } = picker([a.c, b.c], { warmups: 2, trials: 5, trialBudgetMs: 600, clearMargin: 1.5 })
    await p.execute(request('big'), 'r')
    await choice('big')
    // One timed round (500 + 450 ms ≥ 600 ms) after the warm-ups.
    expect(a.runs.length).toBe(3)
    expect(b.runs.length).toBe(3)
    // A fast model close to a tie gets every trial.
    await p.execute(request('close'), 'r')
    await choice('close')
    expect(a.runs.length).toBe(3 + 2 + 5)
    expect(b.runs.length).toBe(3 + 2 + 5)
  })

  it('skips a backend whose onnxruntime fails (an op WebGPU lacks) and uses the others', async () => {
    const gpu = candidate('webgpu', { m: new TaskError('inference-failed', 'unsupported op') })
    const cpu = candidate('wasm', { m: 5 })
    const { p, choice } = picker([gpu.c, cpu.c])
    expect((await p.execute(request('m'), 'r')).backend).toBe('wasm')
    expect((await choice('m')).backend).toBe('wasm')
    expect(gpu.runs).toEqual(['t'])
  })

  it('keeps the candidate that answered when a challenger fails during the measurement', async () => {
    const cpu = candidate('wasm', { m: 5 })
    const gpu = candidate('webgpu', { m: new TaskError('inference-failed', 'unsupported op') })
    const { p, choice } = picker([cpu.c, gpu.c])
    expect((await p.execute(request('m'), 'r')).backend).toBe('wasm')
    expect(await choice('m')).toEqual({ backend: 'wasm', medians: {} })
    expect(gpu.released).toEqual([request('m').model.sha256])
  })

  it('ends a measurement that outlasts its time (a stuck backend): the candidate that answered wins and the stuck one is told to stop', async () => {
    const clock = new FakeClock()
    const cpu = candidate('wasm', { m: 5 })
    let stopped: unknown
    let started!: () => void
    const running = new Promise<void>(resolve => { started = resolve })
    const stuck: BackendCandidate = {
      name: 'webgpu',
      // Never finishes unless aborted (a hung GPU run).
      execute: async (_r, _from, signal) => await new Promise((_resolve, reject) => {
        signal?.addEventListener('abort', () => { stopped = signal.reason; reject(signal.reason) }, { once: true })
        started()
      })
    }
    const { p, choice } = picker([cpu.c, stuck], { clock, measureTimeoutMs: 60_000 })
    expect((await p.execute(request('m'), 'r')).backend).toBe('wasm')
    const later = p.execute(request('m', 'later'), 'r')
    await running
    clock.advance(60_000)
    expect((await choice('m')).backend).toBe('wasm')
    expect(stopped).toMatchObject({ code: 'timeout' })
    expect((await later).backend).toBe('wasm')
    expect(clock.pendingTimers).toBe(0)
  })

  it('fails at once, without trying other backends, when the model itself cannot be had', async () => {
    const a = candidate('a', { m: new TaskError('model-hash-mismatch', 'corrupted transfer') })
    const b = candidate('b', { m: 1 })
    const p = new BackendPicker([a.c, b.c])
    await expect(p.execute(request('m'), 'r')).rejects.toMatchObject({ code: 'model-hash-mismatch' })
    expect(b.runs).toEqual([])
    // Nothing was chosen: the next task measures again.
    expect(p.choices.size).toBe(0)
    expect(p.measuringModels).toEqual([])
  })

  it('lets concurrent first tasks wait for one measurement', async () => {
    const a = candidate('a', { m: 2 })
    const b = candidate('b', { m: 1 })
    const p = new BackendPicker([a.c, b.c], { trials: 1 })
    const results = await Promise.all([p.execute(request('m', 'x'), 'r'), p.execute(request('m', 'y'), 'r')])
    expect(results.map(r => r.backend)).toEqual(['a', 'b'])
    expect(a.runs).toEqual(['x', 'x', 'x'])
    expect(b.runs).toEqual(['x', 'x', 'x', 'y'])
  })

  it('with one candidate, runs tasks straight through (nothing to measure)', async () => {
    const only = candidate('only', { m: 3 })
    const p = new BackendPicker([only.c])
    await p.execute(request('m'), 'r')
    expect(only.runs).toEqual(['t'])
  })

  it('takes earlier choices for the same backends and skips measuring those models', async () => {
    const a = candidate('a', { m: 1, n: 1 })
    const b = candidate('b', { m: 2, n: 2 })
    const { p, choice } = picker([a.c, b.c])
    p.restore({
      [request('m').model.sha256]: { backend: 'b', medians: { a: 3, b: 1 } },
      [request('n').model.sha256]: { backend: 'gone', medians: {} }
    })
    expect((await p.execute(request('m'), 'r')).backend).toBe('b')
    expect(a.runs).toEqual([])
    // A choice naming a backend this picker lacks is measured afresh.
    await p.execute(request('n'), 'r')
    expect((await choice('n')).backend).toBe('a')
  })
})

describe('BackendPicker and deadlines', () => {
  it('hands the task\'s abort signal to the candidate that runs it', async () => {
    const seen: Array<AbortSignal | undefined> = []
    const c: BackendCandidate = { name: 'only', execute: async (_r, _from, signal) => { seen.push(signal); return { outputs: [], loadMs: 0, inferenceMs: 1, backend: 'only', threads: 1 } } }
    const controller = new AbortController()
    await new BackendPicker([c]).execute(request('m'), 'r', controller.signal)
    expect(seen).toEqual([controller.signal])
  })

  it('stops measuring once the deadline passed, and measures again for a later task', async () => {
    const controller = new AbortController()
    let runs = 0
    const slow: BackendCandidate = {
      name: 'slow',
      execute: async (_r, _from, signal) => {
        runs++
        expect(signal).toBe(controller.signal)
        // The deadline passes during this candidate's first run: the queue aborts it.
        if (runs === 1) { controller.abort(new TaskError('timeout', 'deadline')); throw signal!.reason }
        return { outputs: [], loadMs: 0, inferenceMs: 1, backend: 'slow', threads: 1 }
      }
    }
    const other = candidate('other', { m: 1 })
    const p = new BackendPicker([slow, other.c])
    await expect(p.execute(request('m'), 'r', controller.signal)).rejects.toMatchObject({ code: 'timeout' })
    expect(other.runs).toEqual([]) // no candidate ran after the abort
    expect(p.choices.size).toBe(0)
    await p.execute(request('m', 'again'), 'r')
    expect(p.choices.size).toBe(1)
  })

  it('never leaves a model waiting on a measurement that threw: waiting and later tasks run, and the next one measures again', async () => {
    const a = candidate('a', { m: 1 })
    let released!: () => void
    const releasing = new Promise<void>(resolve => { released = resolve })
    // b loses its duel, and its release throws before returning a promise.
    const b: BackendCandidate = {
      name: 'b',
      execute: async () => ({ outputs: [], loadMs: 0, inferenceMs: 5, backend: 'b', threads: 1 }),
      release: (() => { released(); throw new Error('release broke') }) as BackendCandidate['release']
    }
    const p = new BackendPicker([a.c, b], { trials: 1 })
    await p.execute(request('m'), 'r')
    await releasing
    // Every callback chained on the measurement has run once the I/O phase comes round.
    await new Promise(resolve => setImmediate(resolve))
    expect(p.measuringModels).toEqual([])
    expect((await p.execute(request('m', 'later'), 'r')).backend).toBe('a')
  })

  it('lets tasks that waited on a first task which failed on its own inputs run for themselves, not fail with its error', async () => {
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    const a: BackendCandidate = {
      name: 'a',
      execute: async (r) => {
        if (r.taskId === 'bad') {
          await gate
          throw new TaskError('bad-request', 'model has no input "x"')
        }
        return { outputs: [], loadMs: 0, inferenceMs: 1, backend: 'a', threads: 1 }
      }
    }
    const b = candidate('b', { m: 2 })
    const p = new BackendPicker([a, b.c], { trials: 1 })
    const bad = p.execute(request('m', 'bad'), 'r1')
    const good = p.execute(request('m', 'good'), 'r2')
    open()
    await expect(bad).rejects.toMatchObject({ code: 'bad-request' })
    expect((await good).backend).toBe('a')
  })

  it('holds every other task (any model) until a measurement running after its first answer ends: it keeps that task\'s slot', async () => {
    const a = candidate('a', { m: 2, n: 1 })
    const { c: b, open } = gated('b')
    const { p, choice } = picker([a.c, b], { trials: 1 })
    p.restore({ [request('n').model.sha256]: { backend: 'a', medians: {} } })
    await p.execute(request('m'), 'r')
    // The measurement of m is under way (b's first warm-up waits at the gate).
    const other = p.execute(request('n', 'other'), 'r')
    await new Promise(resolve => setImmediate(resolve))
    expect(a.runs).not.toContain('other')
    open()
    await choice('m')
    expect((await other).backend).toBe('a')
    expect(a.runs.at(-1)).toBe('other')
  })

  it('fails a task held behind a measurement once its own deadline passes, without waiting for the measurement', async () => {
    const a = candidate('a', { m: 2, n: 1 })
    const { c: b, open } = gated('b')
    const { p, choice } = picker([a.c, b], { trials: 1 })
    p.restore({ [request('n').model.sha256]: { backend: 'a', medians: {} } })
    await p.execute(request('m'), 'r')
    const deadline = new AbortController()
    const other = p.execute(request('n', 'other'), 'r', deadline.signal)
    deadline.abort(new Error('deadline'))
    await expect(other).rejects.toThrow('deadline')
    expect(a.runs).not.toContain('other')
    open()
    await choice('m')
  })
})


/** BackendPicker: each model runs on the backend that measured fastest on its first task. */
import { describe, expect, it } from 'vitest'
import { BackendPicker } from '../../src/core/backend-picker.js'
import { TaskError } from '../../src/core/errors.js'
import type { BackendCandidate } from '../../src/core/backend-picker.js'
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

describe('BackendPicker', () => {
  it('measures every candidate on a model\'s first task, then runs that model on the fastest only', async () => {
    const one = candidate('wasm 1 thread', { tiny: 0.1, big: 60 })
    const two = candidate('wasm 2 threads', { tiny: 0.3, big: 33 })
    const choices: string[] = []
    const p = new BackendPicker([two.c, one.c], { trials: 3, onChoice: (sha, c) => choices.push(`${sha.slice(0, 4)}:${c.backend}`) })
    expect((await p.execute(request('tiny'), 'r')).backend).toBe('wasm 1 thread')
    expect((await p.execute(request('big'), 'r')).backend).toBe('wasm 2 threads')
    expect(choices).toEqual(['tiny:wasm 1 thread', 'big0:wasm 2 threads'])
    expect(p.choices.get(request('big').model.sha256)?.medians).toEqual({ 'wasm 2 threads': 33, 'wasm 1 thread': 60 })
    // 2 warm-ups + 3 timed runs per candidate per model.
    expect(one.runs.length).toBe(10)
    expect(two.runs.length).toBe(10)
    // The losers free the model's session.
    expect(two.released).toEqual([request('tiny').model.sha256])
    expect(one.released).toEqual([request('big').model.sha256])

    await p.execute(request('big', 'later'), 'r')
    expect(two.runs.at(-1)).toBe('later')
    expect(one.runs.length).toBe(10)
  })

  it('warms every candidate up before timing any, then times them round-robin', async () => {
    const log: string[] = []
    const p = new BackendPicker([candidate('a', { m: 2 }, log).c, candidate('b', { m: 1 }, log).c], { warmups: 2, trials: 3 })
    await p.execute(request('m'), 'r')
    expect(log).toEqual(['a', 'a', 'b', 'b', 'a', 'b', 'a', 'b', 'a', 'b'])
  })

  it('skips a backend whose onnxruntime fails (an op WebGPU lacks) and uses the others', async () => {
    const gpu = candidate('webgpu', { m: new TaskError('inference-failed', 'unsupported op') })
    const cpu = candidate('wasm', { m: 5 })
    const p = new BackendPicker([gpu.c, cpu.c])
    expect((await p.execute(request('m'), 'r')).backend).toBe('wasm')
  })

  it('fails at once, without trying other backends, when the model itself cannot be had', async () => {
    const a = candidate('a', { m: new TaskError('model-hash-mismatch', 'corrupted transfer') })
    const b = candidate('b', { m: 1 })
    const p = new BackendPicker([a.c, b.c])
    await expect(p.execute(request('m'), 'r')).rejects.toMatchObject({ code: 'model-hash-mismatch' })
    expect(b.runs).toEqual([])
    // Nothing was chosen: the next task measures again.
    expect(p.choices.size).toBe(0)
  })

  it('lets concurrent first tasks wait for one measurement', async () => {
    const a = candidate('a', { m: 2 })
    const b = candidate('b', { m: 1 })
    const p = new BackendPicker([a.c, b.c], { trials: 1 })
    const results = await Promise.all([p.execute(request('m', 'x'), 'r'), p.execute(request('m', 'y'), 'r')])
    expect(results.map(r => r.backend)).toEqual(['b', 'b'])
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
    const p = new BackendPicker([a.c, b.c])
    p.restore({
      [request('m').model.sha256]: { backend: 'b', medians: { a: 3, b: 1 } },
      [request('n').model.sha256]: { backend: 'gone', medians: {} }
    })
    expect((await p.execute(request('m'), 'r')).backend).toBe('b')
    expect(a.runs).toEqual([])
    // A choice naming a backend this picker lacks is measured afresh.
    expect((await p.execute(request('n'), 'r')).backend).toBe('a')
    expect(a.runs.length).toBe(5)
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
})

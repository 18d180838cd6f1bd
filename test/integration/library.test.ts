/**
 * The library (src/node/requester.ts) against a real relay and real onnxruntime-node workers over
 * direct WebRTC: run, map in input order with replicas, cancel through an AbortSignal, a bad input
 * named by its index, your own model by path, and a persisted job stopped mid-way and resumed by a
 * new requester on the same data directory.
 */
import '../../src/node/polyfill.js'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, RequesterError } from '../../src/index.js'
import { dynamicAddMul } from '../../src/models/test-models.js'
import { requesterInference } from '../../src/node/local-inference.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { memoryBomb, shapeTensor } from '../helpers/hostile-models.js'
import { Cleanup, TaskValve, heldOutDigits, startPeer, startRelay, withTimeout, WAIT_MS } from './helpers.js'
import type { Requester, TaskOutput } from '../../src/index.js'

const cleanup = new Cleanup()
let relayAddr: string
let net: Requester
const digits = heldOutDigits()
/** Lets the resume test stop a job with tasks surely left. */
const valve = new TaskValve()

const digitInputs = (i: number): { input: { dims: number[], data: Float32Array } } => ({ input: { dims: [1, 1, 28, 28], data: digits[i % digits.length]!.pixels } })
const argmax = (out: TaskOutput): number => {
  const probs = out.outputs!.find(t => t.name === 'probs')!.data as number[]
  return probs.indexOf(Math.max(...probs))
}

beforeAll(async () => {
  relayAddr = (await startRelay(cleanup)).addr
  await startPeer(cleanup, relayAddr, { queue: { slots: 2 }, wrapExecutor: valve.wrap })
  await startPeer(cleanup, relayAddr, { queue: { slots: 2 }, wrapExecutor: valve.wrap })
  net = await connect({ relays: relayAddr, dataDir: null })
  cleanup.add('requester', async () => { await net.close() })
  await net.waitForWorkers(2, { timeoutMs: WAIT_MS })
})

afterAll(async () => { await cleanup.run() })

describe('library', () => {
  it('lists the workers and the built-in models', async () => {
    expect(net.workers().filter(w => !w.paused)).toHaveLength(2)
    expect((await net.models()).map(m => m.builtin)).toEqual(expect.arrayContaining(['digits', 'ocr-det', 'ocr-rec']))
  })

  it('runs one task and returns its verified outputs', async () => {
    const out = await net.run('digits', digitInputs(0))
    expect(out.index).toBe(0)
    expect(out.outputs!.map(t => t.name)).toEqual(expect.arrayContaining(['probs']))
    expect(argmax(out)).toBe(digits[0]!.label)
    expect(out.agreedBy).toHaveLength(1)
  })

  it('maps an async iterable in input order with replicas 2, each result agreed by two workers', async () => {
    const n = 120
    async function * inputs (): AsyncGenerator<ReturnType<typeof digitInputs>> {
      for (let i = 0; i < n; i++) yield digitInputs(i)
    }
    const seen: TaskOutput[] = []
    const progress: number[] = []
    for await (const out of net.map('digits', inputs(), { replicas: 2, window: 50, onProgress: p => progress.push(p.done) })) seen.push(out)
    expect(seen.map(o => o.index)).toEqual([...Array(n).keys()])
    let right = 0
    for (const out of seen) {
      expect(out.error).toBeUndefined()
      expect(new Set(out.agreedBy).size).toBe(2)
      if (argmax(out) === digits[out.index]!.label) right++
    }
    // The model's own accuracy on these held-out digits is about 98 %.
    expect(right / n).toBeGreaterThan(0.9)
    expect(progress.at(-1)).toBe(n)
  })

  it('gives up on a map that cannot progress (replicas 3, two workers) with a stalled error saying why', async () => {
    const seen: TaskOutput[] = []
    const run = (async () => {
      for await (const out of net.map('digits', Array.from({ length: 20 }, (_, i) => digitInputs(i)), { replicas: 3, giveUpAfterMs: 1000 })) seen.push(out)
    })()
    const err = await withTimeout(run.then(() => undefined, (e: unknown) => e), WAIT_MS, 'the map to give up')
    expect(err).toBeInstanceOf(RequesterError)
    expect(err).toMatchObject({ code: 'stalled', message: 'needs 3 different workers, 2 available (no progress for 1 s)' })
    expect(seen).toEqual([])
  })

  it('stops a map through its AbortSignal with a cancelled error', async () => {
    const controller = new AbortController()
    const seen: number[] = []
    const run = (async () => {
      for await (const out of net.map('digits', Array.from({ length: 5000 }, (_, i) => digitInputs(i)), { signal: controller.signal })) {
        seen.push(out.index)
        if (seen.length === 10) controller.abort()
      }
    })()
    const err = await run.then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(RequesterError)
    expect((err as RequesterError).code).toBe('cancelled')
    expect(seen).toEqual([...Array(10).keys()])
  })

  it('names the input at fault and sends nothing for it', async () => {
    const bad = [digitInputs(0), digitInputs(1), { input: { dims: [1, 1, 28, 27], data: new Float32Array(28 * 27) } }]
    const err = await (async () => { for await (const _ of net.map('digits', bad, { window: 10 })) { /* drain */ } })().then(() => undefined, (e: unknown) => e)
    expect((err as RequesterError).code).toBe('bad-input')
    expect((err as Error).message).toMatch(/^input 2: input 'input': axis 3 must be 28/)
    await expect(net.run('digits', { nope: [1] })).rejects.toMatchObject({ code: 'bad-input' })
    await expect(net.run('no-such-model', {})).rejects.toMatchObject({ code: 'unknown-model' })
    await expect(net.run('digits', digitInputs(0), { replicas: 7 })).rejects.toMatchObject({ code: 'bad-request' })
  })

  it('runs your own model given by path, fetched by the workers by sha256', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-lib-'))
    const path = join(dir, 'add-mul.onnx')
    await writeFile(path, dynamicAddMul())
    const model = await net.model(path)
    expect(model.inputs.map(i => i.name)).toEqual(['a', 'b'])
    const out = await net.run(path, { a: [[1, 2, 3]], b: [[4, 5, 6]] }, { replicas: 2 })
    expect(out.outputs!.find(t => t.name === 'sum')).toMatchObject({ dims: [1, 3], data: [5, 7, 9] })
    expect(out.outputs!.find(t => t.name === 'product')).toMatchObject({ data: [4, 10, 18] })
    // Known by sha256 from now on.
    expect((await net.run(model.sha256, { a: [[1]], b: [[2]] })).outputs!.find(t => t.name === 'sum')!.data).toEqual([3])
  })

  it('resumes a persisted job stopped mid-way from a new requester on the same data directory', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'p2p-lib-data-'))
    const first = await connect({ relays: relayAddr, dataDir })
    let closed = false
    cleanup.add('first requester', async () => { if (!closed) await first.close() })
    await first.waitForWorkers(2, { timeoutMs: WAIT_MS })
    const total = 3000
    const job = await first.submit('digits', Array.from({ length: total }, (_, i) => digitInputs(i)))
    // Stop once some results are decided and written: from then on the workers start no task until
    // the valve opens, so the job cannot end before the stop lands, however fast the machine.
    try {
      await withTimeout(new Promise<void>(resolve => {
        const check = (): void => { if (job.progress.done >= 200) { valve.close(); job.removeEventListener('progress', check); resolve() } }
        job.addEventListener('progress', check)
      }), WAIT_MS, 'the first 200 results')
      await first.close()
      closed = true
      const stopped = await job.done
      expect(stopped.state).not.toBe('done')
    } finally {
      valve.open()
    }

    const second = await connect({ relays: relayAddr, dataDir })
    cleanup.add('second requester', async () => { await second.close() })
    expect((await second.jobs()).map(j => j.jobId)).toContain(job.id)
    // Same key, same peer id, moments later: the relay refuses a second sync this soon; it is asked again after its cooldown.
    expect(second.peerId).toBe(first.peerId)
    await second.waitForWorkers(2, { timeoutMs: WAIT_MS })
    // Two resumes at once (a gateway resuming at start while a client asks): one run, not two.
    const [resumed, twin] = await Promise.all([second.resume(job.id), second.resume(job.id)])
    expect(twin).toBe(resumed)
    const final = await resumed.done
    expect(final.state).toBe('done')
    expect(resumed.progress.restored).toBeGreaterThanOrEqual(200)
    let count = 0
    let right = 0
    for await (const out of resumed.results()) {
      expect(out.index).toBe(count++)
      if (argmax(out) === digits[out.index % digits.length]!.label) right++
    }
    expect(count).toBe(total)
    expect(right / total).toBeGreaterThan(0.9)
    await expect(second.job('nope')).rejects.toMatchObject({ code: 'unknown-job' })
  })

  it('recomputes spot checks in a child process: a model that allocates without bound fails there, not in the requester', async () => {
    const inference = requesterInference(net.peer, { maxMemoryMb: 256 })
    try {
      const bomb = await net.model({ bytes: memoryBomb(), name: 'bomb.onnx' })
      const rssBefore = process.memoryUsage().rss
      const err = await inference.recompute({ taskId: 'bomb', jobId: 'spot', model: { sha256: bomb.sha256, size: bomb.size, name: bomb.name }, inputs: [shapeTensor([2 ** 30])], timeoutMs: 0, outputNames: [] }).then(() => undefined, (e: unknown) => e)
      expect(err).toMatchObject({ code: 'inference-failed', message: expect.stringMatching(/memory/) })
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024)
      // The process is replaced: the next recomputation runs.
      const digits0 = digitInputs(0).input
      const out = await inference.recompute({ taskId: 'after', jobId: 'spot', model: modelRef(builtinModel('digits')), inputs: [{ name: 'input', dtype: 'float32', dims: digits0.dims, data: new Uint8Array(digits0.data.buffer.slice(0)) }], timeoutMs: 0, outputNames: [] })
      expect(out.map(t => t.name)).toContain('probs')
    } finally {
      inference.stop()
    }
  })

  it('ends a map with the error its onProgress threw, and closes the input iterable', async () => {
    let closed = false
    async function * inputs (): AsyncGenerator<ReturnType<typeof digitInputs>> {
      try {
        for (let i = 0; i < 500; i++) yield digitInputs(i)
      } finally {
        closed = true
      }
    }
    const thrown = new Error('a bug in the caller')
    const err = await (async () => {
      for await (const _ of net.map('digits', inputs(), { window: 100, onProgress: () => { throw thrown } })) { /* drain */ }
    })().then(() => undefined, (e: unknown) => e)
    expect(err).toBe(thrown)
    expect(closed).toBe(true)
  })

  it('resumes a digits job over a built-in dataset that has no saved request (started by an older submit)', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'p2p-lib-legacy-'))
    const older = await connect({ relays: relayAddr, dataDir })
    cleanup.add('legacy requester', async () => { await older.close() })
    const now = Date.now()
    const digitsModel = modelRef(builtinModel('digits'))
    await older.store.putJob({ jobId: 'legacy-job', modelId: 'digits', model: digitsModel, datasetId: 'mnist-test', taskCount: 40, replicas: 1, adaptive: false, state: 'running', createdAt: now, updatedAt: now })
    await older.waitForWorkers(1, { timeoutMs: WAIT_MS })
    const job = await older.resume('legacy-job')
    expect((await job.done).state).toBe('done')
    expect((await job.storedResults()).length).toBe(40)
  })
})

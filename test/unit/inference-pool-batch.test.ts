/** A batch crosses to the inference process as one message (real child process, real onnxruntime-node). */
import { readFile } from 'node:fs/promises'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { InferencePool } from '../../src/node/inference-pool.js'
import { TaskError } from '../../src/core/errors.js'
import { sha256Hex } from '../../src/core/hash.js'
import { fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { MODELS_DIR } from '../../src/node/node-peer.js'
import { relativeComparator } from '../../src/core/compare.js'
import { slowMatMul, shapeTensor } from '../helpers/hostile-models.js'
import { Rng } from '../helpers/fuzz.js'
import type { ModelRef, TaskRequest } from '../../src/core/task-types.js'
import type { ExecutionResult } from '../../src/core/work-queue.js'

const digits = builtinModel('digits')
const pools: InferencePool[] = []
afterAll(() => { for (const p of pools) p.stop() })

async function pool (models: Map<string, Uint8Array>, asked?: (sha: string) => void, maxOutputBytes?: number): Promise<InferencePool> {
  const p = new InferencePool({ size: 1, threads: [1], fetchModel: async (ref) => { asked?.(ref.sha256); return models.get(ref.sha256)! }, maxOutputBytes })
  pools.push(p)
  return p
}

function task (id: string, model: ModelRef, rows: number, rng: Rng, name = 'input'): TaskRequest {
  const values = Float32Array.from({ length: rows * 784 }, () => rng.float())
  return { taskId: id, jobId: 'j', model, inputs: [fromTypedArray(name, 'float32', [rows, 1, 28, 28], values)], timeoutMs: 0, outputNames: [] }
}

describe('InferencePool.executeMany', () => {
  it('answers each task of a batch apart: results equal single runs, a bad task fails alone', async () => {
    const bytes = new Uint8Array(await readFile(MODELS_DIR + digits.file))
    const p = await pool(new Map([[digits.sha256, bytes]]))
    const [candidate] = p.candidates
    const rng = new Rng(5)
    const ref = modelRef(digits)
    const tasks = [task('a', ref, 1, rng), task('b', ref, 2, rng), task('bad', ref, 1, rng, 'image'), task('c', ref, 1, rng)]
    const single: Array<ExecutionResult | undefined> = []
    for (const t of tasks) single.push(await candidate.execute(t, 'peer').catch(() => undefined))
    const outcomes = await candidate.executeMany!(tasks, 'peer')
    expect(outcomes).toHaveLength(4)
    expect(outcomes[2]).toBeInstanceOf(TaskError)
    expect((outcomes[2] as TaskError).code).toBe('bad-request')
    for (const i of [0, 1, 3]) {
      const r = outcomes[i] as ExecutionResult
      expect(relativeComparator()(r.outputs, single[i]!.outputs)).toBe(true)
      expect(r.backend).toBe(candidate.name)
    }
    expect((outcomes[1] as ExecutionResult).outputs[0].dims[0]).toBe(2)
  })

  it('carries no more output bytes in a batch\'s reply than in one task\'s: the tasks past that run alone', async () => {
    const bytes = new Uint8Array(await readFile(MODELS_DIR + digits.file))
    // One digit task's outputs: logits + probs, 2 × 10 float32 = 80 bytes; three rows 240.
    const p = await pool(new Map([[digits.sha256, bytes]]), undefined, 200)
    const [candidate] = p.candidates
    const rng = new Rng(13)
    const ref = modelRef(digits)
    const tasks = [task('a', ref, 1, rng), task('b', ref, 1, rng), task('c', ref, 1, rng), task('d', ref, 1, rng), task('wide', ref, 3, rng)]
    const single: ExecutionResult[] = []
    for (const t of tasks.slice(0, 4)) single.push(await candidate.execute(t, 'peer'))
    // Its private single-task path: what runs a task alone again.
    const alone = vi.spyOn(p as unknown as { execute: (...args: unknown[]) => Promise<ExecutionResult> }, 'execute')
    const outcomes = await candidate.executeMany!(tasks, 'peer')
    // a, b and c run (the call's 200 bytes reached by its last run, at 240); d and wide are not
    // run there but come back `again` and run alone, wide's 240 bytes over the limit on its own.
    expect(alone.mock.calls.map(c => (c[1] as TaskRequest).taskId)).toEqual(['d', 'wide'])
    for (const i of [0, 1, 2, 3]) expect(relativeComparator()((outcomes[i] as ExecutionResult).outputs, single[i].outputs)).toBe(true)
    expect((outcomes[4] as TaskError).message).toMatch(/over the 200-byte frame limit/)
  })

  it('stops a batch whose signal aborts by ending its process, and the next batch runs on a fresh one', async () => {
    const slow = slowMatMul(400, 1 / 256)
    const sha = await sha256Hex(slow)
    const bytes = new Uint8Array(await readFile(MODELS_DIR + digits.file))
    let loading!: () => void
    const loaded = new Promise<void>(resolve => { loading = resolve })
    const p = await pool(new Map([[sha, slow], [digits.sha256, bytes]]), (asked) => { if (asked === sha) loading() })
    const [candidate] = p.candidates
    const ref = { sha256: sha, size: slow.byteLength, name: 'slow' }
    const stuck = [0, 1].map(i => ({ taskId: `s${i}`, jobId: 'j', model: ref, inputs: [shapeTensor([256, 256])], timeoutMs: 0, outputNames: [] }))
    await p.warm()
    const [pid] = p.pids
    const controller = new AbortController()
    const running = candidate.executeMany!(stuck, 'peer', controller.signal)
    await loaded // the process has the batch: it asks for the model before running it
    controller.abort(new TaskError('timeout', 'every task of the batch is past its deadline'))
    await expect(running).rejects.toMatchObject({ code: 'timeout' })
    const rng = new Rng(9)
    const next = await candidate.executeMany!([task('n1', modelRef(digits), 1, rng), task('n2', modelRef(digits), 1, rng)], 'peer')
    expect(next.every(o => !(o instanceof Error))).toBe(true)
    expect(p.pids).not.toContain(pid)
    const probs = toTypedArray((next[0] as ExecutionResult).outputs.find(o => o.name === 'probs')!) as Float32Array
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4)
  })
})

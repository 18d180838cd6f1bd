/** OrtRunner.executeMany on real onnxruntime-node: stacked runs give each task what its own run gives. */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import onnxProto from 'onnx-proto'
import { NotRunInBatch, OrtRunner } from '../../src/runtime/ort-runner.js'
import { runnerCandidate } from '../../src/runtime/batch-outcome.js'
import { relativeComparator } from '../../src/core/compare.js'
import { TaskError } from '../../src/core/errors.js'
import { sha256Hex } from '../../src/core/hash.js'
import { DTYPE_BYTES, DTYPES, fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { identityAllDtypes } from '../../src/models/test-models.js'
import { MODELS_DIR } from '../../src/node/node-peer.js'
import { Rng } from '../helpers/fuzz.js'
import type { onnx as Onnx } from 'onnx-proto'
import type { OrtModule } from '../../src/runtime/ort-runner.js'
import type { ModelRef, TaskRequest } from '../../src/core/task-types.js'
import type { BatchOutcome, ExecutionResult } from '../../src/core/work-queue.js'
import type { WireTensor } from '../../src/core/tensor.js'

const { onnx } = onnxProto
const FLOAT = 1
const INT64 = 7
const dim = (d: number | string): Onnx.TensorShapeProto.IDimension => typeof d === 'string' ? { dimParam: d } : { dimValue: d }
const info = (name: string, elemType: number, dims: Array<number | string>): Onnx.IValueInfoProto => ({ name, type: { tensorType: { elemType, shape: { dim: dims.map(dim) } } } })
function model (name: string, graph: Omit<Onnx.IGraphProto, 'name'>): Uint8Array {
  return onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], producerName: 'p2p-ai-agents/test', graph: { name, ...graph } }).finish()
}

/** y = x + 1 with x fixed at [1, 4]: no free batch dim. */
const fixedBatch = (): Uint8Array => model('fixed', {
  node: [{ opType: 'Add', input: ['x', 'one'], output: ['y'] }],
  initializer: [{ name: 'one', dims: [1], dataType: FLOAT, floatData: [1] }],
  input: [info('x', FLOAT, [1, 4])],
  output: [info('y', FLOAT, [1, 4])]
})

/** y = x − mean of x over the batch: a free first dim whose rows depend on each other. */
const batchMean = (): Uint8Array => model('batch_mean', {
  node: [
    { opType: 'ReduceMean', input: ['x'], output: ['m'], attribute: [{ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [0] }, { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
    { opType: 'Sub', input: ['x', 'm'], output: ['y'] }
  ],
  input: [info('x', FLOAT, ['n', 4])],
  output: [info('y', FLOAT, ['n', 4])]
})

/** y[i] = x[i][idx[i]]: a task whose index is out of range fails inside onnxruntime. */
const gather = (): Uint8Array => model('gather', {
  node: [{ opType: 'GatherElements', input: ['x', 'idx'], output: ['y'], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] }],
  input: [info('x', FLOAT, ['n', 4]), info('idx', INT64, ['n', 1])],
  output: [info('y', FLOAT, ['n', 1])]
})

/** y = x + 1 over rows of 4: a free first dim, rows independent. */
const addOne = (): Uint8Array => model('add_one', {
  node: [{ opType: 'Add', input: ['x', 'one'], output: ['y'] }],
  initializer: [{ name: 'one', dims: [1], dataType: FLOAT, floatData: [1] }],
  input: [info('x', FLOAT, ['n', 4])],
  output: [info('y', FLOAT, ['n', 4])]
})

/** A runner over real onnxruntime-node that counts session.run calls (and the rows of each run's first input). */
async function counted (bytes: Uint8Array, options: Partial<ConstructorParameters<typeof OrtRunner>[2]> = {}, fails: (run: number, rows: number) => boolean = () => false): Promise<{ runner: OrtRunner, ref: ModelRef, runs: () => number, rowsPerRun: number[] }> {
  let runs = 0
  const rowsPerRun: number[] = []
  const spy = {
    ...ort,
    InferenceSession: {
      create: async (b: Uint8Array, o?: ort.InferenceSession.SessionOptions) => {
        const session = await ort.InferenceSession.create(b, o ?? {})
        const run = session.run.bind(session)
        session.run = (async (...args: Parameters<typeof run>) => {
          runs++
          const rows = Object.values(args[0])[0].dims[0]
          rowsPerRun.push(rows)
          if (fails(runs, rows)) throw new Error('run failed')
          return await run(...args)
        }) as typeof session.run
        return session
      }
    }
  }
  const ref = { sha256: await sha256Hex(bytes), size: bytes.byteLength, name: 'test' }
  return { runner: new OrtRunner(spy as unknown as OrtModule, async () => bytes, { backend: 'test', threads: 1, ...options }), ref, runs: () => runs, rowsPerRun }
}

function task (ref: ModelRef, id: string, inputs: WireTensor[], outputNames: string[] = []): TaskRequest {
  return { taskId: id, jobId: 'j', model: ref, inputs, timeoutMs: 0, outputNames }
}

const floats = (rng: Rng, n: number): Float32Array => Float32Array.from({ length: n }, () => rng.float() * 2 - 1)
const same = relativeComparator()

function results (outcomes: BatchOutcome[]): ExecutionResult[] {
  return outcomes.map(o => { if (o instanceof Error) throw o; return o })
}

describe('OrtRunner.executeMany', () => {
  it('stacks digit tasks into one run whose rows equal each task run alone (one task of two rows too)', async () => {
    const bytes = new Uint8Array(await readFile(MODELS_DIR + builtinModel('digits').file))
    const { runner, runs } = await counted(bytes)
    const ref = modelRef(builtinModel('digits'))
    const rng = new Rng(7)
    const tasks = [1, 1, 2, 1, 1].map((rows, i) => task(ref, `t${i}`, [fromTypedArray('input', 'float32', [rows, 1, 28, 28], floats(rng, rows * 784))]))
    const alone = [] as ExecutionResult[]
    for (const t of tasks) alone.push(await runner.execute(t))
    const before = runs()

    // First stacked run: checked once against runs of each task alone.
    const first = results(await runner.executeMany(tasks))
    expect(runs() - before).toBe(1 + tasks.length)
    const checked = runs()
    const second = results(await runner.executeMany(tasks))
    expect(runs() - checked).toBe(1)

    for (const [i, r] of second.entries()) {
      expect(same(r.outputs, alone[i].outputs)).toBe(true)
      expect(same(first[i].outputs, alone[i].outputs)).toBe(true)
      expect(r.outputs.find(o => o.name === 'probs')!.dims).toEqual([tasks[i].inputs[0].dims[0], 10])
      expect(r.inferenceMs).toBeGreaterThan(0)
    }
    // Each task has its own output bytes (they travel apart).
    expect(second[0].outputs[0].data.buffer).not.toBe(second[1].outputs[0].data.buffer)
  })

  it('stacks every dtype the wire carries', async () => {
    const { runner, ref, runs } = await counted(identityAllDtypes())
    const rng = new Rng(3)
    const make = (id: string): TaskRequest => task(ref, id, DTYPES.map(d => {
      const data = new Uint8Array(2 * DTYPE_BYTES[d])
      for (let i = 0; i < data.length; i++) data[i] = d === 'bool' ? rng.int(2) : (d.startsWith('float') ? 0x3c : rng.int(256))
      return { name: `in_${d}`, dtype: d, dims: [1, 2], data }
    }))
    const tasks = [make('a'), make('b'), make('c')]
    await runner.executeMany(tasks)
    const before = runs()
    const out = results(await runner.executeMany(tasks))
    expect(runs() - before).toBe(1)
    for (const [i, r] of out.entries()) {
      for (const d of DTYPES) expect(r.outputs.find(o => o.name === `out_${d}`)!.data).toEqual(tasks[i].inputs.find(t => t.name === `in_${d}`)!.data)
    }
  })

  it('never stacks a model without a free batch dimension: one run per task, each right', async () => {
    const { runner, ref, runs } = await counted(fixedBatch())
    const tasks = [0, 1, 2].map(i => task(ref, `t${i}`, [fromTypedArray('x', 'float32', [1, 4], Float32Array.from([i, i, i, i]))]))
    const out = results(await runner.executeMany(tasks))
    expect(runs()).toBe(3)
    out.forEach((r, i) => { expect([...toTypedArray(r.outputs[0])]).toEqual([i + 1, i + 1, i + 1, i + 1]) })
  })

  it('stops stacking a model whose rows depend on each other, and answers what each task alone gives', async () => {
    const { runner, ref, runs } = await counted(batchMean())
    const tasks = [0, 1, 2].map(i => task(ref, `t${i}`, [fromTypedArray('x', 'float32', [1, 4], Float32Array.from([i, 2 * i, 3, 4]))]))
    const out = results(await runner.executeMany(tasks))
    // Alone, a row minus its own mean is zero; stacked it would not be.
    for (const r of out) expect([...toTypedArray(r.outputs[0])]).toEqual([0, 0, 0, 0])
    const before = runs()
    const again = results(await runner.executeMany(tasks))
    expect(runs() - before).toBe(3)
    for (const r of again) expect([...toTypedArray(r.outputs[0])]).toEqual([0, 0, 0, 0])
  })

  it('falls back to a run per task when the stacked run fails: the bad task fails alone', async () => {
    const { runner, ref } = await counted(gather())
    const t = (id: string, index: number): TaskRequest => task(ref, id, [
      fromTypedArray('x', 'float32', [1, 4], Float32Array.from([10, 11, 12, 13])),
      fromTypedArray('idx', 'int64', [1, 1], BigInt64Array.from([BigInt(index)]))
    ])
    const out = await runner.executeMany([t('a', 1), t('bad', 99), t('c', 3)])
    expect(out[1]).toBeInstanceOf(TaskError)
    expect((out[1] as TaskError).code).toBe('inference-failed')
    expect([...toTypedArray((out[0] as ExecutionResult).outputs[0])]).toEqual([11])
    expect([...toTypedArray((out[2] as ExecutionResult).outputs[0])]).toEqual([13])
  })

  it('does not stack tasks that differ in output names or other dims, nor a task the model cannot take', async () => {
    const bytes = new Uint8Array(await readFile(MODELS_DIR + builtinModel('digits').file))
    const { runner } = await counted(bytes)
    const ref = modelRef(builtinModel('digits'))
    const rng = new Rng(11)
    const input = (): WireTensor => fromTypedArray('input', 'float32', [1, 1, 28, 28], floats(rng, 784))
    const out = await runner.executeMany([
      task(ref, 'all', [input()]),
      task(ref, 'probs', [input()], ['probs']),
      task(ref, 'all2', [input()]),
      task(ref, 'wrong', [fromTypedArray('image', 'float32', [1, 1, 28, 28], floats(rng, 784))]),
      task(ref, 'probs2', [input()], ['probs'])
    ])
    expect(out.map(o => o instanceof Error ? o.code : o.outputs.map(t => t.name).sort().join(','))).toEqual(['logits,probs', 'probs', 'logits,probs', 'bad-request', 'probs'])
  })

  it('runs a batch of identical rows once per task, never a stacked run beside them, however often it comes', async () => {
    const bytes = new Uint8Array(await readFile(MODELS_DIR + builtinModel('digits').file))
    const { runner, runs } = await counted(bytes)
    const ref = modelRef(builtinModel('digits'))
    const image = floats(new Rng(5), 784)
    const tasks = Array.from({ length: 8 }, (_, i) => task(ref, `t${i}`, [fromTypedArray('input', 'float32', [1, 1, 28, 28], image)]))
    for (let round = 0; round < 3; round++) {
      const before = runs()
      const out = results(await runner.executeMany(tasks))
      expect(runs() - before).toBe(tasks.length)
      for (const r of out) expect(same(r.outputs, out[0].outputs)).toBe(true)
    }
    // Rows that differ are then checked once and stacked from there on.
    const rng = new Rng(6)
    const distinct = tasks.map(t => ({ ...t, inputs: [fromTypedArray('input', 'float32', [1, 1, 28, 28], floats(rng, 784))] }))
    await runner.executeMany(distinct)
    const before = runs()
    await runner.executeMany(distinct)
    expect(runs() - before).toBe(1)
  })

  it('keeps checking a model whose tasks failed alone during its check: only differing rows stop stacking', async () => {
    // Runs: t0 alone (learns the row size), t1+t2 stacked, then t1 alone fails, t2 alone.
    const { runner, ref, rowsPerRun } = await counted(addOne(), {}, (run) => run === 3)
    const tasks = [0, 1, 2].map(i => task(ref, `t${i}`, [fromTypedArray('x', 'float32', [1, 4], Float32Array.from([i, 2 * i, 3, i]))]))
    const first = await runner.executeMany(tasks)
    expect(first[1]).toBeInstanceOf(Error)
    expect(rowsPerRun).toEqual([1, 2, 1, 1])
    // Not judged on that failure: the next batch is stacked (and checked) again, and then trusted.
    results(await runner.executeMany(tasks))
    expect(rowsPerRun.slice(4)).toEqual([3, 1, 1, 1])
    const out = results(await runner.executeMany(tasks))
    expect(rowsPerRun.slice(8)).toEqual([3])
    out.forEach((r, i) => { expect([...toTypedArray(r.outputs[0])]).toEqual([i + 1, 2 * i + 1, 4, i + 1]) })
  })

  it('holds no more outputs in one call than its bound: stacked runs take the rows that fit, and the tasks past it are not run but answered NotRunInBatch', async () => {
    // 16 output bytes per row, 40 bytes a call: two rows fit, three do not.
    const { runner, ref, rowsPerRun } = await counted(addOne(), { maxBatchOutputBytes: 40 })
    const tasks = [0, 1, 2, 3, 4].map(i => task(ref, `t${i}`, [fromTypedArray('x', 'float32', [1, 4], Float32Array.from([i, 2 * i, 3, i]))]))
    const expected = (i: number): number[] => [i + 1, 2 * i + 1, 4, i + 1]
    // The first call learns the bytes per row from a run of one task, then runs one task at a time
    // until its outputs reach 40 bytes (by its last run: 48); the two tasks left are not run.
    let outcomes = await runner.executeMany(tasks)
    expect(rowsPerRun).toEqual([1, 1, 1])
    expect(outcomes.map(o => o instanceof NotRunInBatch)).toEqual([false, false, false, true, true])
    results(outcomes.slice(0, 3)).forEach((r, i) => { expect([...toTypedArray(r.outputs[0])]).toEqual(expected(i)) })
    expect((outcomes[3] as TaskError).code).toBe('inference-failed')
    // Later calls stack two rows at most (32 bytes), checked once against runs alone.
    for (let round = 0; round < 3; round++) {
      rowsPerRun.length = 0
      outcomes = await runner.executeMany(tasks.slice(3))
      results(outcomes).forEach((r, i) => { expect([...toTypedArray(r.outputs[0])]).toEqual(expected(i + 3)) })
    }
    expect(rowsPerRun).toEqual([2])
    outcomes = await runner.executeMany(tasks)
    expect(Math.max(...rowsPerRun)).toBe(2)
    expect(outcomes.map(o => o instanceof NotRunInBatch)).toEqual([false, false, false, true, true])
    // As a backend candidate in the peer's own process (node-peer's inProcess), the tasks left unrun run alone after the call.
    results(await runnerCandidate(runner).executeMany!(tasks, 'peer')).forEach((r, i) => { expect([...toTypedArray(r.outputs[0])]).toEqual(expected(i)) })
  })
})

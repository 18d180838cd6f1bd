/**
 * Bring-your-own models through the network, with peer-to-peer model transfer, on the real stack
 * (relay on 127.0.0.1, Node peers over direct WebRTC, onnxruntime-node):
 * - generated models covering every dtype, dynamic dimensions, several inputs/outputs and casts
 *   give exactly onnxruntime-node's outputs when run on a worker that had to fetch them;
 * - the worker verifies and caches a fetched model, lists it in its advert, and never fetches it again;
 * - a corrupted transfer is rejected with model-hash-mismatch and nothing is cached;
 * - a batch job's first tasks go to the worker that already has the model.
 */
import '../../src/node/polyfill.js'
import { execFile } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JobRunner } from '../../src/net/job-runner.js'
import { MemoryJobStore } from '../../src/core/job-store.js'
import { MemoryModelStore } from '../../src/core/model-store.js'
import { Reputation } from '../../src/core/reputation.js'
import { relativeComparator } from '../../src/core/compare.js'
import { DTYPES, fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import { castChain, dynamicAddMul, identityAllDtypes } from '../../src/models/test-models.js'
import { expectSameOutputs, referenceRun } from '../helpers/onnx-reference.js'
import { Cleanup, REPO_ROOT, rejectionOf, startPeer, startRelay, waitForAdvert, waitForDirect, withTimeout, WAIT_MS } from './helpers.js'
import type { ModelRef, TaskRequest } from '../../src/core/task-types.js'
import type { ModelEvent } from '../../src/core/model-store.js'
import type { DTypeName, WireTensor } from '../../src/core/tensor.js'
import type { NodePeer } from '../../src/node/node-peer.js'

const cleanup = new Cleanup()
let relayAddr: string
let requester: NodePeer
let worker: NodePeer
const workerModelEvents: ModelEvent[] = []

beforeAll(async () => {
  relayAddr = (await startRelay(cleanup)).addr
  requester = await startPeer(cleanup, relayAddr, { work: false })
  worker = await startPeer(cleanup, relayAddr, { onModelEvent: e => { if (e.type !== 'transfer') workerModelEvents.push(e) } })
  await waitForDirect(requester.node, worker.node)
})

afterAll(async () => { await cleanup.run() })

let taskCounter = 0
function task (model: ModelRef, inputs: WireTensor[]): TaskRequest {
  return { taskId: `custom-${++taskCounter}`, jobId: 'custom', model, inputs, timeoutMs: 0, outputNames: [] }
}

async function runOn (peer: NodePeer, request: TaskRequest): Promise<WireTensor[]> {
  const outcome = await withTimeout(requester.tasks.run(peer.node.peerId, request), WAIT_MS, `task ${request.taskId}`)
  return outcome.result.outputs
}

/** Values that probe each dtype's edges (int64 beyond 2^53, NaN/Inf, float16 bit patterns). */
function edgeValues (dtype: DTypeName, n: number): WireTensor {
  const dims = [n, 2]
  const count = n * 2
  const pick = <T>(xs: T[]): T[] => Array.from({ length: count }, (_, i) => xs[i % xs.length])
  switch (dtype) {
    case 'float32': return fromTypedArray(`in_${dtype}`, dtype, dims, new Float32Array(pick([0, -1.5, 3.4e38, Number.NaN, Number.NEGATIVE_INFINITY, 1e-45])))
    case 'float64': return fromTypedArray(`in_${dtype}`, dtype, dims, new Float64Array(pick([Math.PI, -0, Number.MAX_VALUE, Number.NaN, 5e-324])))
    case 'float16': return fromTypedArray(`in_${dtype}`, dtype, dims, new Uint16Array(pick([0x3c00, 0x7bff, 0xfc00, 0x7e00, 0x0001])))
    case 'int8': return fromTypedArray(`in_${dtype}`, dtype, dims, new Int8Array(pick([-128, 127, 0, -1])))
    case 'int16': return fromTypedArray(`in_${dtype}`, dtype, dims, new Int16Array(pick([-32768, 32767, 1])))
    case 'int32': return fromTypedArray(`in_${dtype}`, dtype, dims, new Int32Array(pick([-(2 ** 31), 2 ** 31 - 1, 7])))
    case 'int64': return fromTypedArray(`in_${dtype}`, dtype, dims, new BigInt64Array(pick([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n])))
    case 'uint8': return fromTypedArray(`in_${dtype}`, dtype, dims, new Uint8Array(pick([0, 255, 128])))
    case 'uint16': return fromTypedArray(`in_${dtype}`, dtype, dims, new Uint16Array(pick([0, 65535, 4096])))
    case 'uint32': return fromTypedArray(`in_${dtype}`, dtype, dims, new Uint32Array(pick([0, 2 ** 32 - 1, 12345])))
    case 'uint64': return fromTypedArray(`in_${dtype}`, dtype, dims, new BigUint64Array(pick([0n, 2n ** 64n - 1n, 2n ** 53n + 1n])))
    case 'bool': return fromTypedArray(`in_${dtype}`, dtype, dims, new Uint8Array(pick([1, 0, 0, 1])))
  }
}

/** The same model with a different producer name (same length, so the protobuf stays valid): new bytes, new sha256. */
function renamed (bytes: Uint8Array, from: string, to: string): Uint8Array {
  const text = Buffer.from(bytes).toString('latin1')
  expect(text).toContain(from)
  return new Uint8Array(Buffer.from(text.replace(from, to), 'latin1'))
}

describe('custom ONNX models over WebRTC, fetched peer to peer', () => {
  it('round-trips every dtype exactly through a model the worker fetched, verified and cached', async () => {
    const bytes = identityAllDtypes()
    const model = { sha256: await requester.models.add(bytes), size: bytes.byteLength, name: 'identity-all-dtypes.onnx' }
    expect(worker.models.cached).not.toContain(model.sha256)
    for (const n of [1, 3]) {
      const inputs = DTYPES.map(d => edgeValues(d, n))
      const outputs = await runOn(worker, task(model, inputs))
      expectSameOutputs(outputs, await referenceRun(bytes, inputs))
    }
    expect(worker.models.cached).toContain(model.sha256)
    expect(await worker.models.local(model.sha256)).toEqual(new Uint8Array(bytes))
    expect(workerModelEvents.filter(e => e.ref.sha256 === model.sha256).map(e => `${e.type} from ${e.from}`))
      .toEqual([`cached from ${requester.node.peerId.toString()}`])
    // Its advert now says it has the model, so requesters prefer it for this model.
    await waitForAdvert(requester, worker.node.peerId.toString(), a => a.models.includes(model.sha256), 'the worker advertising the fetched model')
  })

  it('runs a model with dynamic dims and several inputs/outputs at two different shapes, fetching it once', async () => {
    const bytes = dynamicAddMul()
    const model = { sha256: await requester.models.add(bytes), size: bytes.byteLength, name: 'add-mul.onnx' }
    for (const [batch, n] of [[1, 3], [4, 17]]) {
      const a = Float32Array.from({ length: batch * n }, (_, i) => i * 0.5 - 3)
      const b = Float32Array.from({ length: batch * n }, (_, i) => 1 / (i + 1))
      const inputs = [fromTypedArray('a', 'float32', [batch, n], a), fromTypedArray('b', 'float32', [batch, n], b)]
      const outputs = await runOn(worker, task(model, inputs))
      expectSameOutputs(outputs, await referenceRun(bytes, inputs))
      expect(toTypedArray(outputs.find(o => o.name === 'shape')!)).toEqual(BigInt64Array.from([BigInt(batch), BigInt(n)]))
    }
    expect(workerModelEvents.filter(e => e.ref.sha256 === model.sha256)).toHaveLength(1)
  })

  it('agrees with onnxruntime-node on dtype conversions (Cast)', async () => {
    const bytes = castChain()
    const model = { sha256: await requester.models.add(bytes), size: bytes.byteLength, name: 'cast-chain.onnx' }
    const inputs = [
      fromTypedArray('x', 'float32', [6], Float32Array.from([-2.7, -0.5, 0, 0.5, 1.0009765625, 65519])),
      fromTypedArray('u', 'uint8', [6], Uint8Array.from([0, 1, 127, 128, 254, 255]))
    ]
    expectSameOutputs(await runOn(worker, task(model, inputs)), await referenceRun(bytes, inputs))
  })

  it('rejects a corrupted transfer with model-hash-mismatch, caches nothing, and still works for good models', async () => {
    // A requester whose model cache hands out damaged bytes (a flipped bit on disk, or a liar).
    const damaged = new MemoryModelStore()
    const liar = await startPeer(cleanup, relayAddr, { work: false, modelStore: damaged })
    const fresh = await startPeer(cleanup, relayAddr)
    await waitForDirect(liar.node, fresh.node)
    // A model no other peer has (else the worker would rightly fetch it from one of them instead).
    const bytes = renamed(dynamicAddMul(), 'test-models', 'liar-models')
    const sha256 = await liar.models.add(bytes)
    const corrupted = bytes.slice()
    corrupted[corrupted.length >> 1] ^= 0x20
    await damaged.put(sha256, corrupted)
    const model = { sha256, size: bytes.byteLength, name: 'add-mul.onnx' }
    const inputs = [fromTypedArray('a', 'float32', [1, 2], Float32Array.from([1, 2])), fromTypedArray('b', 'float32', [1, 2], Float32Array.from([3, 4]))]

    const err = await rejectionOf(withTimeout(liar.tasks.run(fresh.node.peerId, task(model, inputs)), WAIT_MS, 'the task with a corrupted model'))
    expect(err.code).toBe('model-hash-mismatch')
    expect(err.message).toContain(sha256)
    expect(fresh.models.cached).toEqual([])
    expect(await fresh.models.local(sha256)).toBeUndefined()

    // With the good bytes on offer, the same worker fetches, verifies and runs it.
    await damaged.put(sha256, bytes)
    const outcome = await withTimeout(liar.tasks.run(fresh.node.peerId, task(model, inputs)), WAIT_MS, 'the task after the fix')
    expect(toTypedArray(outcome.result.outputs.find(o => o.name === 'sum')!)).toEqual(Float32Array.from([4, 6]))
    expect(fresh.models.cached).toEqual([sha256])
  })

  it('refuses a model over the worker\'s size cap with a clear error', async () => {
    const small = await startPeer(cleanup, relayAddr, { maxModelBytes: 64 })
    await waitForDirect(requester.node, small.node)
    const bytes = castChain()
    const model = { sha256: await requester.models.add(bytes), size: bytes.byteLength, name: 'cast-chain.onnx' }
    const err = await rejectionOf(runOn(small, task(model, [fromTypedArray('x', 'float32', [1], new Float32Array(1)), fromTypedArray('u', 'uint8', [1], new Uint8Array(1))])))
    expect(err.code).toBe('model-unavailable')
    expect(err.message).toContain('limit')
  })

  it('sends a job\'s tasks to the worker that already has the model first', async () => {
    // A model no worker has run, so no advertised speed orders them: only having the model can.
    const bytes = renamed(dynamicAddMul(), 'test-models', 'pref-models')
    const sha256 = await requester.models.add(bytes)
    // `holder` joins last (without the preference, earlier workers would come first) with the model in its cache.
    const holderStore = new MemoryModelStore()
    await holderStore.put(sha256, bytes)
    const holder = await startPeer(cleanup, relayAddr, { modelStore: holderStore })
    await waitForDirect(requester.node, holder.node)
    await waitForAdvert(requester, holder.node.peerId.toString(), a => a.models.includes(sha256), 'the holder advertising the model')
    const workers = [...requester.discovery.table.values()].map(e => [e.peerId, e.advert] as const).filter(([, a]) => a.worker && !a.paused && a.maxModelBytes >= bytes.byteLength)
    expect(workers.length).toBeGreaterThan(1)
    expect(workers.filter(([, a]) => a.models.includes(sha256)).map(([p]) => p)).toEqual([holder.node.peerId.toString()])
    const inputs = [fromTypedArray('a', 'float32', [1, 1], Float32Array.from([2])), fromTypedArray('b', 'float32', [1, 1], Float32Array.from([5]))]
    const runner = new JobRunner({
      meta: { jobId: 'prefer-cached', modelId: 'add-mul', model: { sha256, size: bytes.byteLength, name: 'add-mul.onnx' }, datasetId: 'inline', taskCount: 1, replicas: 1, adaptive: false, state: 'queued', createdAt: Date.now(), updatedAt: Date.now() },
      source: { task: () => ({ inputs, outputNames: [] }) },
      tasks: requester.tasks,
      adverts: requester.discovery.table,
      store: new MemoryJobStore(),
      compare: relativeComparator(),
      reputation: new Reputation()
    })
    const final = await withTimeout(runner.run(), WAIT_MS, 'the one-task job')
    expect(final.state).toBe('done')
    expect(runner.progress.perPeer).toEqual({ [holder.node.peerId.toString()]: 1 })
    // Nobody had to fetch it.
    expect(worker.models.cached).not.toContain(sha256)
  })

  it('runs your own model over a JSONL file of inputs from the command line (`npm run infer`)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-infer-'))
    const model = join(dir, 'add-mul.onnx')
    await writeFile(model, renamed(dynamicAddMul(), 'test-models', 'cli--models'))
    const rows = [{ a: [[1, 2]], b: [[3, 4]] }, { a: [[0.5], [2]], b: [[1], [-2]] }, { a: { dims: [1, 3], data: [1, 1, 1] }, b: [[2, 2, 2]] }]
    await writeFile(join(dir, 'inputs.jsonl'), rows.map(r => JSON.stringify(r)).join('\n') + '\n')
    const { stdout, stderr } = await promisify(execFile)(process.execPath,
      ['--import', 'tsx', 'src/node/infer.ts', '--relay', relayAddr, '--model', model, '--inputs', join(dir, 'inputs.jsonl')],
      { cwd: REPO_ROOT, timeout: 60_000 })
    expect(stderr).toMatch(/done: 3\/3/)
    const out = stdout.trim().split('\n').map(l => JSON.parse(l) as { index: number, outputs: Array<{ name: string, dims: number[], data: unknown[] }> })
    expect(out.map(o => o.index)).toEqual([0, 1, 2])
    expect(out.map(o => o.outputs.find(t => t.name === 'sum'))).toEqual([
      { name: 'sum', dtype: 'float32', dims: [1, 2], data: [4, 6] },
      { name: 'sum', dtype: 'float32', dims: [2, 1], data: [1.5, 0] },
      { name: 'sum', dtype: 'float32', dims: [1, 3], data: [3, 3, 3] }
    ])
    expect(out[1].outputs.find(t => t.name === 'shape')?.data).toEqual(['2', '1'])
  })

  it('stops before sending anything when an input line does not fit the model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-infer-'))
    const model = join(dir, 'add-mul.onnx')
    await writeFile(model, dynamicAddMul())
    await writeFile(join(dir, 'inputs.jsonl'), '{"a": [[1]], "b": [[1]]}\n{"a": [1, 2], "b": [[1, 2]]}\n')
    const err = await promisify(execFile)(process.execPath,
      ['--import', 'tsx', 'src/node/infer.ts', '--relay', relayAddr, '--model', model, '--inputs', join(dir, 'inputs.jsonl')],
      { cwd: REPO_ROOT, timeout: 60_000 }).catch((e: { code: number, stderr: string }) => e)
    expect(err).toMatchObject({ code: 2 })
    expect((err as { stderr: string }).stderr).toMatch(/inputs\.jsonl:2: input 'a': expected 2 dimensions/)
  })
})


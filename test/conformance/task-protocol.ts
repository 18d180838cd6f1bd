/**
 * Transport-independent conformance suite for the task protocol (in the spirit of
 * automerge-repo's network adapter tests). A transport provides a HarnessFactory that wires a
 * real TaskClient to a real TaskServer + WorkQueue over that transport; every case here then
 * runs unchanged over it.
 *
 * Cases wait on events and promises only: no sleeping to synchronise, no fake clock. The
 * factory must configure client heartbeats short enough that a vanished worker is detected
 * well within `timeoutMs`.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { peerIdFromString } from '@libp2p/peer-id'
import { TaskError } from '../../src/core/errors.js'
import { RECEIPT_VERSION, tensorsSha256, verifyReceipt } from '../../src/core/receipt.js'
import { DEFAULT_LIMITS } from '../../src/core/limits.js'
import { encodeFrame } from '../../src/core/task/codec.js'
import { DTYPES, DTYPE_BYTES, elementCount } from '../../src/core/tensor.js'
import type { TaskRequest } from '../../src/core/task-types.js'
import type { TaskErrorCode } from '../../src/core/errors.js'
import type { DTypeName, WireTensor } from '../../src/core/tensor.js'
import type { TaskOutcome } from '../../src/core/task/client.js'
import type { ExecutionResult, Executor, WorkQueueOptions } from '../../src/core/work-queue.js'
import { seededRandom as prng } from '../../src/core/random.js'

export interface ProtocolHarness {
  /** The worker's and the requester's peer ids, as receipts must name them. */
  workerPeerId: string
  requesterPeerId: string
  /** Requester → worker through the real TaskClient. */
  run(request: TaskRequest): Promise<TaskOutcome>
  /** Opens a fresh channel, writes raw bytes, resolves with the stream-level TaskError the worker replies with. */
  sendRaw(bytes: Uint8Array): Promise<TaskError>
  /** The worker vanishes abruptly (no goodbye), like a closed tab. */
  killWorker(): Promise<void>
  close(): Promise<void>
}

export type HarnessFactory = (executor: Executor, queue?: WorkQueueOptions) => Promise<ProtocolHarness>

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (err: unknown) => void
}

function deferred<T = void> (): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

const MODEL = { sha256: 'c0ffee'.padEnd(64, '0'), size: 4096, name: 'echo.onnx' }

function request (taskId: string, inputs: WireTensor[], timeoutMs = 0): TaskRequest {
  return { taskId, jobId: 'conformance', model: MODEL, inputs, timeoutMs, outputNames: [] }
}

function bytesOf (view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
}

function randomTensor (name: string, dtype: DTypeName, dims: number[], rand: () => number): WireTensor {
  const data = new Uint8Array(elementCount(dims) * DTYPE_BYTES[dtype])
  for (let i = 0; i < data.length; i++) data[i] = dtype === 'bool' ? (rand() < 0.5 ? 0 : 1) : Math.floor(rand() * 256)
  return { name, dtype, dims, data }
}

/** Every dtype, plus the edge cases a codec tends to get wrong. */
function everyDtypeTensors (): WireTensor[] {
  const rand = prng(42)
  const tensors = DTYPES.map(dtype => randomTensor(`random_${dtype}`, dtype, [2, 3], rand))
  tensors.push(
    { name: 'scalar_f32', dtype: 'float32', dims: [], data: bytesOf(Float32Array.of(Math.PI)) },
    { name: 'scalar_bool', dtype: 'bool', dims: [], data: Uint8Array.of(1) },
    { name: 'empty_f32', dtype: 'float32', dims: [3, 0, 2], data: new Uint8Array(0) },
    { name: 'empty_i64', dtype: 'int64', dims: [0], data: new Uint8Array(0) },
    { name: 'int64_extremes', dtype: 'int64', dims: [5], data: bytesOf(BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 53n + 1n)) },
    { name: 'uint64_extremes', dtype: 'uint64', dims: [3], data: bytesOf(BigUint64Array.of(0n, 2n ** 64n - 1n, 2n ** 53n + 1n)) },
    // +0, -0, 1, +inf, -inf, a NaN with payload, smallest subnormal, largest finite
    { name: 'float16_bits', dtype: 'float16', dims: [2, 4], data: bytesOf(Uint16Array.of(0x0000, 0x8000, 0x3c00, 0x7c00, 0xfc00, 0x7e01, 0x0001, 0x7bff)) },
    // NaN payloads must survive as bits, not be canonicalised
    { name: 'float32_nan_bits', dtype: 'float32', dims: [2], data: bytesOf(Uint32Array.of(0x7fc00001, 0xffbfffff)) },
    { name: 'bool_grid', dtype: 'bool', dims: [2, 2], data: Uint8Array.of(1, 0, 0, 1) },
    randomTensor('large_f32', 'float32', [64, 64], rand)
  )
  return tensors
}

function echoResult (req: TaskRequest): ExecutionResult {
  return { outputs: req.inputs, loadMs: 1.5, inferenceMs: 2.25, backend: 'echo', threads: 1 }
}

const echoExecutor: Executor = { execute: async (req) => echoResult(req) }

/** Compares tensors field by field and byte by byte. */
function expectSameTensors (actual: WireTensor[], expected: WireTensor[]): void {
  expect(actual.map(t => t.name)).toEqual(expected.map(t => t.name))
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]
    const e = expected[i]
    expect({ name: a.name, dtype: a.dtype, dims: a.dims }).toEqual({ name: e.name, dtype: e.dtype, dims: e.dims })
    expect(a.data.byteLength, `byte length of ${e.name}`).toBe(e.data.byteLength)
    expect(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength)), `bytes of ${e.name}`).toBe(true)
  }
}

async function rejectionOf (promise: Promise<unknown>): Promise<TaskError> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(TaskError)
    return err as TaskError
  }
  throw new Error('expected the promise to reject with a TaskError, but it resolved')
}

/** An executor whose tasks wait until the test releases them. */
function gatedExecutor (): { executor: Executor, started: (n: number) => Promise<void>, release: (taskId: string) => void, releaseAll: () => void } {
  const gates = new Map<string, Deferred<void>>()
  const waiters: Array<{ n: number, done: Deferred<void> }> = []
  let startedCount = 0
  const gate = (taskId: string): Deferred<void> => {
    let g = gates.get(taskId)
    if (g == null) { g = deferred(); gates.set(taskId, g) }
    return g
  }
  return {
    executor: {
      async execute (req) {
        const g = gate(req.taskId)
        startedCount++
        for (const w of waiters) if (startedCount >= w.n) w.done.resolve()
        await g.promise
        return echoResult(req)
      }
    },
    started: async (n) => {
      if (startedCount >= n) return
      const done = deferred()
      waiters.push({ n, done })
      await done.promise
    },
    release: (taskId) => { gate(taskId).resolve() },
    releaseAll: () => { for (const g of gates.values()) g.resolve() }
  }
}

/** Length prefix as the codec writes it: unsigned LEB128. */
function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  out.push(n)
  return out
}

export function taskProtocolConformance (name: string, factory: HarnessFactory, opts: { timeoutMs?: number } = {}): void {
  const timeout = opts.timeoutMs ?? 10_000

  describe(`task protocol conformance: ${name}`, () => {
    const open: ProtocolHarness[] = []
    const cleanups: Array<() => void> = []

    async function harness (executor: Executor, queue?: WorkQueueOptions): Promise<ProtocolHarness> {
      const h = await factory(executor, queue)
      open.push(h)
      return h
    }

    afterEach(async () => {
      for (const cleanup of cleanups.splice(0)) cleanup()
      await Promise.allSettled(open.splice(0).map(async h => { await h.close() }))
    })

    it('round-trips every dtype byte-exactly, including scalars, empty tensors and extreme values', async () => {
      const h = await harness(echoExecutor)
      const inputs = everyDtypeTensors()
      const outcome = await h.run(request('every-dtype', inputs))
      expectSameTensors(outcome.result.outputs, inputs)
      expect(outcome.result.backend).toBe('echo')
      expect(outcome.result.threads).toBe(1)
      expect(outcome.result.timings).toMatchObject({ loadMs: 1.5, inferenceMs: 2.25 })
      expect(outcome.result.timings.totalMs).toBeGreaterThanOrEqual(0)
      expect(outcome.roundTripMs).toBeGreaterThanOrEqual(0)
    }, timeout)

    it('gives each of several concurrent tasks its own result, whatever order they finish in', async () => {
      const gated = gatedExecutor()
      cleanups.push(gated.releaseAll)
      const h = await harness(gated.executor, { slots: 4 })
      const ids = ['task-a', 'task-b', 'task-c', 'task-d']
      const inputsOf = (id: string, i: number): WireTensor[] => [
        { name: 'id', dtype: 'uint8', dims: [id.length], data: new TextEncoder().encode(id) },
        { name: 'value', dtype: 'float64', dims: [1], data: bytesOf(Float64Array.of(i * 1.25)) }
      ]
      const finished: string[] = []
      const runs = ids.map((id, i) => h.run(request(id, inputsOf(id, i))).then(outcome => { finished.push(id); return outcome }))
      for (const run of runs) run.catch(() => {}) // if an assertion fails first, closing the harness must not leave unhandled rejections
      await Promise.race([gated.started(ids.length), ...runs]) // a run that fails early fails the test at once

      const releaseOrder = ['task-c', 'task-a', 'task-d', 'task-b']
      for (const id of releaseOrder) {
        gated.release(id)
        const i = ids.indexOf(id)
        const outcome = await runs[i]
        expectSameTensors(outcome.result.outputs, inputsOf(id, i))
      }
      expect(finished).toEqual(releaseOrder)
    }, timeout)

    for (const code of ['model-unavailable', 'model-hash-mismatch', 'inference-failed'] as const satisfies readonly TaskErrorCode[]) {
      it(`passes an executor's ${code} error to the requester with its message`, async () => {
        const message = `worker says ${code} for model ${MODEL.name}`
        const h = await harness({ execute: async () => { throw new TaskError(code, message) } })
        const err = await rejectionOf(h.run(request(`fails-${code}`, [])))
        expect(err.code).toBe(code)
        expect(err.message).toBe(message)
      }, timeout)
    }

    it('reports an executor crash (a plain Error) as inference-failed with its message', async () => {
      const h = await harness({ execute: async () => { throw new Error('onnxruntime: input shape mismatch') } })
      const err = await rejectionOf(h.run(request('crash', [])))
      expect(err.code).toBe('inference-failed')
      expect(err.message).toContain('input shape mismatch')
    }, timeout)

    it('answers busy when every slot is taken and no waiting room is left', async () => {
      const gated = gatedExecutor()
      cleanups.push(gated.releaseAll)
      const h = await harness(gated.executor, { slots: 1, maxQueued: 0 })
      const first = h.run(request('first', []))
      first.catch(() => {}) // observed below; this only keeps a failed assertion from also reporting an unhandled rejection
      await Promise.race([gated.started(1), first]) // an idle worker must take the first task

      const err = await rejectionOf(h.run(request('second', [])))
      expect(err.code).toBe('busy')
      expect(err.message).toMatch(/full/)

      gated.release('first')
      const outcome = await first
      expect(outcome.result.backend).toBe('echo')
    }, timeout)

    it('rejects garbage bytes with bad-request, and keeps serving tasks afterwards', async () => {
      const h = await harness(echoExecutor)
      const err = await h.sendRaw(Uint8Array.of(0x05, 0xff, 0xff, 0xff, 0xff, 0xff))
      expect(err).toBeInstanceOf(TaskError)
      expect(err.code).toBe('bad-request')
      expect(err.message).toMatch(/malformed frame/)

      const inputs = [randomTensor('x', 'float32', [4], prng(7))]
      const outcome = await h.run(request('after-garbage', inputs))
      expectSameTensors(outcome.result.outputs, inputs)
    }, timeout)

    it('rejects a tensor whose byte length does not match its dims, naming the tensor', async () => {
      const h = await harness(echoExecutor)
      const bad = request('bad-tensor', [{ name: 'pixels', dtype: 'float32', dims: [2, 2], data: new Uint8Array(12) }])
      const err = await h.sendRaw(encodeFrame({ type: 'request', request: bad }))
      expect(err.code).toBe('bad-request')
      expect(err.message).toContain('pixels')
      expect(err.message).toContain('needs 16')

      const outcome = await h.run(request('after-bad-tensor', []))
      expect(outcome.result.outputs).toEqual([])
    }, timeout)

    it('rejects an oversized length prefix before the body arrives, and keeps serving tasks afterwards', async () => {
      const h = await harness(echoExecutor)
      // Announces a 1 GiB frame and sends only a few bytes of it: the worker must not wait for the rest.
      const err = await h.sendRaw(Uint8Array.from([...varint(1024 ** 3), 0x0a, 0x00]))
      expect(err.code).toBe('bad-request')
      expect(err.message).toMatch(/exceeds the \d+-byte limit/)

      const inputs = [randomTensor('y', 'int32', [3], prng(8))]
      const outcome = await h.run(request('after-oversized', inputs))
      expectSameTensors(outcome.result.outputs, inputs)
    }, timeout)

    it('attaches to every result a receipt, signed by the worker\'s peer key, over the task, its inputs and its outputs', async () => {
      const h = await harness(echoExecutor)
      const inputs = [randomTensor('b', 'float32', [3], prng(9)), randomTensor('a', 'int64', [2, 2], prng(10))]
      const outcome = await h.run(request('signed', inputs))
      const { receipt } = outcome
      expect(receipt).toMatchObject({
        version: RECEIPT_VERSION,
        jobId: 'conformance',
        taskId: 'signed',
        requester: h.requesterPeerId,
        worker: h.workerPeerId,
        modelSha256: MODEL.sha256,
        inputsSha256: tensorsSha256(inputs),
        outputsSha256: tensorsSha256(outcome.result.outputs),
        backend: 'echo'
      })
      expect(receipt.endedAt).toBeGreaterThanOrEqual(receipt.startedAt)
      expect(receipt.startedAt).toBeGreaterThan(Date.UTC(2024, 0, 1)) // wall-clock ms, not a monotonic counter

      // Anyone holding only the receipt checks it with the key the worker's peer id embeds.
      const key = peerIdFromString(receipt.worker).publicKey!
      const verify = (bytes: Uint8Array, sig: Uint8Array): boolean | Promise<boolean> => key.verify(bytes, sig)
      expect(await verifyReceipt(receipt, verify)).toBe(true)
      expect(await verifyReceipt({ ...receipt, outputsSha256: tensorsSha256(inputs.slice(1)) }, verify)).toBe(false)
      expect(await verifyReceipt({ ...receipt, requester: h.workerPeerId }, verify)).toBe(false)
    }, timeout)

    it('answers outputs over the frame limit with inference-failed instead of an oversized frame, and keeps serving the stream', async () => {
      const elements = DEFAULT_LIMITS.maxFrameBytes / 4 + 1024 // float32: a little over the limit
      const huge: Executor = {
        execute: async (req) => req.taskId === 'huge'
          ? { ...echoResult(req), outputs: [{ name: 'big', dtype: 'float32', dims: [elements], data: new Uint8Array(elements * 4) }] }
          : echoResult(req)
      }
      const h = await harness(huge)
      const err = await rejectionOf(h.run(request('huge', [])))
      expect(err.code).toBe('inference-failed')
      expect(err.message).toBe(`outputs are ${elements * 4} bytes, over the ${DEFAULT_LIMITS.maxFrameBytes}-byte frame limit`)

      const inputs = [randomTensor('z', 'uint8', [5], prng(11))]
      const outcome = await h.run(request('after-huge', inputs))
      expectSameTensors(outcome.result.outputs, inputs)
    }, timeout)

    it('refuses to send a request over the frame limit (bad-request, nothing sent), and keeps serving the stream', async () => {
      const h = await harness(echoExecutor)
      const elements = DEFAULT_LIMITS.maxFrameBytes / 4 + 1024
      const err = await rejectionOf(h.run(request('too-big', [{ name: 'x', dtype: 'float32', dims: [elements], data: new Uint8Array(elements * 4) }])))
      expect(err.code).toBe('bad-request')
      expect(err.message).toMatch(new RegExp(`^task too-big is \\d+ bytes, over the ${DEFAULT_LIMITS.maxFrameBytes}-byte frame limit$`))

      const outcome = await h.run(request('after-too-big', []))
      expect(outcome.result.outputs).toEqual([])
    }, timeout)

    it('fails an in-flight task with peer-gone when the worker vanishes', async () => {
      const gated = gatedExecutor()
      cleanups.push(gated.releaseAll)
      const h = await harness(gated.executor)
      const running = h.run(request('orphaned', []))
      await Promise.race([gated.started(1), running])

      await h.killWorker()
      const err = await rejectionOf(running)
      expect(err.code).toBe('peer-gone')
    }, timeout)
  })
}

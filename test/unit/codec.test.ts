import { describe, expect, it } from 'vitest'
import { decodeFrameBody, encodeFrame, FrameDecoder } from '../../src/core/task/codec.js'
import { TaskError } from '../../src/core/errors.js'
import { DEFAULT_LIMITS } from '../../src/core/limits.js'
import { Frame } from '../../src/core/task/pb/task.js'
import { DTYPES, DTYPE_BYTES, elementCount, fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import type { FrameMessage, TaskResponse, WireErrorCode } from '../../src/core/task/codec.js'
import type { TaskRequest } from '../../src/core/task-types.js'
import type { ProtocolLimits } from '../../src/core/limits.js'
import type { AnyTypedArray, DTypeName, WireTensor } from '../../src/core/tensor.js'

const SHA = '0123456789abcdef'.repeat(4)

function tensor (name: string, dtype: DTypeName, dims: number[], fill = 7): WireTensor {
  const data = new Uint8Array(elementCount(dims) * DTYPE_BYTES[dtype])
  for (let i = 0; i < data.length; i++) data[i] = dtype === 'bool' ? (i + fill) % 2 : (i * 31 + fill) & 0xff
  return { name, dtype, dims, data }
}

function request (overrides: Partial<TaskRequest> = {}): TaskRequest {
  return {
    taskId: 'task-1',
    jobId: 'job-1',
    model: { sha256: SHA, size: 26_000_123, name: 'digits.onnx' },
    inputs: [tensor('input', 'float32', [1, 4])],
    timeoutMs: 30_000,
    outputNames: ['logits'],
    ...overrides
  }
}

/** Strips the varint length prefix encodeFrame adds. */
function bodyOf (frame: Uint8Array): Uint8Array {
  let i = 0
  while ((frame[i] & 0x80) !== 0) i++
  return frame.subarray(i + 1)
}

function roundTrip (msg: FrameMessage, limits?: ProtocolLimits): FrameMessage {
  return decodeFrameBody(bodyOf(encodeFrame(msg)), limits)
}

function expectBadRequest (fn: () => unknown, message: RegExp): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown, 'expected a bad-request TaskError').toBeInstanceOf(TaskError)
  expect((thrown as TaskError).code).toBe('bad-request')
  expect((thrown as TaskError).message).toMatch(message)
}

/** Minimal protobuf writer for frames the generated encoder refuses to produce. */
const pb = {
  varint (n: number): number[] {
    const out: number[] = []
    while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
    out.push(n)
    return out
  },
  int (field: number, value: number): number[] { return [...pb.varint(field << 3), ...pb.varint(value)] },
  bytes (field: number, payload: number[] | Uint8Array): number[] { return [...pb.varint((field << 3) | 2), ...pb.varint(payload.length), ...payload] },
  str (field: number, s: string): number[] { return pb.bytes(field, new TextEncoder().encode(s)) }
}

/** A request frame body whose only tensor has the given raw dtype enum value. */
function requestWithRawDtype (dtype: number): Uint8Array {
  const t = [...pb.str(1, 'x'), ...pb.int(2, dtype), ...pb.int(3, 1), ...pb.bytes(4, [1, 2, 3, 4])]
  const model = [...pb.str(1, SHA), ...pb.int(2, 10), ...pb.str(3, 'm')]
  const req = [...pb.str(1, 't1'), ...pb.bytes(3, model), ...pb.bytes(4, t)]
  return Uint8Array.from(pb.bytes(1, req))
}

describe('codec round trip', () => {
  it.each(DTYPES)('carries a %s request and response unchanged', (dtype) => {
    const inputs = [tensor('a', dtype, [2, 3]), tensor('scalar', dtype, []), tensor('empty', dtype, [4, 0])]
    const req = request({ inputs })
    expect(roundTrip({ type: 'request', request: req })).toEqual({ type: 'request', request: req })

    const response: TaskResponse = {
      taskId: 'task-1',
      ok: true,
      result: {
        outputs: inputs,
        timings: { queueMs: 1.25, loadMs: 310.5, inferenceMs: 12.125, totalMs: 323.875 },
        backend: 'wasm',
        threads: 4
      }
    }
    const decoded = roundTrip({ type: 'response', response })
    expect(decoded).toEqual({ type: 'response', response })
    if (decoded.type !== 'response' || !decoded.response.ok) throw new Error('unreachable')
    for (let i = 0; i < inputs.length; i++) {
      expect(Array.from(decoded.response.result.outputs[i].data)).toEqual(Array.from(inputs[i].data))
    }
  })

  it('keeps 64-bit integer extremes bit-exact', () => {
    const int64 = fromTypedArray('i64', 'int64', [3], BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, -1n))
    const uint64 = fromTypedArray('u64', 'uint64', [2], BigUint64Array.of(0n, 2n ** 64n - 1n))
    const decoded = roundTrip({ type: 'request', request: request({ inputs: [int64, uint64] }) })
    if (decoded.type !== 'request') throw new Error('unreachable')
    expect(Array.from(toTypedArray(decoded.request.inputs[0]) as BigInt64Array)).toEqual([-(2n ** 63n), 2n ** 63n - 1n, -1n])
    expect(Array.from(toTypedArray(decoded.request.inputs[1]) as BigUint64Array)).toEqual([0n, 2n ** 64n - 1n])
  })

  it('carries a request with no inputs, no job id and all outputs wanted', () => {
    const req = request({ inputs: [], jobId: '', outputNames: [], timeoutMs: 0 })
    expect(roundTrip({ type: 'request', request: req })).toEqual({ type: 'request', request: req })
  })

  it.each(['bad-request', 'model-unavailable', 'busy', 'inference-failed', 'timeout', 'model-hash-mismatch'] satisfies WireErrorCode[])(
    'carries a %s error response', (code) => {
      const response: TaskResponse = { taskId: 'task-9', ok: false, error: { code, message: `because ${code}` } }
      expect(roundTrip({ type: 'response', response })).toEqual({ type: 'response', response })
    })

  it('keeps at most 1,024 characters of a peer\'s error message', () => {
    const response: TaskResponse = { taskId: 'task-9', ok: false, error: { code: 'busy', message: 'x'.repeat(100_000) } }
    const decoded = roundTrip({ type: 'response', response })
    if (decoded.type !== 'response' || decoded.response.ok) throw new Error('unreachable')
    expect(decoded.response.error.message).toBe(`${'x'.repeat(1024)}…`)
  })

  it('carries ping, pong and cancel', () => {
    for (const msg of [
      { type: 'ping', nonce: 0 },
      { type: 'ping', nonce: 2 ** 40 },
      { type: 'pong', nonce: 17 },
      { type: 'cancel', taskId: 'task-3' }
    ] satisfies FrameMessage[]) {
      expect(roundTrip(msg)).toEqual(msg)
    }
  })
})

describe('decodeFrameBody rejects', () => {
  const small: ProtocolLimits = { ...DEFAULT_LIMITS, maxTensors: 2, maxDims: 3, maxElements: 10, maxIdLength: 16 }
  const decodeRequest = (req: TaskRequest, limits?: ProtocolLimits) => () => roundTrip({ type: 'request', request: req }, limits)

  it('a tensor whose byte length does not match dtype × dims', () => {
    const t = { name: 'img', dtype: 'float32' as const, dims: [2, 2], data: new Uint8Array(15) }
    expectBadRequest(decodeRequest(request({ inputs: [t] })), /"img" has 15 bytes but float32\[2,2\] needs 16/)
    const empty = { name: 'zero', dtype: 'int64' as const, dims: [0], data: new Uint8Array(8) }
    expectBadRequest(decodeRequest(request({ inputs: [empty] })), /needs 0/)
  })

  it('an unknown or unspecified dtype', () => {
    expectBadRequest(() => decodeFrameBody(requestWithRawDtype(13)), /malformed frame/)
    expectBadRequest(() => decodeFrameBody(requestWithRawDtype(0)), /unsupported dtype/)
    // The raw builder itself is sound: float32 with 4 bytes for dims [1] is accepted.
    expect(decodeFrameBody(requestWithRawDtype(1)).type).toBe('request')
  })

  it('too many dims, tensors, output names or elements for the limits', () => {
    expectBadRequest(decodeRequest(request({ inputs: [tensor('x', 'uint8', [1, 1, 1, 1])] }), small), /dims/)
    expectBadRequest(decodeRequest(request({ inputs: [tensor('a', 'uint8', [1]), tensor('b', 'uint8', [1]), tensor('c', 'uint8', [1])] }), small), /inputs/)
    expectBadRequest(decodeRequest(request({ inputs: [], outputNames: ['a', 'b', 'c'] }), small), /outputNames/)
    expectBadRequest(decodeRequest(request({ inputs: [tensor('x', 'uint8', [4, 3])] }), small), /12 elements \(max 10\)/)
    const outputs = [tensor('a', 'uint8', [1]), tensor('b', 'uint8', [1]), tensor('c', 'uint8', [1])]
    const response: TaskResponse = { taskId: 't', ok: true, result: { outputs, timings: { queueMs: 0, loadMs: 0, inferenceMs: 0, totalMs: 0 }, backend: 'cpu', threads: 1 } }
    expectBadRequest(() => roundTrip({ type: 'response', response }, small), /outputs/)
    // At the limits exactly, all is well.
    expect(() => roundTrip({ type: 'request', request: request({ inputs: [tensor('x', 'uint8', [2, 5, 1]), tensor('y', 'bool', [10])], outputNames: ['a', 'b'] }) }, small)).not.toThrow()
  })

  it('ids and names longer than the limit', () => {
    expectBadRequest(decodeRequest(request({ taskId: 'x'.repeat(17) }), small), /task id is longer than 16/)
    expectBadRequest(decodeRequest(request({ inputs: [tensor('n'.repeat(17), 'uint8', [1])] }), small), /tensor name is longer/)
  })

  it('duplicate tensor names', () => {
    expectBadRequest(decodeRequest(request({ inputs: [tensor('x', 'uint8', [1]), tensor('x', 'float32', [1])] })), /"x" is repeated/)
  })

  it('a model sha256 that is not 64 lowercase hex characters, or no model at all', () => {
    for (const sha256 of [SHA.toUpperCase(), SHA.slice(1), SHA + '0', '', 'g'.repeat(64)]) {
      expectBadRequest(decodeRequest(request({ model: { sha256, size: 1, name: 'm' } })), /sha256/)
    }
    const noModel = Frame.encode({ request: { taskId: 't', jobId: '', inputs: [], timeoutMs: 0, outputNames: [], batchReceipts: false } })
    expectBadRequest(() => decodeFrameBody(noModel), /sha256/)
  })

  it('an empty task id in a request, response or cancel', () => {
    expectBadRequest(decodeRequest(request({ taskId: '' })), /task id is empty/)
    expectBadRequest(() => roundTrip({ type: 'response', response: { taskId: '', ok: false, error: { code: 'busy', message: '' } } }), /task id is empty/)
    expectBadRequest(() => roundTrip({ type: 'cancel', taskId: '' }), /task id is empty/)
  })

  it('a tensor with an empty name', () => {
    expectBadRequest(decodeRequest(request({ inputs: [tensor('', 'uint8', [1])] })), /tensor name is empty/)
  })

  it('a frame carrying zero or two messages', () => {
    expectBadRequest(() => decodeFrameBody(new Uint8Array(0)), /carries 0/)
    expectBadRequest(() => decodeFrameBody(Frame.encode({ ping: { nonce: 1n }, pong: { nonce: 2n } })), /carries 2/)
  })

  it('a response with neither or both of result and error, or an unknown error code', () => {
    expectBadRequest(() => decodeFrameBody(Frame.encode({ response: { taskId: 't' } })), /exactly one of result or error/)
    const both = Frame.encode({ response: { taskId: 't', result: { outputs: [], backend: 'cpu', threads: 1 }, error: { code: 'BUSY' as never, message: '' } } })
    expectBadRequest(() => decodeFrameBody(both), /exactly one of result or error/)
    const unspecified = Frame.encode({ response: { taskId: 't', error: { code: 'ERROR_UNSPECIFIED' as never, message: 'huh' } } })
    expectBadRequest(() => decodeFrameBody(unspecified), /unknown error code/)
  })
})

describe('FrameDecoder', () => {
  const frames: FrameMessage[] = [
    { type: 'request', request: request({ inputs: [tensor('a', 'float32', [3, 3]), tensor('b', 'uint64', [2])] }) },
    { type: 'ping', nonce: 5 },
    { type: 'response', response: { taskId: 'task-1', ok: false, error: { code: 'busy', message: 'queue full' } } },
    { type: 'cancel', taskId: 'task-2' }
  ]
  const wire = Uint8Array.from(frames.flatMap(f => Array.from(encodeFrame(f))))

  it('reassembles frames split at every byte boundary', () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      const decoder = new FrameDecoder()
      const out = [...decoder.push(wire.slice(0, cut)), ...decoder.push(wire.slice(cut))]
      expect(out, `split at byte ${cut}`).toEqual(frames)
      expect(decoder.pending).toBe(0)
    }
  })

  it('reassembles frames delivered one byte at a time', () => {
    const decoder = new FrameDecoder()
    const out: FrameMessage[] = []
    for (const byte of wire) out.push(...decoder.push(Uint8Array.of(byte)))
    expect(out).toEqual(frames)
    expect(decoder.pending).toBe(0)
  })

  it('returns several frames from one chunk', () => {
    const decoder = new FrameDecoder()
    expect(decoder.push(wire)).toEqual(frames)
    expect(decoder.pending).toBe(0)
  })

  it('throws on an oversized length prefix before any of the body arrives', () => {
    const decoder = new FrameDecoder({ ...DEFAULT_LIMITS, maxFrameBytes: 1024 })
    const prefix = Uint8Array.from(pb.varint(1025))
    expectBadRequest(() => decoder.push(prefix), /frame of 1025 bytes exceeds the 1024-byte limit/)
    expect(decoder.pending).toBeLessThanOrEqual(prefix.length)

    // A frame of exactly the limit is fine.
    const exact = new FrameDecoder({ ...DEFAULT_LIMITS, maxFrameBytes: 1024 })
    expect(exact.push(Uint8Array.from(pb.varint(1024)))).toEqual([])
  })

  it('with the default limits, rejects a 1 GiB announcement from its 5-byte prefix alone', () => {
    const decoder = new FrameDecoder()
    expectBadRequest(() => decoder.push(Uint8Array.from(pb.varint(1024 ** 3))), /exceeds/)
    expect(decoder.pending).toBeLessThanOrEqual(5)
  })

  it('keeps a truncated frame pending without a result or an error', () => {
    const decoder = new FrameDecoder()
    const one = encodeFrame(frames[0])
    expect(decoder.push(one.subarray(0, one.length - 1))).toEqual([])
    expect(decoder.pending).toBe(one.length - 1)
    expect(decoder.push(one.subarray(one.length - 1))).toEqual([frames[0]])
    expect(decoder.pending).toBe(0)
  })

  it('throws on a length prefix longer than five bytes, and on an empty frame', () => {
    expectBadRequest(() => new FrameDecoder().push(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)), /prefix is too long/)
    expectBadRequest(() => new FrameDecoder().push(Uint8Array.of(0x00)), /empty frame/)
  })
})

describe('toTypedArray / fromTypedArray', () => {
  const samples: Record<DTypeName, AnyTypedArray> = {
    float32: Float32Array.of(1.5, -0, Infinity, NaN),
    float64: Float64Array.of(Math.PI, -1e300, Number.MIN_VALUE),
    float16: Uint16Array.of(0x3c00, 0x7e01, 0x8000),
    int8: Int8Array.of(-128, 127, 0),
    int16: Int16Array.of(-32768, 32767, 1),
    int32: Int32Array.of(-(2 ** 31), 2 ** 31 - 1, 5),
    int64: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n),
    uint8: Uint8Array.of(0, 255, 9),
    uint16: Uint16Array.of(0, 65535),
    uint32: Uint32Array.of(0, 2 ** 32 - 1),
    uint64: BigUint64Array.of(0n, 2n ** 64n - 1n),
    bool: Uint8Array.of(1, 0, 1)
  }

  it.each(DTYPES)('round-trips %s, aligned without copying and misaligned by copying', (dtype) => {
    const values = samples[dtype]
    const t = fromTypedArray('t', dtype, [values.length], values)
    expect(t.data.buffer).toBe(values.buffer) // wraps, no copy
    expect(t.data.byteLength).toBe(values.length * DTYPE_BYTES[dtype])

    const back = toTypedArray(t)
    expect(back.constructor).toBe(values.constructor)
    expect(Array.from(back as ArrayLike<number | bigint>)).toEqual(Array.from(values as ArrayLike<number | bigint>))
    expect(back.buffer).toBe(values.buffer) // aligned: a view, no copy

    // The same bytes one byte into a buffer: byteOffset 1 is misaligned for every multi-byte dtype.
    const shifted = new Uint8Array(t.data.byteLength + 1)
    shifted.set(t.data, 1)
    const misaligned: WireTensor = { ...t, data: shifted.subarray(1) }
    const fromMisaligned = toTypedArray(misaligned)
    expect(fromMisaligned.constructor).toBe(values.constructor)
    expect(Array.from(fromMisaligned as ArrayLike<number | bigint>)).toEqual(Array.from(values as ArrayLike<number | bigint>))
  })

  it('wraps only the viewed part of a typed array with a byteOffset', () => {
    const whole = Float64Array.of(1, 2, 3, 4)
    const t = fromTypedArray('part', 'float64', [2], whole.subarray(1, 3))
    expect(t.data.byteOffset).toBe(8)
    expect(Array.from(toTypedArray(t) as Float64Array)).toEqual([2, 3])
    expect(t.dims).toEqual([2])
  })
})

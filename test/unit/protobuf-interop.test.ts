/**
 * Interop with an independent protobuf implementation: protobufjs, loading the same .proto files,
 * writes repeated scalars packed (proto3's default, as protoc-generated code in any language does);
 * our decoders must read those messages exactly as they read our own (unpacked) encoding.
 */
import { describe, expect, it } from 'vitest'
import protobuf from 'protobufjs'
import { decodeFrameBody, encodeFrame } from '../../src/core/task/codec.js'
import { decodeModelReply, decodeModelRequest } from '../../src/core/model-transfer/codec.js'
import { decodeAdvertBody, decodeSigned } from '../../src/core/discovery/codec.js'
import { DType, Tensor } from '../../src/core/task/pb/task.js'
import { TaskError } from '../../src/core/errors.js'
import { DEFAULT_LIMITS } from '../../src/core/limits.js'

const task = protobuf.loadSync('src/core/task/pb/task.proto')
const model = protobuf.loadSync('src/core/model-transfer/pb/model.proto')
const advert = protobuf.loadSync('src/core/discovery/pb/advert.proto')
const SHA = 'ab'.repeat(32)

function encodeWith (root: protobuf.Root, type: string, value: Record<string, unknown>): Uint8Array {
  const t = root.lookupType(type)
  const err = t.verify(value)
  if (err != null) throw new Error(err)
  // a plain Uint8Array (protobufjs hands out Node Buffers), as a transport delivers it
  return Uint8Array.from(t.encode(t.fromObject(value)).finish())
}

function frame (value: Record<string, unknown>): Uint8Array {
  return encodeWith(task, 'Frame', value)
}

function floats (values: number[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(values.length * 4)
  values.forEach((v, i) => { new DataView(out.buffer).setFloat32(i * 4, v, true) })
  return out
}

function badRequest (fn: () => unknown): TaskError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(TaskError)
    expect((err as TaskError).code).toBe('bad-request')
    return err as TaskError
  }
  throw new Error('expected a bad-request TaskError')
}

describe('task frames written by protobufjs', () => {
  it('encodes tensor dims packed, as proto3 requires of writers by default', () => {
    const bytes = encodeWith(task, 'Tensor', { name: 'x', dtype: 1, dims: [1, 4], data: floats([1, 2, 3, 4]) })
    // field 3, wire type 2 (length-delimited): the packed form
    expect([...bytes]).toContain(0x1a)
  })

  it('decodes a request whose dims are packed', () => {
    const body = frame({
      request: {
        taskId: 't1',
        jobId: 'j',
        model: { sha256: SHA, size: 1234, name: 'm.onnx' },
        inputs: [{ name: 'input', dtype: 1, dims: [1, 4], data: floats([1, 2, 3, 4]) }, { name: 's', dtype: 7, dims: [], data: new Uint8Array(8) }],
        timeoutMs: 5000,
        outputNames: ['probs']
      }
    })
    const msg = decodeFrameBody(body)
    expect(msg).toEqual({
      type: 'request',
      request: {
        taskId: 't1',
        jobId: 'j',
        model: { sha256: SHA, size: 1234, name: 'm.onnx' },
        inputs: [{ name: 'input', dtype: 'float32', dims: [1, 4], data: floats([1, 2, 3, 4]) }, { name: 's', dtype: 'int64', dims: [], data: new Uint8Array(8) }],
        timeoutMs: 5000,
        outputNames: ['probs']
      }
    })
  })

  it('decodes a result whose output dims are packed, with large dims (multi-byte varints)', () => {
    const data = new Uint8Array(300 * 200)
    const body = frame({
      response: {
        taskId: 't1',
        result: { outputs: [{ name: 'mask', dtype: 8, dims: [1, 300, 200], data }], timings: { queueMs: 1, loadMs: 2, inferenceMs: 3, totalMs: 6 }, backend: 'wasm', threads: 2 }
      }
    })
    const msg = decodeFrameBody(body)
    expect(msg.type).toBe('response')
    if (msg.type !== 'response' || !msg.response.ok) throw new Error('expected a result')
    expect(msg.response.result.outputs[0].dims).toEqual([1, 300, 200])
    expect(msg.response.result.timings).toEqual({ queueMs: 1, loadMs: 2, inferenceMs: 3, totalMs: 6 })
  })

  it('accepts packed and unpacked runs of one field in the same message, in order', () => {
    // Parsers must concatenate every occurrence of a repeated field, whichever its encoding.
    const base = Tensor.encode({ name: 'x', dtype: DType.FLOAT32, dims: [], data: floats([0, 0, 0, 0, 0, 0]) })
    const mixed = Uint8Array.from([...base, 0x1a, 0x02, 0x01, 0x02, 0x18, 0x03])
    expect(Tensor.decode(mixed).dims).toEqual([1, 2, 3])
  })

  it('decodes what our own encoder writes (unpacked) exactly as before', () => {
    const bytes = encodeFrame({ type: 'ping', nonce: 7 })
    expect(decodeFrameBody(bytes.subarray(1))).toEqual({ type: 'ping', nonce: 7 })
    const t = Tensor.encode({ name: 'x', dtype: DType.FLOAT32, dims: [2, 3], data: new Uint8Array(24) })
    expect([...t]).toEqual(expect.arrayContaining([0x18, 0x02, 0x18, 0x03]))
    expect(Tensor.decode(t).dims).toEqual([2, 3])
  })

  it('holds the dims limit on packed input', () => {
    const dims = new Array(DEFAULT_LIMITS.maxDims + 1).fill(1)
    const body = frame({ request: { taskId: 't', model: { sha256: SHA, size: 1 }, inputs: [{ name: 'x', dtype: 8, dims, data: new Uint8Array(1) }] } })
    expect(badRequest(() => decodeFrameBody(body)).message).toMatch(/too many elements/)
  })

  it('holds the dims limit against a packed run of a million varints in one small frame', () => {
    const run = new Uint8Array(1_000_000).fill(1)
    const t = concat([0x0a, 0x01, 0x78, 0x1a, ...varint(run.length)], run)
    const req = concat([0x22, ...varint(t.length)], t)
    const body = concat([0x0a, ...varint(req.length)], req)
    expect(badRequest(() => decodeFrameBody(body)).message).toMatch(/too many elements/)
  })

  it('refuses a packed run whose last varint overruns its length', () => {
    // dims: packed length 2, but the second varint continues past the run into the data field
    const t = Uint8Array.from([0x0a, 0x01, 0x78, 0x1a, 0x02, 0x01, 0x81, 0x22, 0x00])
    const req = Uint8Array.from([0x22, t.length, ...t])
    expect(badRequest(() => decodeFrameBody(Uint8Array.from([0x0a, req.length, ...req]))).message).toMatch(/packed field "dims" overruns its length/)
  })

  it('refuses a packed run longer than the message holding it', () => {
    const t = Uint8Array.from([0x0a, 0x01, 0x78, 0x1a, 0x7f, 0x01, 0x01])
    const req = Uint8Array.from([0x22, t.length, ...t])
    expect(badRequest(() => decodeFrameBody(Uint8Array.from([0x0a, req.length, ...req]))).message).toMatch(/packed field "dims" reaches past its message/)
  })
})

describe('model transfer messages written by protobufjs', () => {
  it('decodes a request and each kind of reply', () => {
    expect(decodeModelRequest(encodeWith(model, 'ModelRequest', { sha256: SHA, offset: 65536 }))).toEqual({ sha256: SHA, offset: 65536 })
    expect(decodeModelReply(encodeWith(model, 'ModelReply', { header: { size: 1_000_000 } }))).toEqual({ header: { size: 1_000_000n } })
    expect(decodeModelReply(encodeWith(model, 'ModelReply', { chunk: Uint8Array.of(1, 2, 3) }))).toEqual({ chunk: Uint8Array.of(1, 2, 3) })
    expect(decodeModelReply(encodeWith(model, 'ModelReply', { error: { code: 'busy', message: 'later' } }))).toEqual({ error: { code: 'busy', message: 'later' } })
  })
})

describe('discovery adverts written by protobufjs', () => {
  it('decodes a signed advert and its body', () => {
    const body = encodeWith(advert, 'AdvertBody', {
      seq: 42,
      kind: 2,
      addrs: [Uint8Array.of(4, 127, 0, 0, 1)],
      worker: true,
      backend: 'onnxruntime-node cpu 1 thread',
      threads: 1,
      slots: 2,
      freeSlots: 1,
      maxModelBytes: 1 << 20,
      models: [{ sha256: new Uint8Array(32).fill(0xab), loaded: true, ms: 1.5, backend: 'wasm' }]
    })
    const signed = encodeWith(advert, 'SignedAdvert', { publicKey: Uint8Array.of(8, 1, 18, 32), body, signature: new Uint8Array(64) })
    const s = decodeSigned(signed)
    expect(s.body).toEqual(body)
    const { envelope, addrs } = decodeAdvertBody(s.body)
    expect(addrs).toEqual([Uint8Array.of(4, 127, 0, 0, 1)])
    expect(envelope.seq).toBe(42)
    expect(envelope.advert).toMatchObject({ kind: 'node', worker: true, slots: 2, freeSlots: 1, models: [SHA], cached: [SHA], speeds: { [SHA]: 1.5 }, backends: { [SHA]: 'wasm' } })
  })
})

function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  out.push(n)
  return out
}

function concat (...parts: Array<number[] | Uint8Array>): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

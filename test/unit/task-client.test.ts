import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encodeFrame, FrameDecoder } from '../../src/core/task/codec.js'
import { DEFAULT_LIMITS } from '../../src/core/limits.js'
import { UnfinishedFrames } from '../../src/core/framing.js'
import { RECEIPT_VERSION, receiptBytes, tensorsSha256, verifyReceipt } from '../../src/core/receipt.js'
import { STREAM_ERROR_ID } from '../../src/core/channel.js'
import { TaskError } from '../../src/core/errors.js'
import { TaskClient } from '../../src/core/task/client.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { flushMicrotasks, memoryChannelPair } from '../helpers/memory-channel.js'
import type { FrameMessage } from '../../src/core/task/codec.js'
import type { TaskRequest, TaskResult } from '../../src/core/task-types.js'
import type { TaskClientOptions, TaskOutcome } from '../../src/core/task/client.js'
import type { MemoryEnd } from '../helpers/memory-channel.js'
import type { PrivateKey } from '@libp2p/interface'
import type { ReceiptFields } from '../../src/core/receipt.js'

// Real Ed25519 identities: the worker on the other end, a second key a liar could sign with, and us.
const WORKER_KEY = await generateKeyPair('Ed25519')
const WORKER = peerIdFromPrivateKey(WORKER_KEY)
const OTHER_KEY = await generateKeyPair('Ed25519')
const REQUESTER = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

function signWith (key: PrivateKey, fields: ReceiptFields): Uint8Array {
  const signature = key.sign(receiptBytes(fields))
  if (!(signature instanceof Uint8Array)) throw new Error('expected a synchronous Ed25519 signer (Node)')
  return signature
}

/** How the scripted worker signs a reply: honestly by default, or with one thing wrong. */
interface Signing {
  key?: PrivateKey
  /** Overrides signed fields (what a liar or a replay would have signed). */
  fields?: Partial<ReceiptFields>
  /** Sends no receipt at all. */
  unsigned?: boolean
}

/** The far end of the channel, played by the test: records frames, optionally answers pings. */
class ScriptedWorker {
  readonly received: FrameMessage[] = []
  answerPings = true
  closedByClient = false
  private readonly decoder = new FrameDecoder()

  constructor (private readonly end: MemoryEnd) {
    end.onData(chunk => {
      for (const frame of this.decoder.push(chunk)) {
        this.received.push(frame)
        if (frame.type === 'ping' && this.answerPings) this.send({ type: 'pong', nonce: frame.nonce })
      }
    })
    end.onClose(() => { this.closedByClient = true })
  }

  send (msg: FrameMessage): void {
    this.end.send(encodeFrame(msg))
  }

  sendRaw (bytes: Uint8Array): void {
    this.end.send(bytes)
  }

  close (err?: Error): void {
    this.end.close(err)
  }

  ofType<T extends FrameMessage['type']> (type: T): Array<Extract<FrameMessage, { type: T }>> {
    return this.received.filter((f): f is Extract<FrameMessage, { type: T }> => f.type === type)
  }

  /** Answers with `result` and a receipt signed over the request it received under `taskId`. */
  reply (taskId: string, result: TaskResult, signing: Signing = {}): void {
    const asked = this.ofType('request').find(f => f.request.taskId === taskId)?.request
    const startedAt = 1_700_000_000_000
    const endedAt = startedAt + 25
    const fields: ReceiptFields = {
      jobId: asked?.jobId ?? '',
      taskId,
      requester: REQUESTER,
      worker: WORKER.toString(),
      modelSha256: asked?.model.sha256 ?? '0'.repeat(64),
      inputsSha256: tensorsSha256(asked?.inputs ?? []),
      outputsSha256: tensorsSha256(result.outputs),
      backend: result.backend,
      startedAt,
      endedAt,
      ...signing.fields
    }
    const receipt = signing.unsigned === true ? undefined : { startedAt: fields.startedAt, endedAt: fields.endedAt, signature: signWith(signing.key ?? WORKER_KEY, fields) }
    this.send({ type: 'response', response: { taskId, ok: true, result: { ...result, receipt } } })
  }
}

function setup (options: TaskClientOptions = {}) {
  const clock = new FakeClock(1000)
  const [clientEnd, workerEnd] = memoryChannelPair({ seed: 11 })
  const client = new TaskClient(clientEnd, {
    requester: REQUESTER,
    worker: WORKER.toString(),
    verify: (bytes, signature) => WORKER.publicKey.verify(bytes, signature)
  }, { clock, heartbeatMs: 1000, livenessMs: 4000, graceMs: 500, ...options })
  clientEnd.onData(chunk => { client.receive(chunk) })
  clientEnd.onClose(err => { client.closed(err) })
  const worker = new ScriptedWorker(workerEnd)

  /** Advances fake time in small steps, letting the channel deliver between steps. */
  async function advance (ms: number, step = 100): Promise<void> {
    for (let done = 0; done < ms;) {
      const d = Math.min(step, ms - done)
      clock.advance(d)
      done += d
      await flushMicrotasks()
    }
  }
  return { clock, client, worker, advance }
}

function request (taskId: string, timeoutMs = 10_000): TaskRequest {
  return {
    taskId,
    jobId: 'job',
    model: { sha256: 'f'.repeat(64), size: 100, name: 'm.onnx' },
    inputs: [{ name: 'x', dtype: 'float32', dims: [1], data: new Uint8Array(4) }],
    timeoutMs,
    outputNames: []
  }
}

function result (marker: number, totalMs = 0): TaskResult {
  return {
    outputs: [{ name: 'y', dtype: 'uint8', dims: [1], data: Uint8Array.of(marker) }],
    timings: { queueMs: 0, loadMs: 0, inferenceMs: totalMs, totalMs },
    backend: 'cpu',
    threads: 1
  }
}

/** Observes a promise without awaiting it, so a test can assert "still pending". */
function track (promise: Promise<TaskOutcome>) {
  const state: { settled: boolean, outcome?: TaskOutcome, error?: TaskError } = { settled: false }
  promise.then(
    outcome => { state.settled = true; state.outcome = outcome },
    (err: unknown) => { state.settled = true; state.error = err as TaskError }
  )
  return state
}

describe('TaskClient deadlines', () => {
  it('fails a task with timeout after its deadline plus grace, and tells the worker to cancel it', async () => {
    const { client, worker, advance, clock } = setup()
    const task = track(client.run(request('slow', 3000)))
    await flushMicrotasks()
    expect(worker.ofType('request').map(f => f.request.timeoutMs)).toEqual([3000])

    await advance(3499)
    expect(task.settled).toBe(false) // pongs keep the worker alive; the deadline is not yet up

    await advance(1)
    expect(task.error).toBeInstanceOf(TaskError)
    expect(task.error?.code).toBe('timeout')
    expect(task.error?.message).toMatch(/3500 ms/)
    await flushMicrotasks()
    expect(worker.ofType('cancel')).toEqual([{ type: 'cancel', taskId: 'slow' }])

    // The connection itself is fine: nothing left running, no stray timers.
    expect(client.isClosed).toBe(false)
    expect(client.inFlight).toBe(0)
    expect(clock.pendingTimers).toBe(0)
  })

  it('sends its default deadline when the request has none', async () => {
    const { client, worker } = setup({ defaultTimeoutMs: 7000 })
    void client.run(request('default', 0)).catch(() => {})
    await flushMicrotasks()
    expect(worker.ofType('request')[0].request.timeoutMs).toBe(7000)
    client.close()
  })

  it('ignores an answer that arrives after the deadline, and keeps working', async () => {
    const { client, worker, advance } = setup()
    const late = track(client.run(request('late', 1000)))
    await advance(1500)
    expect(late.error?.code).toBe('timeout')

    worker.reply('late', result(1))
    await flushMicrotasks()
    expect(late.error?.code).toBe('timeout')
    expect(client.isClosed).toBe(false)

    const next = client.run(request('next'))
    await flushMicrotasks()
    worker.reply('next', result(2))
    expect((await next).result.outputs[0].data[0]).toBe(2)
  })
})

describe('TaskClient unfinished responses', () => {
  it('reports a response frame trickled past its deadline to its watch, though each byte would keep the worker "alive"', async () => {
    const watchClock = new FakeClock(1000)
    const frames = new UnfinishedFrames({ floorMs: 2000, minBytesPerSecond: 1 << 20, maxBytesPerPeer: 1 << 20, maxBytesTotal: 1 << 20 }, watchClock)
    const expired: TaskError[] = []
    const watch = frames.watch('worker', (err) => { expired.push(err) })
    const { client, worker, advance } = setup({ frames: watch, livenessMs: 60_000 })
    const pending = client.run(request('t1', 120_000))
    pending.catch(() => {})
    await advance(10)
    // A frame announcing 100 KiB, then one byte at a time.
    worker.sendRaw(new Uint8Array([0x80, 0x80, 0x06]))
    for (let i = 0; i < 20 && expired.length === 0; i++) {
      watchClock.advance(1000)
      worker.sendRaw(new Uint8Array([0x0a]))
      await advance(10)
    }
    expect(expired).toHaveLength(1)
    expect(expired[0].message).toMatch(/frame/)
    watch.close()
    expect(frames.heldBy('worker')).toBe(0)
  })
})

describe('TaskClient heartbeats', () => {
  it('declares a silent worker gone after livenessMs, having pinged it meanwhile', async () => {
    const { client, worker, advance } = setup()
    worker.answerPings = false
    const task = track(client.run(request('t', 60_000)))

    await advance(3999)
    expect(task.settled).toBe(false)
    expect(worker.ofType('ping').length).toBe(3) // at 1 s, 2 s and 3 s

    await advance(1)
    expect(task.error).toBeInstanceOf(TaskError)
    expect(task.error?.code).toBe('peer-gone')
    expect(task.error?.message).toMatch(/silent for 4000 ms/)
    await flushMicrotasks()
    expect(worker.closedByClient).toBe(true)
    expect(client.isClosed).toBe(true)
  })

  it('keeps a long task alive while the worker answers pings', async () => {
    const { client, worker, advance } = setup()
    const task = track(client.run(request('long', 60_000)))
    await advance(20_000)
    expect(task.settled).toBe(false)
    expect(worker.ofType('ping').length).toBe(20)

    worker.reply('long', result(5, 19_000))
    await flushMicrotasks()
    expect(task.outcome?.result.outputs[0].data[0]).toBe(5)
    expect(task.outcome?.roundTripMs).toBe(20_000)
    expect(task.outcome?.networkMs).toBe(1000)
  })

  it('does not ping while nothing is in flight', async () => {
    const { client, worker, advance, clock } = setup()
    const task = client.run(request('quick'))
    await flushMicrotasks()
    worker.reply('quick', result(1))
    await task
    await advance(10_000, 1000)
    expect(worker.ofType('ping')).toEqual([])
    expect(clock.pendingTimers).toBe(0)
  })
})

describe('TaskClient responses', () => {
  it('matches responses by task id and ignores a duplicate or unknown one', async () => {
    const { client, worker, clock } = setup()
    const a = track(client.run(request('a')))
    const b = track(client.run(request('b')))
    await flushMicrotasks()

    clock.advance(250)
    worker.reply('b', result(20, 200))
    worker.reply('b', result(21)) // duplicate: must not replace the first answer
    worker.reply('nobody-asked', result(99))
    await flushMicrotasks()
    expect(b.outcome?.result.outputs[0].data[0]).toBe(20)
    expect(b.outcome?.roundTripMs).toBe(250)
    expect(b.outcome?.networkMs).toBe(50)
    expect(a.settled).toBe(false)

    worker.reply('a', result(10))
    await flushMicrotasks()
    expect(a.outcome?.result.outputs[0].data[0]).toBe(10)
    expect(client.isClosed).toBe(false)
    expect(client.inFlight).toBe(0)
  })

  it('passes a per-task error through with its code and message, leaving other tasks alone', async () => {
    const { client, worker } = setup()
    const a = track(client.run(request('a')))
    const b = track(client.run(request('b')))
    await flushMicrotasks()
    worker.send({ type: 'response', response: { taskId: 'a', ok: false, error: { code: 'model-unavailable', message: 'no such model' } } })
    await flushMicrotasks()
    expect(a.error?.code).toBe('model-unavailable')
    expect(a.error?.message).toBe('no such model')
    expect(b.settled).toBe(false)
    client.close()
  })

  it('rejects a second task with an id that is already in flight', async () => {
    const { client } = setup()
    void client.run(request('same')).catch(() => {})
    await expect(client.run(request('same'))).rejects.toMatchObject({ code: 'bad-request' })
    client.close()
  })
})

describe('TaskClient connection loss', () => {
  it('fails every pending task with peer-gone when the channel closes, and refuses new ones', async () => {
    const { client, worker } = setup()
    const tasks = ['a', 'b', 'c'].map(id => track(client.run(request(id))))
    await flushMicrotasks()

    worker.close(new Error('stream reset'))
    await flushMicrotasks()
    for (const t of tasks) {
      expect(t.error).toBeInstanceOf(TaskError)
      expect(t.error?.code).toBe('peer-gone')
      expect(t.error?.message).toMatch(/stream reset/)
    }
    expect(client.isClosed).toBe(true)
    await expect(client.run(request('d'))).rejects.toMatchObject({ code: 'peer-gone' })
  })

  it('fails every pending task with the code of a stream-level error, and closes the channel', async () => {
    const { client, worker } = setup()
    const tasks = ['a', 'b'].map(id => track(client.run(request(id))))
    await flushMicrotasks()

    worker.send({ type: 'response', response: { taskId: STREAM_ERROR_ID, ok: false, error: { code: 'bad-request', message: 'frame of 99 bytes exceeds the 10-byte limit' } } })
    await flushMicrotasks()
    for (const t of tasks) {
      expect(t.error?.code).toBe('bad-request')
      expect(t.error?.message).toMatch(/exceeds the 10-byte limit/)
    }
    expect(worker.closedByClient).toBe(true)
  })

  it('fails every pending task with bad-request when the worker sends garbage', async () => {
    const { client, worker } = setup()
    const task = track(client.run(request('a')))
    await flushMicrotasks()
    worker.sendRaw(Uint8Array.of(0x03, 0xff, 0xff, 0xff))
    await flushMicrotasks()
    expect(task.error?.code).toBe('bad-request')
    expect(worker.closedByClient).toBe(true)
  })

  it('closing the client fails what is in flight with peer-gone', async () => {
    const { client, worker } = setup()
    const task = track(client.run(request('a')))
    await flushMicrotasks()
    client.close()
    await flushMicrotasks()
    expect(task.error?.code).toBe('peer-gone')
    expect(worker.closedByClient).toBe(true)
  })
})

describe('TaskClient receipts', () => {
  it('resolves with the worker\'s receipt, every signed field spelled out, which verifies offline', async () => {
    const { client, worker } = setup()
    const req = request('signed')
    const task = client.run(req)
    await flushMicrotasks()
    worker.reply('signed', result(7))
    const { receipt } = await task
    expect(receipt).toEqual({
      version: RECEIPT_VERSION,
      jobId: 'job',
      taskId: 'signed',
      requester: REQUESTER,
      worker: WORKER.toString(),
      modelSha256: req.model.sha256,
      inputsSha256: tensorsSha256(req.inputs),
      outputsSha256: tensorsSha256(result(7).outputs),
      backend: 'cpu',
      startedAt: 1_700_000_000_000,
      endedAt: 1_700_000_000_025,
      signature: expect.stringMatching(/^[0-9a-f]{128}$/)
    })
    expect(await verifyReceipt(receipt, (b, sig) => WORKER.publicKey.verify(b, sig))).toBe(true)
  })

  const lies: Array<{ what: string, signing: (other: TaskResult) => Signing, message: RegExp }> = [
    { what: 'no receipt at all', signing: () => ({ unsigned: true }), message: /without a receipt; unsigned results are refused/ },
    { what: 'a receipt signed with another key than the connection\'s peer', signing: () => ({ key: OTHER_KEY }), message: /receipt signature invalid/ },
    { what: 'a receipt over other outputs than those sent', signing: (other) => ({ fields: { outputsSha256: tensorsSha256(other.outputs) } }), message: /receipt signature invalid/ },
    { what: 'a receipt made for another requester', signing: () => ({ fields: { requester: WORKER.toString() } }), message: /receipt signature invalid/ },
    { what: 'a receipt replayed from another task', signing: () => ({ fields: { taskId: 'earlier' } }), message: /receipt signature invalid/ },
    { what: 'a receipt over other inputs', signing: () => ({ fields: { inputsSha256: tensorsSha256([]) } }), message: /receipt signature invalid/ },
    { what: 'a receipt naming another model', signing: () => ({ fields: { modelSha256: 'e'.repeat(64) } }), message: /receipt signature invalid/ },
    { what: 'a receipt naming another backend', signing: () => ({ fields: { backend: 'webgpu' } }), message: /receipt signature invalid/ }
  ]
  for (const lie of lies) {
    it(`fails the task inference-failed on ${lie.what}, leaving the stream and other tasks alone`, async () => {
      const { client, worker } = setup()
      const bad = track(client.run(request('bad')))
      const good = client.run(request('good'))
      await flushMicrotasks()
      worker.reply('bad', result(1), lie.signing(result(2)))
      await flushMicrotasks()
      expect(bad.error).toBeInstanceOf(TaskError)
      expect(bad.error?.code).toBe('inference-failed')
      expect(bad.error?.message).toMatch(lie.message)
      expect(client.isClosed).toBe(false)

      worker.reply('good', result(3))
      expect((await good).result.outputs[0].data[0]).toBe(3)
    })
  }

  it('refuses to send a request over the frame limit: bad-request, nothing on the wire', async () => {
    const { client, worker } = setup({ limits: { ...DEFAULT_LIMITS, maxFrameBytes: 1000 } })
    const big = request('big')
    big.inputs = [{ name: 'x', dtype: 'float32', dims: [300], data: new Uint8Array(1200) }]
    const err = await client.run(big).then(() => undefined, (e: unknown) => e as TaskError)
    expect(err?.code).toBe('bad-request')
    expect(err?.message).toMatch(/^task big is \d+ bytes, over the 1000-byte frame limit$/)
    await flushMicrotasks()
    expect(worker.ofType('request')).toEqual([])
    expect(client.inFlight).toBe(0)
    expect(client.isClosed).toBe(false)
  })
})

/**
 * The HTTP gateway (src/gateway) over real HTTP (fetch) against a real relay on 127.0.0.1 and real
 * onnxruntime-node workers over direct WebRTC: every endpoint; every bad request answered as
 * { error: { code, message } } with its status; bearer-token auth; results streamed (NDJSON) before
 * the job ends and its events (SSE); cancel; a gateway restarted mid-job resumes the job and
 * finishes it; /openapi.json an OpenAPI 3.1 document with every route; the command line
 * (`npm run gateway`) refusing a public address without a token, printing its URL and stopping
 * cleanly on SIGTERM.
 */
import '../../src/node/polyfill.js'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { startGateway } from '../../src/gateway/server.js'
import { Cleanup, REPO_ROOT, TaskValve, heldOutDigits, startPeer, startRelay, withTimeout, WAIT_MS } from './helpers.js'
import type { Gateway } from '../../src/gateway/server.js'

const SAMPLES = fileURLToPath(new URL('../../public/samples/', import.meta.url))
const TOKEN = 'test-token-0123456789abcdef'
const MAX_BODY = 2 * 1024 * 1024

const cleanup = new Cleanup()
let relayAddr: string
let gw: Gateway
/** On every worker: lets the cancel and restart tests stop a job with tasks surely left. */
const valve = new TaskValve()
const digits = heldOutDigits()
const digitInputs = (i: number): Record<string, unknown> => ({ input: { dims: [1, 1, 28, 28], data: Array.from(digits[i % digits.length]!.pixels) } })
const addMulInputs = (i: number): Record<string, unknown> => ({ a: [[i, 1]], b: [[2, 3]] })

interface ErrorJson { error: { code: string, message: string } }

/** fetch on the test gateway with its token (unless headers say otherwise). */
async function api (path: string, init: RequestInit & { base?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers)
  if (!headers.has('authorization')) headers.set('authorization', `Bearer ${TOKEN}`)
  return await fetch(`${init.base ?? gw.url}${path}`, { ...init, headers })
}

async function json<T = any> (path: string, init: RequestInit & { base?: string } = {}): Promise<{ status: number, body: T, headers: Headers }> {
  const res = await api(path, init)
  return { status: res.status, body: await res.json() as T, headers: res.headers }
}

const post = (body: unknown, type = 'application/json'): RequestInit => ({ method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' || body instanceof Uint8Array ? body as string : JSON.stringify(body) })

/** Checks an error answer: its status, code, a message matching `message`, and nothing else in the body. */
async function expectError (res: Promise<Response>, status: number, code: string, message?: RegExp): Promise<string> {
  const r = await res
  const text = await r.text()
  expect(r.status, text).toBe(status)
  expect(r.headers.get('content-type')).toMatch(/^application\/json/)
  const body = JSON.parse(text) as ErrorJson
  expect(Object.keys(body)).toEqual(['error'])
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message'])
  expect(body.error.code).toBe(code)
  if (message != null) expect(body.error.message).toMatch(message)
  // Never a stack trace.
  expect(body.error.message).not.toMatch(/\n\s+at /)
  return body.error.message
}

/** A response body's lines as they arrive. */
async function * bodyLines (res: Response): AsyncGenerator<string> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffered = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffered += value
      let nl: number
      while ((nl = buffered.indexOf('\n')) >= 0) {
        yield buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
      }
    }
    if (buffered !== '') yield buffered
  } finally {
    await reader.cancel().catch(() => {})
  }
}

interface SseEvent { event: string, data: any }

/** Server-sent events (comment lines as event ':'). */
async function * sseEvents (res: Response): AsyncGenerator<SseEvent> {
  let event = 'message'
  let data = ''
  for await (const line of bodyLines(res)) {
    if (line.startsWith(':')) yield { event: ':', data: line.slice(1).trim() }
    else if (line.startsWith('event: ')) event = line.slice(7)
    else if (line.startsWith('data: ')) data += line.slice(6)
    else if (line === '' && data !== '') {
      yield { event, data: JSON.parse(data) }
      event = 'message'
      data = ''
    }
  }
}

/** Reads `events` until one satisfies `predicate`; fails after WAIT_MS or when the stream ends. */
async function until (events: AsyncGenerator<SseEvent>, predicate: (e: SseEvent) => boolean, what: string, seen: SseEvent[] = []): Promise<SseEvent> {
  return await withTimeout((async () => {
    for (;;) {
      const { value, done } = await events.next()
      if (done === true) throw new Error(`the event stream ended before ${what} (saw ${seen.map(e => e.event).join(', ')})`)
      seen.push(value)
      if (predicate(value)) return value
    }
  })(), 3 * WAIT_MS, what)
}

const jsonl = (items: unknown[]): string => items.map(i => JSON.stringify(i)).join('\n') + '\n'

async function startJob (inputs: unknown[], query = 'model=digits', base?: string): Promise<string> {
  const { status, body } = await json<{ id: string }>(`/v1/jobs?${query}`, { ...post(jsonl(inputs), 'application/x-ndjson'), base })
  expect(status, JSON.stringify(body)).toBe(202)
  return body.id
}

beforeAll(async () => {
  relayAddr = (await startRelay(cleanup)).addr
  await startPeer(cleanup, relayAddr, { queue: { slots: 2 }, wrapExecutor: valve.wrap })
  await startPeer(cleanup, relayAddr, { queue: { slots: 2 }, wrapExecutor: valve.wrap })
  gw = await startGateway({ relays: relayAddr, port: 0, token: TOKEN, dataDir: await mkdtemp(join(tmpdir(), 'p2p-gw-')), maxBodyBytes: MAX_BODY, heartbeatMs: 500, progressMs: 100 })
  cleanup.add('gateway', async () => { await gw.close() })
  await gw.requester.waitForWorkers(2, { timeoutMs: WAIT_MS })
})

afterAll(async () => { await cleanup.run() })

describe('HTTP gateway', () => {
  it('answers /healthz and /openapi.json without a token; every /v1 route needs the right one', async () => {
    const health = await fetch(`${gw.url}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ ok: true, workers: 2, relays: [{ addr: relayAddr, state: 'ready' }] })
    expect((await fetch(`${gw.url}/openapi.json`)).status).toBe(200)

    const missing = await fetch(`${gw.url}/v1/models`)
    expect(missing.headers.get('www-authenticate')).toBe('Bearer')
    await expectError(Promise.resolve(missing), 401, 'unauthenticated', /Bearer/)
    await expectError(api('/v1/models', { headers: { authorization: 'Bearer wrong-token-0123456789' } }), 401, 'unauthenticated', /wrong token/)
    await expectError(api('/v1/models', { headers: { authorization: `Basic ${TOKEN}` } }), 401, 'unauthenticated')
    // Refused before the body is read, and before an unknown route is told apart.
    await expectError(fetch(`${gw.url}/v1/run`, post({ model: 'digits', inputs: digitInputs(0) })), 401, 'unauthenticated')
    await expectError(fetch(`${gw.url}/v1/nothing-here`), 401, 'unauthenticated')
    await expectError(api('/v1/nothing-here'), 404, 'not-found', /no route GET \/v1\/nothing-here/)
  })

  it('serves an OpenAPI 3.1 document with every route, each schema valid JSON Schema 2020-12', async () => {
    const doc = await (await fetch(`${gw.url}/openapi.json`)).json() as any
    expect(doc.openapi).toBe('3.1.0')
    expect(typeof doc.info.title).toBe('string')
    expect(typeof doc.info.version).toBe('string')
    const routes = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) => Object.keys(ops).filter(k => k !== 'parameters').map(m => `${m.toUpperCase()} ${path}`))
    expect(routes.sort()).toEqual([
      'DELETE /v1/jobs/{id}', 'GET /healthz', 'GET /v1/jobs', 'GET /v1/jobs/{id}', 'GET /v1/jobs/{id}/events', 'GET /v1/jobs/{id}/results',
      'GET /v1/models', 'GET /v1/workers', 'POST /v1/jobs', 'POST /v1/models', 'POST /v1/ocr', 'POST /v1/run'
    ])
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' })
    // Every schema in the document compiles as JSON Schema 2020-12 (OpenAPI 3.1's dialect).
    const ajv = new Ajv2020({ strict: false, validateFormats: false })
    ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs'])
    let schemas = 0
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(typeof op.summary, `${method} ${path} summary`).toBe('string')
        for (const p of op.parameters ?? []) {
          expect(['path', 'query', 'header', 'cookie']).toContain(p.in)
          if (p.in === 'path') expect(p.required).toBe(true)
          ajv.compile(p.schema)
          schemas++
        }
        for (const media of Object.values(op.requestBody?.content ?? {}) as any[]) { ajv.compile(media.schema); schemas++ }
        expect(Object.keys(op.responses).length, `${method} ${path} responses`).toBeGreaterThan(0)
        for (const [status, response] of Object.entries(op.responses) as Array<[string, any]>) {
          expect(status).toMatch(/^[1-5]\d\d$/)
          expect(typeof response.description, `${method} ${path} ${status} description`).toBe('string')
          for (const media of Object.values(response.content ?? {}) as any[]) { ajv.compile(media.schema); schemas++ }
        }
      }
    }
    expect(schemas).toBeGreaterThan(30)
    // Path parameters are declared for every templated path.
    expect(doc.paths['/v1/jobs/{id}'].get.parameters).toEqual([expect.objectContaining({ name: 'id', in: 'path', required: true })])
  })

  it('uploads a model, lists it, and runs one task on it with replicas (POST /v1/run)', async () => {
    const bytes = await readFile(join(SAMPLES, 'models/add-mul.onnx'))
    const { status, body: model } = await json('/v1/models?name=add-mul.onnx', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes })
    expect(status).toBe(200)
    expect(model).toMatchObject({ name: 'add-mul.onnx', size: bytes.byteLength })
    expect(model.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(model.inputs.map((i: { name: string }) => i.name)).toEqual(['a', 'b'])
    const list = await json('/v1/models')
    expect(list.body.models.map((m: { sha256: string }) => m.sha256)).toContain(model.sha256)
    expect(list.body.models.map((m: { builtin?: string }) => m.builtin)).toEqual(expect.arrayContaining(['digits', 'ocr-det', 'ocr-rec']))

    const inputs = JSON.parse(await readFile(join(SAMPLES, 'models/add-mul.inputs.json'), 'utf8'))
    const run = await json('/v1/run', post({ model: model.sha256, inputs, replicas: 2 }))
    expect(run.status, JSON.stringify(run.body)).toBe(200)
    expect(run.body.outputs.find((t: { name: string }) => t.name === 'sum')).toMatchObject({ dims: [2, 3], data: [1.5, 0, 13, 4.25, 5, 5] })
    expect(new Set(run.body.agreedBy).size).toBe(2)

    const workers = await json('/v1/workers')
    expect(workers.body.workers).toHaveLength(2)
    expect(workers.body.workers[0]).toMatchObject({ kind: 'node', paused: false })
  })

  it('refuses every bad request with a code, a message and a fitting status', async () => {
    await expectError(api('/v1/run', post('{"model": "digits", "inputs": ')), 400, 'bad-request', /not valid JSON/)
    await expectError(api('/v1/run', post('')), 400, 'bad-request', /empty/)
    await expectError(api('/v1/run', post('{"model":"digits","inputs":{},"__proto__":{"x":1}}')), 400, 'bad-request', /__proto__/)
    await expectError(api('/v1/run', post('model=digits', 'text/plain')), 415, 'bad-request', /text\/plain/)
    await expectError(api('/v1/jobs', post(new Uint8Array(8), 'application/octet-stream')), 415, 'bad-request')
    await expectError(api('/v1/run', post({ model: 'no-such-model', inputs: {} })), 404, 'unknown-model', /unknown model "no-such-model"/)
    await expectError(api('/v1/run', post({ model: 'ab'.repeat(32), inputs: {} })), 404, 'unknown-model', /upload it first/)
    // A model is a name or a sha256, never a path on the gateway's disk.
    for (const model of ['/etc/passwd', '../public/models/digits.onnx', 'public/models/digits.onnx', 'digits.onnx']) {
      await expectError(api('/v1/run', post({ model, inputs: {} })), 400, 'bad-request', /body\/model must match pattern/)
    }
    await expectError(api('/v1/run', post({ model: 'digits', inputs: { nope: [1] } })), 400, 'bad-input', /has no input 'nope'/)
    await expectError(api('/v1/run', post({ model: 'digits', inputs: { input: { dims: [1, 1, 28, 27], data: new Array(28 * 27).fill(0) } } })), 400, 'bad-input', /axis 3 must be 28/)
    await expectError(api('/v1/run', post({ model: 'digits', inputs: { input: { dims: [1, 1, 28, 28], data: ['x', ...new Array(783).fill(0)] } } })), 400, 'bad-input', /element \[0, 0, 0, 0\] is "x": expected a number/)
    await expectError(api('/v1/run', post({ model: 'digits', inputs: { input: { dims: [1, 1, 28, 28], dtype: 'int64', data: new Array(784).fill(0) } } })), 400, 'bad-input', /the data is int64, the model wants float32/)
    await expectError(api('/v1/run', post({ model: 'digits', inputs: digitInputs(0), replicas: 7 })), 400, 'bad-request', /body\/replicas must be <= 3/)
    await expectError(api('/v1/run', post({ model: 'digits', inputs: digitInputs(0), replica: 2 })), 400, 'bad-request', /additional properties \(replica\)/)
    await expectError(api('/v1/run', post({ model: 'digits' })), 400, 'bad-request', /required properties inputs/)
    await expectError(api('/v1/run', post({ model: 'digits', inputs: { input: new Array(MAX_BODY).fill(0) } })), 413, 'too-large', /2 MiB/)
    await expectError(api('/v1/jobs?model=digits', post('{"input": [1]}\n{"input": \n', 'application/x-ndjson')), 400, 'bad-request', /^line 2 is not valid JSON/)
    await expectError(api('/v1/jobs?model=digits', post(jsonl([digitInputs(0), digitInputs(1), { input: [[1, 2]] }]), 'application/x-ndjson')), 400, 'bad-input', /^input 2: input 'input': expected 4 dimensions/)
    await expectError(api('/v1/jobs', post(jsonl([digitInputs(0)]), 'application/x-ndjson')), 400, 'bad-request', /needs the model in the query string/)
    await expectError(api('/v1/jobs?replicas=2', post({ model: 'digits', inputs: [digitInputs(0)] })), 400, 'bad-request', /settings go in the body/)
    await expectError(api('/v1/jobs', post({ model: 'digits' })), 400, 'bad-request', /either "inputs" .* or "dataset"/)
    await expectError(api('/v1/jobs', post({ model: 'digits', inputs: [] })), 400, 'bad-request', /body\/inputs must not have fewer than 1 items/)
    // An array past its limit is refused on its length (one error), before its items are checked.
    await expectError(api('/v1/jobs', post(`{"model":"digits","inputs":[${new Array(100_001).fill('1').join(',')}]}`)), 413, 'too-large', /body\/inputs must have at most 100000 items \(has 100001\)/)
    await expectError(api('/v1/jobs?model=digits', post('{}\n'.repeat(100_001), 'application/x-ndjson')), 413, 'too-large', /more than 100000 lines/)
    await expectError(api('/v1/ocr', post({ images: new Array(17).fill('x') })), 413, 'too-large', /body\/images must have at most 16 items/)
    await expectError(api('/v1/models', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'not a model' }), 400, 'bad-model', /not a readable ONNX model/)
    await expectError(api('/v1/ocr', post({ images: [Buffer.from('not a png').toString('base64')] })), 400, 'bad-image', /image 0 is not a PNG/)
    // A PNG header claiming 100000 × 100000 pixels is refused before anything is decoded.
    const header = Buffer.alloc(33)
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]).copy(header)
    header.write('IHDR', 12, 'latin1')
    header.writeUInt32BE(100_000, 16)
    header.writeUInt32BE(100_000, 20)
    await expectError(api('/v1/ocr', post({ images: [header.toString('base64')] })), 413, 'too-large', /100000×100000 pixels/)
    const unknownJob = '00000000-0000-4000-8000-000000000000'
    await expectError(api(`/v1/jobs/${unknownJob}`), 404, 'unknown-job')
    await expectError(api(`/v1/jobs/${unknownJob}/results`), 404, 'unknown-job')
    await expectError(api(`/v1/jobs/${unknownJob}/events`), 404, 'unknown-job')
    await expectError(api(`/v1/jobs/${unknownJob}`, { method: 'DELETE' }), 404, 'unknown-job')
    await expectError(api('/v1/jobs?limit=0'), 400, 'bad-request', /querystring\/limit must be >= 1/)
    await expectError(api('/v1/models', { method: 'PATCH' }), 404, 'not-found')

    // A request node's HTTP parser cannot read gets the same JSON shape.
    const raw = await new Promise<string>((resolve, reject) => {
      const url = new URL(gw.url)
      const socket = tcpConnect(Number(url.port), url.hostname, () => { socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n') })
      let text = ''
      socket.on('data', (d) => { text += d.toString() })
      socket.on('end', () => { resolve(text) })
      socket.on('error', reject)
    })
    expect(raw).toMatch(/^HTTP\/1\.1 400 /)
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toEqual({ error: { code: 'bad-request', message: 'malformed HTTP request' } })
  })

  it('runs a JSON job to the end with replicas, then serves its status, workers and results', async () => {
    const n = 40
    const { status, body, headers } = await json<{ id: string, total: number }>('/v1/jobs', post({ model: 'digits', inputs: Array.from({ length: n }, (_, i) => digitInputs(i)), replicas: 2, argmax: 'probs', label: 'forty digits' }))
    expect(status).toBe(202)
    expect(body.total).toBe(n)
    expect(headers.get('location')).toBe(`/v1/jobs/${body.id}`)
    const events = sseEvents(await api(`/v1/jobs/${body.id}/events`))
    const end = await until(events, e => e.event === 'end', 'the job\'s end')
    expect(end.data).toMatchObject({ id: body.id, state: 'done', running: false, label: 'forty digits', progress: { total: n, done: n, failed: 0 } })

    const lines: any[] = []
    for await (const line of bodyLines(await api(`/v1/jobs/${body.id}/results`))) lines.push(JSON.parse(line))
    expect(lines.map(l => l.index)).toEqual([...Array(n).keys()])
    let right = 0
    for (const l of lines) {
      expect(new Set(l.agreedBy).size).toBe(2)
      const probs = l.outputs.find((t: { name: string }) => t.name === 'probs').data as number[]
      if (probs.indexOf(Math.max(...probs)) === digits[l.index]!.label) right++
    }
    expect(right / n).toBeGreaterThan(0.85)

    const job = await json(`/v1/jobs/${body.id}`)
    expect(job.body).toMatchObject({ state: 'done', progress: { done: n } })
    // Both workers contributed (replicas 2: each result agreed by two distinct workers).
    expect(job.body.workers).toHaveLength(2)
    expect(job.body.workers.reduce((s: number, w: { results: number }) => s + w.results, 0)).toBe(2 * n)
    const list = await json('/v1/jobs?limit=5')
    expect(list.body.jobs.map((j: { id: string }) => j.id)).toContain(body.id)
    await expectError(api(`/v1/jobs/${body.id}`, { method: 'DELETE' }), 409, 'conflict', /already done/)

    // A built-in dataset instead of inputs.
    const dataset = await json<{ id: string, total: number }>('/v1/jobs', post({ model: 'digits', dataset: 'mnist-test', limit: 30 }))
    expect(dataset.body.total).toBe(30)
    const datasetEnd = await until(sseEvents(await api(`/v1/jobs/${dataset.body.id}/events`)), e => e.event === 'end', 'the dataset job\'s end')
    expect(datasetEnd.data).toMatchObject({ state: 'done', progress: { done: 30 } })
  })

  it('says in a job\'s status and events why it cannot progress (replicas 3 with two workers), until it is cancelled', async () => {
    const { body } = await json<{ id: string }>('/v1/jobs', post({ model: 'digits', inputs: Array.from({ length: 10 }, (_, i) => digitInputs(i)), replicas: 3, argmax: 'probs' }))
    const events = sseEvents(await api(`/v1/jobs/${body.id}/events`))
    const blocked = await until(events, e => e.event === 'progress' && e.data.blocked != null, 'a progress event with blocked')
    expect(blocked.data.blocked).toMatchObject({ code: 'too-few-workers', message: 'needs 3 different workers, 2 available' })
    const status = await json(`/v1/jobs/${body.id}`)
    expect(status.body).toMatchObject({ running: true, progress: { blocked: { code: 'too-few-workers', message: 'needs 3 different workers, 2 available' } } })
    expect(status.body.progress.blocked.sinceMs).toBeLessThanOrEqual(Date.now())
    const cancelled = await json(`/v1/jobs/${body.id}`, { method: 'DELETE' })
    expect(cancelled.body).toMatchObject({ state: 'cancelled', running: false })
    expect(cancelled.body.progress.blocked).toBeUndefined()
  })

  it('streams results before the job ends (even to a client that joins mid-job), sends its events, and cancels it', async () => {
    const total = 4000
    const id = await startJob(Array.from({ length: total }, (_, i) => addMulInputs(i)), `model=${await addMulSha()}`)
    const seen: SseEvent[] = []
    const events = sseEvents(await api(`/v1/jobs/${id}/events`))
    const state = await until(events, e => e.event === 'state', 'the state event', seen)
    expect(state.data).toMatchObject({ id, progress: { total } })
    // Join once a good share is decided: results decided moments before must not be skipped.
    const progress = await until(events, e => e.event === 'progress' && e.data.done >= 300, '300 results', seen)
    const joinedAt = progress.data.done as number
    // The job must still be running when it is cancelled, several steps below (a worker joining
    // among them): the workers start 500 more of its tasks, enough for the results read next, then
    // none until the valve opens, however fast the machine.
    valve.close(500)
    try {
      const results = bodyLines(await api(`/v1/jobs/${id}/results`))
      const read: any[] = []
      await withTimeout((async () => {
        for (;;) {
          const { value } = await results.next()
          const line = JSON.parse(value!)
          read.push(line)
          if (line.index >= joinedAt + 100) return
        }
      })(), WAIT_MS, 'result lines past the point the stream was opened')
      const status = await json(`/v1/jobs/${id}`)
      expect(status.body.state).toBe('running')
      expect(status.body.running).toBe(true)
      expect(status.body.progress.done).toBeLessThan(total)
      expect(read.map(l => l.index)).toEqual([...Array(read.length).keys()])
      for (const l of read) expect(l.outputs.find((t: { name: string }) => t.name === 'sum').data).toEqual([l.index + 2, 4])

      // A worker joining the network mid-job is an event.
      const third = await startPeer(cleanup, relayAddr, { wrapExecutor: valve.wrap })
      const joined = await until(events, e => e.event === 'worker-joined', 'a worker-joined event', seen)
      expect(joined.data).toEqual({ peerId: third.node.peerId.toString() })
      await until(events, e => e.event === ':', 'a keep-alive comment', seen)

      // At most MAX_STREAMS_PER_JOB (8) streams per job: two are open, six more fit, the ninth is refused.
      const extra = await Promise.all(Array.from({ length: 6 }, async () => await api(`/v1/jobs/${id}/events`)))
      expect(extra.map(r => r.status)).toEqual(new Array(6).fill(200))
      await expectError(api(`/v1/jobs/${id}/results`), 429, 'busy', /at most 8/)
      await Promise.all(extra.map(async r => { await r.body!.cancel() }))

      const cancelled = await json(`/v1/jobs/${id}`, { method: 'DELETE' })
      expect(cancelled.status).toBe(200)
      expect(cancelled.body).toMatchObject({ id, state: 'cancelled', error: 'cancelled', running: false })
      const end = await until(events, e => e.event === 'end', 'the end event', seen)
      expect(end.data).toMatchObject({ state: 'cancelled', error: 'cancelled' })
      expect(seen.filter(e => e.event === 'progress').length).toBeGreaterThan(1)
      // The results stream finishes: every task has its line, decided or "cancelled".
      for await (const value of { [Symbol.asyncIterator]: () => results }) read.push(JSON.parse(value))
      expect(read).toHaveLength(total)
      expect(read.map(l => l.index)).toEqual([...Array(total).keys()])
      expect(read.at(-1)).toEqual({ index: total - 1, error: 'cancelled' })
      await expectError(api(`/v1/jobs/${id}`, { method: 'DELETE' }), 409, 'conflict')
    } finally {
      valve.open()
    }
  })

  it('reads the text of a sample page (POST /v1/ocr)', async () => {
    const samples = JSON.parse(await readFile(join(SAMPLES, 'ocr/samples.json'), 'utf8')) as Array<{ file: string, lines: string[] }>
    const note = samples.find(s => s.file === 'note.png')!
    const png = await readFile(join(SAMPLES, 'ocr/note.png'))
    const { status, body } = await json('/v1/ocr', post({ images: [`data:image/png;base64,${png.toString('base64')}`] }))
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body.pages).toHaveLength(1)
    expect(body.pages[0].error).toBeUndefined()
    expect(body.pages[0].lines.map((l: { text: string }) => l.text)).toEqual(note.lines)
    expect(body.pages[0].text.split('\n')).toEqual(note.lines)
    expect(body.pages[0].lines[0].box).toHaveLength(4)
    expect(body.pages[0].lines[0].score).toBeGreaterThan(0.5)
  })

  it('answers 504 when a run or an OCR call outlasts timeout_ms, and 503 when no worker joins', async () => {
    await expectError(api('/v1/run', post({ model: 'digits', inputs: digitInputs(0), timeout_ms: 1 })), 504, 'cancelled', /within 1 ms/)
    // An OCR call is stopped too (its detection job is stopped, not left running).
    const png = await readFile(join(SAMPLES, 'ocr/note.png'))
    await expectError(api('/v1/ocr', post({ images: [png.toString('base64')], timeout_ms: 1 })), 504, 'cancelled', /within 1 ms/)
    // A network with no worker at all.
    const lonely = await startRelay(cleanup)
    const empty = await startGateway({ relays: lonely.addr, port: 0, dataDir: null, waitForWorkersMs: 200 })
    cleanup.add('empty gateway', async () => { await empty.close() })
    await expectError(api('/v1/run', { ...post({ model: 'digits', inputs: digitInputs(0) }), base: empty.url }), 503, 'no-workers')
    expect(await (await fetch(`${empty.url}/healthz`)).json()).toMatchObject({ ok: true, workers: 0 })
  })

  it('without a token answers only requests addressed to a loopback name (DNS rebinding)', async () => {
    const open = await startGateway({ relays: relayAddr, port: 0, dataDir: null })
    cleanup.add('open gateway', async () => { await open.close() })
    const port = new URL(open.url).port
    expect((await fetch(`${open.url}/v1/models`, { headers: { authorization: '' } })).status).toBe(200)
    const refused = await new Promise<string>((resolve, reject) => {
      const socket = tcpConnect(Number(port), '127.0.0.1', () => { socket.write(`GET /v1/models HTTP/1.1\r\nHost: evil.example:${port}\r\nConnection: close\r\n\r\n`) })
      let text = ''
      socket.on('data', (d) => { text += d.toString() })
      socket.on('end', () => { resolve(text) })
      socket.on('error', reject)
    })
    expect(refused).toMatch(/^HTTP\/1\.1 403 /)
    expect(JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4)).error.code).toBe('unauthenticated')
    await expect(startGateway({ relays: relayAddr, host: '0.0.0.0', port: 0 })).rejects.toThrow(/needs a token/)
  })

  it('resumes a job when the gateway restarts mid-job on the same data directory, and keeps its results', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'p2p-gw-restart-'))
    const first = await startGateway({ relays: relayAddr, port: 0, token: TOKEN, dataDir, progressMs: 100 })
    let firstClosed = false
    cleanup.add('first gateway', async () => { if (!firstClosed) await first.close() })
    await first.requester.waitForWorkers(2, { timeoutMs: WAIT_MS })
    const total = 1500
    const id = await startJob(Array.from({ length: total }, (_, i) => digitInputs(i)), 'model=digits&argmax=probs', first.url)
    const events = sseEvents(await api(`/v1/jobs/${id}/events`, { base: first.url }))
    // From 150 results on, the workers start no task until the valve opens: the job cannot end
    // before the gateway's close lands, however fast the machine.
    try {
      await until(events, e => e.event === 'progress' && e.data.done >= 150, '150 results before the restart')
      valve.close()
      await first.close()
      firstClosed = true
      const stopped = await until(events, e => e.event === 'end', 'the end event as the gateway closes')
      expect(stopped.data.state).not.toBe('done')
      expect(stopped.data.progress.done).toBeLessThan(total)
    } finally {
      valve.open()
    }

    const second = await startGateway({ relays: relayAddr, port: 0, token: TOKEN, dataDir, progressMs: 100 })
    cleanup.add('second gateway', async () => { await second.close() })
    expect(second.resumed).toBe(1)
    const end = await until(sseEvents(await api(`/v1/jobs/${id}/events`, { base: second.url })), e => e.event === 'end', 'the resumed job\'s end')
    expect(end.data).toMatchObject({ id, state: 'done', progress: { total, done: total, failed: 0 } })
    let count = 0
    let right = 0
    for await (const line of bodyLines(await api(`/v1/jobs/${id}/results`, { base: second.url }))) {
      const l = JSON.parse(line)
      expect(l.index).toBe(count++)
      const probs = l.outputs.find((t: { name: string }) => t.name === 'probs').data as number[]
      if (probs.indexOf(Math.max(...probs)) === digits[l.index % digits.length]!.label) right++
    }
    expect(count).toBe(total)
    expect(right / total).toBeGreaterThan(0.9)
  })

  it('npm run gateway refuses a public address without a token, prints its URL, and stops cleanly on SIGTERM', async () => {
    const refused = await runGatewayCli(['--relay', relayAddr, '--host', '0.0.0.0'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/--host 0\.0\.0\.0 is not a loopback address.*--token-file/)

    const dir = await mkdtemp(join(tmpdir(), 'p2p-gw-cli-'))
    await writeFile(join(dir, 'token'), `${TOKEN}\n`)
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/gateway/main.ts', '--relay', relayAddr, '--port', '0', '--token-file', join(dir, 'token'), '--data', join(dir, 'data')], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>(resolve => { child.once('close', resolve) })
    cleanup.add('gateway process', () => { if (child.exitCode == null) child.kill('SIGKILL') })
    const url = await withTimeout(new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve)
      void exited.then(code => { reject(new Error(`the gateway exited (${code}) before printing its URL`)) })
    }), WAIT_MS, 'the gateway\'s URL on stdout')
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    expect((await fetch(`${url}/v1/workers`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
    // A task makes it start its spot-check inference process (and tsx may run helpers): whatever it
    // started must be gone once it has exited.
    const run = await fetch(`${url}/v1/run`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'digits', inputs: { input: { dims: [1, 1, 28, 28], data: Array.from(digits[0]!.pixels) } }, spotCheck: 1 }) })
    expect(run.status).toBe(200)
    const children = await childrenOf(child.pid!)
    expect(children.length).toBeGreaterThan(0)
    child.kill('SIGTERM')
    expect(await withTimeout(exited, WAIT_MS, 'the gateway to exit after SIGTERM')).toBe(0)
    await withTimeout(allGone(children), WAIT_MS, () => `the gateway's child processes ${children.join(', ')} to end`)
  })
})

let addMul: string | undefined
/** The add-mul sample model's sha256, uploaded once. */
async function addMulSha (): Promise<string> {
  if (addMul != null) return addMul
  const res = await json('/v1/models', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: await readFile(join(SAMPLES, 'models/add-mul.onnx')) })
  addMul = res.body.sha256 as string
  return addMul
}

/** Pids whose parent is `pid` (Linux /proc). */
/** Resolves once none of `pids` is a live process (gone, or a zombie waiting to be reaped). */
async function allGone (pids: number[]): Promise<void> {
  const alive = async (pid: number): Promise<boolean> => {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  }
  while ((await Promise.all(pids.map(alive))).some(Boolean)) await new Promise(resolve => setTimeout(resolve, 50))
}

async function childrenOf (pid: number): Promise<number[]> {
  const found: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // The command name may hold spaces and parentheses: the ppid is the second field after its closing one.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (ppid === pid) found.push(Number(entry))
  }
  return found
}

async function runGatewayCli (args: string[]): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/gateway/main.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d) => { stderr += d.toString() })
  const code = await withTimeout(new Promise<number | null>(resolve => { child.once('close', resolve) }), WAIT_MS, 'the gateway command to exit')
  return { code, stderr }
}

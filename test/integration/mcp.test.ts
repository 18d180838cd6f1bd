/**
 * The MCP server (`npm run mcp`, src/mcp/main.ts) driven by the official SDK's own client over
 * stdio, against a real relay and two onnxruntime-node workers: its tools and their schemas, a
 * model run (built-in and by path), OCR of a sample page, a batch from start to results, bad
 * calls answered as tool errors with the library's codes, stdout holding protocol messages only,
 * and the process ending cleanly when its client goes (stdin closed) or on SIGTERM, also when
 * started the way the README says (`npm --prefix <repo> run -s mcp`).
 */
import '../../src/node/polyfill.js'
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, truncate, writeFile } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { MAX_FILE_INPUTS, MAX_INLINE_INPUTS, MAX_PAGE_CHARS, MAX_RUNNING_BATCHES, MAX_TENSOR_VALUES } from '../../src/mcp/limits.js'
import { Cleanup, REPO_ROOT, TaskValve, heldOutDigits, startPeer, startRelay, withTimeout, WAIT_MS } from './helpers.js'
import type { ChildProcess } from 'node:child_process'
import type { Readable } from 'node:stream'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'

const SAMPLES_DIR = fileURLToPath(new URL('../../public/samples/ocr/', import.meta.url))
const ADD_MUL = 'public/samples/models/add-mul.onnx'
const MAIN = ['--import', 'tsx', 'src/mcp/main.ts']
const TOOLS = ['cancel_job', 'get_results', 'job_status', 'list_models', 'list_workers', 'read_text_from_images', 'run_model', 'start_batch']
/** OCR through the network on a loaded 2-core machine takes seconds to tens of seconds a page. */
const SLOW_CALL = { timeout: 180_000 }

const cleanup = new Cleanup()
const digits = heldOutDigits()
let relayAddr: string
let client: Client
let serverLog: Lines
/** On both workers: lets the cancel test hold its batches' tasks back. */
const valve = new TaskValve()

const digitInputs = (i: number): { input: { dims: number[], data: number[] } } => ({ input: { dims: [1, 1, 28, 28], data: Array.from(digits[i % digits.length]!.pixels) } })
const argmax = (values: unknown[]): number => { const v = values.map(Number); return v.indexOf(Math.max(...v)) }

/** A child's output as lines, kept for failure messages, with a wait for lines to appear. */
class Lines {
  readonly lines: string[] = []
  private readonly waiters = new Set<() => void>()

  constructor (stream: NodeJS.ReadableStream) {
    createInterface({ input: stream }).on('line', (line) => {
      this.lines.push(line)
      for (const w of this.waiters) w()
    })
  }

  async waitFor (predicate: (lines: string[]) => boolean, what: string, ms = WAIT_MS): Promise<void> {
    let check!: () => void
    const seen = new Promise<void>(resolve => {
      check = () => { if (predicate(this.lines)) resolve() }
      this.waiters.add(check)
      check()
    })
    try {
      await withTimeout(seen, ms, () => `${what}; the server said:\n${this.lines.join('\n')}`)
    } finally {
      this.waiters.delete(check)
    }
  }
}

async function call (name: string, args: Record<string, unknown> = {}, options = {}, on = client): Promise<CallToolResult & { structuredContent: Record<string, any> }> {
  try {
    return await on.callTool({ name, arguments: args }, undefined, options) as CallToolResult & { structuredContent: Record<string, any> }
  } catch (err) {
    // A timed-out request says nothing of why: the server's log does.
    throw new Error(`${name}: ${(err as Error).message}; the server said:\n${serverLog.lines.slice(-60).join('\n')}`, { cause: err })
  }
}

const text = (r: CallToolResult): string => (r.content[0] as { text: string }).text

/** Writes `lines` as a JSONL file in a fresh directory. */
async function jsonl (lines: readonly unknown[]): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'p2p-mcp-inputs-')), 'inputs.jsonl')
  await writeFile(file, lines.map(l => JSON.stringify(l)).join('\n') + '\n')
  return file
}

/** A PNG signature and a valid header chunk saying width × height, and no pixels. */
function pngHeader (width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const out = Buffer.alloc(8 + data.length + 4)
    out.writeUInt32BE(data.length, 0)
    body.copy(out, 4)
    out.writeUInt32BE(crc32(body), 8 + data.length)
    return out
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr.set([8, 6, 0, 0, 0], 8) // 8-bit RGBA
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IEND', Buffer.alloc(0))])
}

/** Calls a tool that must succeed, failing with its error text otherwise. */
async function ok (name: string, args: Record<string, unknown> = {}, options = {}, on = client): Promise<Record<string, any>> {
  const r = await call(name, args, options, on)
  expect(r.isError, `${name}: ${text(r)}`).toBeFalsy()
  return r.structuredContent
}

/** Spawns the server as an MCP client would, without the SDK: the raw stdout and the exit. */
function spawnServer (args: string[]): { child: ChildProcess, out: Lines, exited: Promise<{ code: number | null, signal: string | null }>, log: Lines } {
  const child = spawn(process.execPath, [...MAIN, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  const exited = new Promise<{ code: number | null, signal: string | null }>(resolve => { child.on('exit', (code, signal) => { resolve({ code, signal }) }) })
  cleanup.add('raw mcp server', () => { if (child.exitCode == null && child.signalCode == null) child.kill('SIGKILL') })
  return { child, out: new Lines(child.stdout!), exited, log: new Lines(child.stderr!) }
}

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })

/** Starts the server with the SDK's client transport (as an MCP client application does) and connects to it. */
async function startClient (command: string, args: string[], cwd = REPO_ROOT): Promise<{ client: Client, log: Lines }> {
  const transport = new StdioClientTransport({ command, args, cwd, stderr: 'pipe' })
  const log = new Lines(transport.stderr as Readable)
  const c = new Client({ name: 'mcp-test', version: '1.0.0' })
  await c.connect(transport)
  cleanup.add('mcp client', async () => { await c.close() })
  return { client: c, log }
}

const workersJoined = (n: number) => (lines: string[]): boolean => lines.filter(l => l.includes('worker joined')).length >= n

beforeAll(async () => {
  relayAddr = (await startRelay(cleanup)).addr
  await startPeer(cleanup, relayAddr, { queue: { slots: 2 }, wrapExecutor: valve.wrap })
  await startPeer(cleanup, relayAddr, { queue: { slots: 2 }, wrapExecutor: valve.wrap })
  const dataDir = await mkdtemp(join(tmpdir(), 'p2p-mcp-'));
  ({ client, log: serverLog } = await startClient(process.execPath, [...MAIN, '--relay', relayAddr, '--data', dataDir]))
  await serverLog.waitFor(workersJoined(2), 'two workers joined')
})

afterAll(async () => { await cleanup.run() })

describe('MCP server over stdio', () => {
  it('lists every tool with a typed input schema, and the workers and relays it hears', async () => {
    const { tools } = await client.listTools()
    expect(tools.map(t => t.name).sort()).toEqual(TOOLS)
    for (const t of tools) {
      expect(t.inputSchema.type, t.name).toBe('object')
      expect(t.description!.length, t.name).toBeGreaterThan(80)
    }
    const run = tools.find(t => t.name === 'run_model')!.inputSchema as { required: string[], properties: Record<string, { maximum?: number }> }
    expect(run.required.sort()).toEqual(['inputs', 'model'])
    expect(run.properties.replicas!.maximum).toBe(3)
    const batch = tools.find(t => t.name === 'start_batch')!.inputSchema as { properties: Record<string, { anyOf?: Array<{ type: string, maxItems?: number }> }> }
    expect(batch.properties.inputs!.anyOf!.map(s => s.type).sort()).toEqual(['array', 'string'])
    expect(batch.properties.inputs!.anyOf!.find(s => s.type === 'array')!.maxItems).toBe(MAX_INLINE_INPUTS)

    const listed = await ok('list_workers')
    expect(listed.workers.filter((w: { paused: boolean }) => !w.paused)).toHaveLength(2)
    expect(listed.relays).toEqual([expect.objectContaining({ addr: relayAddr, state: 'ready' })])
  })

  it('runs the digit model on a held-out digit: the right class, agreed by a worker', async () => {
    const r = await call('run_model', { model: 'digits', inputs: digitInputs(0) })
    expect(r.isError, text(r)).toBeFalsy()
    const probs = r.structuredContent.outputs.find((o: { name: string }) => o.name === 'probs')
    expect(probs.dims).toEqual([1, 10])
    expect(argmax(probs.data)).toBe(digits[0]!.label)
    expect(r.structuredContent.agreed_by).toHaveLength(1)
    expect(text(r)).toMatch(new RegExp(`^digits: agreed by 1 worker\\(s\\) in \\d+ ms\\n[^]*probs float32 \\[1, 10\\]: .*argmax ${digits[0]!.label}`))
    console.log(`run_model digits: ${r.structuredContent.time_ms} ms inside the server`)
  })

  it('runs your own model given by path, with replicas, then by its sha256', async () => {
    const inputs = JSON.parse(await readFile(join(REPO_ROOT, 'public/samples/models/add-mul.inputs.json'), 'utf8')) as Record<string, unknown>
    const out = await ok('run_model', { model: ADD_MUL, inputs, replicas: 2 })
    expect(out.outputs.find((o: { name: string }) => o.name === 'sum')).toMatchObject({ dims: [2, 3], data: [1.5, 0, 13, 4.25, 5, 5] })
    expect(out.outputs.find((o: { name: string }) => o.name === 'product')).toMatchObject({ data: [0.5, -4, 30, 1, 0, -6] })
    expect(new Set(out.agreed_by).size).toBe(2)
    const { models } = await ok('list_models')
    expect(models.map((m: { name: string }) => m.name)).toEqual(expect.arrayContaining(['digits', 'ocr-det', 'ocr-rec', 'add-mul.onnx']))
    const again = await ok('run_model', { model: out.model.sha256, inputs: { a: [[1]], b: [[2]] } })
    expect(again.outputs.find((o: { name: string }) => o.name === 'sum').data).toEqual([3])
  })

  it('reads the text of a sample page, with a box for every line', async () => {
    const samples = JSON.parse(await readFile(SAMPLES_DIR + 'samples.json', 'utf8')) as Array<{ file: string, lines: string[] }>
    const page = samples.find(s => s.file === 'document.png')!
    const progress: number[] = []
    const r = await call('read_text_from_images', { paths: [SAMPLES_DIR + page.file] }, { ...SLOW_CALL, onprogress: (p: { progress: number }) => { progress.push(p.progress) } })
    expect(r.isError, text(r)).toBeFalsy()
    // Progress notifications (the client asked for them), rising. The server sends the last one
    // before its answer, but the SDK's client may handle the answer first and drop what follows.
    expect(progress.length).toBeGreaterThan(1)
    expect(progress).toEqual([...progress].sort((a, b) => a - b))
    expect(progress.at(-1)).toBeGreaterThanOrEqual(50)
    const [result] = r.structuredContent.pages
    expect(result.text.split('\n')).toEqual(page.lines)
    expect(result.lines.length).toBeGreaterThanOrEqual(page.lines.length)
    for (const line of result.lines) expect(line.box).toHaveLength(4)
    expect(text(r)).toBe(`# ${SAMPLES_DIR + page.file}\n${page.lines.join('\n')}`)
  })

  it('runs a batch: start_batch, job_status waiting for the end, get_results page by page in input order', async () => {
    const n = 30
    const started = await ok('start_batch', { model: 'digits', inputs: Array.from({ length: n }, (_, i) => digitInputs(i)), replicas: 2 })
    expect(started.total).toBe(n)
    let status = await ok('job_status', { job_id: started.job_id })
    expect(status.total).toBe(n)
    while (status.state !== 'done' && status.state !== 'failed') status = await ok('job_status', { job_id: started.job_id, wait_seconds: 50 }, { timeout: 60_000 })
    expect(status).toMatchObject({ state: 'done', done: n, failed: 0, running: false })

    const first = await ok('get_results', { job_id: started.job_id, limit: 20 })
    expect(first).toMatchObject({ next_offset: 20, complete: false, total: n })
    const rest = await ok('get_results', { job_id: started.job_id, offset: first.next_offset, limit: 100 })
    expect(rest).toMatchObject({ next_offset: n, complete: true })
    const results = [...first.results, ...rest.results] as Array<{ index: number, outputs: Array<{ name: string, data: unknown[] }>, agreed_by: string[] }>
    expect(results.map(r => r.index)).toEqual([...Array(n).keys()])
    let right = 0
    for (const r of results) {
      expect(new Set(r.agreed_by).size).toBe(2)
      if (argmax(r.outputs.find(o => o.name === 'probs')!.data) === digits[r.index]!.label) right++
    }
    expect(right / n).toBeGreaterThan(0.9)
  })

  it('runs a batch from a JSONL file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-mcp-inputs-'))
    const file = join(dir, 'inputs.jsonl')
    await writeFile(file, [1, 2, 3].map(i => JSON.stringify({ a: [[i]], b: [[10]] })).join('\n') + '\n\n')
    const started = await ok('start_batch', { model: ADD_MUL, inputs: file })
    expect(started.total).toBe(3)
    let status = await ok('job_status', { job_id: started.job_id, wait_seconds: 50 }, { timeout: 60_000 })
    while (status.running === true) status = await ok('job_status', { job_id: started.job_id, wait_seconds: 50 }, { timeout: 60_000 })
    expect(status.state).toBe('done')
    const page = await ok('get_results', { job_id: started.job_id })
    expect(page.results.map((r: { outputs: Array<{ name: string, data: number[] }> }) => r.outputs.find(o => o.name === 'sum')!.data[0])).toEqual([11, 12, 13])
    expect(page.complete).toBe(true)
  })

  it('answers bad calls with tool errors that start with their code, and keeps serving', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-mcp-bad-'))
    const notPng = join(dir, 'page.png')
    await writeFile(notPng, 'not an image')
    const cases: Array<[string, Record<string, unknown>, string, RegExp?]> = [
      ['run_model', { model: 'no-such-model', inputs: {} }, 'unknown-model', /unknown model "no-such-model"/],
      ['run_model', { model: 'digits', inputs: { input: { dims: [1, 1, 28, 27], data: new Array(28 * 27).fill(0) } } }, 'bad-input', /axis 3 must be 28/],
      ['run_model', { model: 'digits', inputs: { nope: [1] } }, 'bad-input'],
      ['run_model', { model: 'digits', inputs: digitInputs(0), replicas: 7 }, 'bad-request', /replicas/],
      ['run_model', { inputs: digitInputs(0) }, 'bad-request', /model/],
      ['run_model', { model: 'digits', inputs: digitInputs(0), extra: 1 }, 'bad-request', /extra/],
      ['job_status', { job_id: 'no-such-job' }, 'unknown-job'],
      ['get_results', { job_id: 'no-such-job' }, 'unknown-job'],
      ['get_results', { job_id: 'x', limit: 1000 }, 'bad-request', /limit/],
      ['start_batch', { model: 'digits', inputs: [digitInputs(0), { input: [[1, 2]] }] }, 'bad-input', /^bad-input: input 1: /],
      ['start_batch', { model: 'digits', inputs: join(dir, 'missing.jsonl') }, 'bad-input', /ENOENT/],
      ['start_batch', { model: 'digits', inputs: Array.from({ length: MAX_INLINE_INPUTS + 1 }, () => ({})) }, 'bad-request', /inputs/],
      ['read_text_from_images', { paths: [notPng] }, 'bad-image', /not a PNG/],
      ['read_text_from_images', { paths: [join(dir, 'missing.png')] }, 'bad-image', /ENOENT/]
    ]
    for (const [name, args, code, message] of cases) {
      const r = await call(name, args)
      const what = `${name} ${JSON.stringify(args).slice(0, 80)}`
      expect(r.isError, what).toBe(true)
      expect(text(r), what).toMatch(new RegExp(`^${code}: `))
      if (message != null) expect(text(r), what).toMatch(message)
      expect(text(r), what).not.toMatch(/\n\s+at /)
      expect(r.structuredContent, what).toEqual({ code, message: text(r).slice(code.length + 2) })
    }
    // A tool that does not exist is a protocol error, as MCP says.
    await expect(client.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toThrow(/no_such_tool not found/)
    // Still serving.
    expect((await ok('list_workers')).workers.length).toBe(2)
  })

  it('bounds what an agent can make it read or send back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-mcp-bounds-'))
    // A PNG whose header says 20,000 × 20,000 (1.6 GB once decoded): refused from its header.
    await writeFile(join(dir, 'huge.png'), pngHeader(20_000, 20_000))
    const huge = await call('read_text_from_images', { paths: [join(dir, 'huge.png')] })
    expect(text(huge)).toMatch(/^too-large: .*20000×20000 pixels/)
    // Files bigger than a model may be, or than a batch's inputs may be (sparse: nothing is written), refused from their size.
    await writeFile(join(dir, 'big.onnx'), '')
    await truncate(join(dir, 'big.onnx'), 3 * 1024 ** 3)
    expect(text(await call('run_model', { model: join(dir, 'big.onnx'), inputs: {} }))).toMatch(/^too-large: big\.onnx: 3221225472 bytes/)
    await writeFile(join(dir, 'big.jsonl'), '')
    await truncate(join(dir, 'big.jsonl'), 300 * 1024 * 1024)
    expect(text(await call('start_batch', { model: ADD_MUL, inputs: join(dir, 'big.jsonl') }))).toMatch(/^too-large: .*300\.0 MiB/)
    // One line too many.
    const many = await jsonl(Array.from({ length: MAX_FILE_INPUTS + 1 }, () => ({ a: [[1]], b: [[2]] })))
    expect(text(await call('start_batch', { model: ADD_MUL, inputs: many }))).toMatch(new RegExp(`^too-large: .*more than ${MAX_FILE_INPUTS} inputs`))
    // An output with more values than MAX_TENSOR_VALUES comes back summarised.
    const n = MAX_TENSOR_VALUES + 5
    const out = await ok('run_model', { model: ADD_MUL, inputs: { a: { dims: [1, n], data: Array.from({ length: n }, (_, i) => i) }, b: { dims: [1, n], data: new Array(n).fill(1) } } })
    expect(out.outputs.find((o: { name: string }) => o.name === 'sum')).toEqual({ name: 'sum', dtype: 'float32', dims: [1, n], truncated: true, count: n, first: Array.from({ length: 20 }, (_, i) => i + 1), min: 1, max: n, argmax: n - 1 })
  })

  it('pages results by count and by size', async () => {
    // Outputs of 9,000 values (two of them, ~90 KB of JSON a result): a page stops near MAX_PAGE_CHARS.
    const n = 9000
    const inputs = Array.from({ length: 20 }, (_, i) => ({ a: { dims: [1, n], data: new Array(n).fill(i) }, b: { dims: [1, n], data: new Array(n).fill(0.5) } }))
    const started = await ok('start_batch', { model: ADD_MUL, inputs })
    await ok('job_status', { job_id: started.job_id, wait_seconds: 50 }, { timeout: 60_000 })
    const page = await ok('get_results', { job_id: started.job_id, limit: 100 })
    expect(page.results.length).toBeGreaterThan(1)
    expect(page.results.length).toBeLessThan(20)
    expect(page.next_offset).toBe(page.results.length)
    expect(JSON.stringify(page.results).length).toBeLessThanOrEqual(MAX_PAGE_CHARS)
    let offset = page.next_offset
    for (let p = page; !p.complete; offset = p.next_offset) p = await ok('get_results', { job_id: started.job_id, offset, limit: 100 })
    expect(offset).toBe(20)
  })

  it('says in job_status why a batch cannot progress (replicas 3 with two workers) until it is cancelled', async () => {
    const { job_id: id } = await ok('start_batch', { model: ADD_MUL, inputs: [{ a: [[1]], b: [[2]] }], replicas: 3 })
    // The job's first check runs once it has started: ask until it answers (each call is a round trip, never a sleep).
    const status = await withTimeout((async () => {
      for (;;) {
        const s = await ok('job_status', { job_id: id })
        if (s.blocked != null) return s
      }
    })(), WAIT_MS, 'job_status with blocked')
    expect(status).toMatchObject({ running: true, blocked: { code: 'too-few-workers', message: 'needs 3 different workers, 2 available' } })
    expect(status.blocked.since_ms).toBeLessThanOrEqual(Date.now())
    expect(await ok('cancel_job', { job_id: id })).toMatchObject({ state: 'cancelled' })
  })

  it(`runs at most ${MAX_RUNNING_BATCHES} batches at once; cancel_job stops one for good`, async () => {
    const file = await jsonl(Array.from({ length: 5000 }, (_, i) => ({ a: [[i]], b: [[1]] })))
    const ids: string[] = []
    // The workers start 200 of the batches' tasks, then none until the valve opens: every batch is
    // surely still running when it is cancelled, however fast the machine.
    valve.close(200)
    try {
      for (let i = 0; i < MAX_RUNNING_BATCHES; i++) ids.push((await ok('start_batch', { model: ADD_MUL, inputs: file })).job_id)
      const refused = await call('start_batch', { model: ADD_MUL, inputs: file })
      expect(text(refused)).toMatch(new RegExp(`^busy: ${MAX_RUNNING_BATCHES} batches are running`))
      for (const id of ids) expect(await ok('cancel_job', { job_id: id })).toEqual({ job_id: id, state: 'cancelled', error: 'cancelled' })
    } finally {
      valve.open()
    }
    expect(text(await call('cancel_job', { job_id: ids[0] }))).toMatch(/^conflict: /)
    // What was decided before stays; the rest failed with the job.
    const page = await ok('get_results', { job_id: ids[0], limit: 100 })
    expect(page.results).toHaveLength(100)
    for (const r of page.results) expect(r.outputs != null || r.error === 'cancelled').toBe(true)
    // Room again.
    await ok('start_batch', { model: ADD_MUL, inputs: [{ a: [[1]], b: [[1]] }] })
  })

  it('continues a batch from an earlier session when asked about it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'p2p-mcp-resume-'))
    const total = 3000
    const file = await jsonl(Array.from({ length: total }, (_, i) => ({ a: [[i]], b: [[2]] })))
    const first = await startClient(process.execPath, [...MAIN, '--relay', relayAddr, '--data', dataDir])
    const started = await ok('start_batch', { model: ADD_MUL, inputs: file }, {}, first.client)
    await first.client.close()
    await first.log.waitFor(lines => lines.some(l => l.includes('stdin closed: closing')), 'the first server closing')

    const second = await startClient(process.execPath, [...MAIN, '--relay', relayAddr, '--data', dataDir])
    const status = async (wait: number): Promise<Record<string, any>> => await ok('job_status', { job_id: started.job_id, wait_seconds: wait }, { timeout: 60_000 }, second.client)
    let s = await status(0)
    expect(s.running).toBe(true)
    while (s.running === true) s = await status(50)
    expect(s).toMatchObject({ state: 'done', done: total, failed: 0 })
    const page = await ok('get_results', { job_id: started.job_id, offset: total - 2 }, {}, second.client)
    expect(page.complete).toBe(true)
    expect(page.results.map((r: { outputs: Array<{ name: string, data: number[] }> }) => r.outputs.find(o => o.name === 'product')!.data[0])).toEqual([(total - 2) * 2, (total - 1) * 2])
  })
})

describe('MCP server process', () => {
  it('writes only protocol messages on stdout, skips a line that is not one, and exits 0 when its stdin closes', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'p2p-mcp-raw-'))
    const server = spawnServer(['--relay', relayAddr, '--data', dataDir])
    // A line that is no JSON-RPC message is skipped; the session goes on.
    server.child.stdin!.write('this is not JSON\n' + INITIALIZE + '\n')
    await server.out.waitFor(lines => lines.length > 0, 'the answer to initialize')
    server.child.stdin!.end()
    expect(await withTimeout(server.exited, WAIT_MS, () => `the exit; it said:\n${server.log.lines.join('\n')}`)).toEqual({ code: 0, signal: null })
    // The answer to initialize and nothing else: the start-up and close logs went to stderr.
    expect(server.out.lines).toHaveLength(1)
    expect(JSON.parse(server.out.lines[0]!)).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'p2p-ai-agents' } } })
    expect(server.log.lines.join('\n')).toMatch(/protocol: [^]*stdin closed: closing/)
  })

  it('sends what anything else prints to stdout to stderr, so only protocol messages reach stdout', async () => {
    const script = "const { protocolOut } = await import('./src/mcp/protocol-stdout.ts'); console.log('a log line'); process.stdout.write('a write\\n'); protocolOut.write('{\"jsonrpc\":\"2.0\"}\\n')"
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT })
    expect(stdout).toBe('{"jsonrpc":"2.0"}\n')
    expect(stderr).toContain('a log line\na write\n')
  })

  it('exits 0 on SIGTERM', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'p2p-mcp-term-'))
    const server = spawnServer(['--relay', relayAddr, '--data', dataDir])
    await server.log.waitFor(lines => lines.some(l => l.includes('ready')), 'the server ready')
    server.child.kill('SIGTERM')
    expect(await withTimeout(server.exited, WAIT_MS, 'the exit')).toEqual({ code: 0, signal: null })
    expect(server.log.lines.join('\n')).toMatch(/SIGTERM: closing/)
  })

  it('refuses bad arguments with status 2 and the usage', async () => {
    const server = spawnServer(['--data', await mkdtemp(join(tmpdir(), 'p2p-mcp-args-'))])
    expect(await withTimeout(server.exited, WAIT_MS, 'the exit')).toEqual({ code: 2, signal: null })
    expect(server.log.lines.join('\n')).toMatch(/--relay is required[^]*usage: npm run -s mcp/)
    expect(server.out.lines).toEqual([])
  })

  it('works as the README starts it: npm --prefix <repo> run -s mcp, from another directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'p2p-mcp-npm-'))
    const { client: npmClient, log } = await startClient('npm', ['--prefix', REPO_ROOT, 'run', '-s', 'mcp', '--', '--relay', relayAddr, '--data', join(dir, 'data')], dir)
    const { tools } = await npmClient.listTools()
    expect(tools.map(t => t.name).sort()).toEqual(TOOLS)
    const closed = new Promise<void>(resolve => { npmClient.onclose = resolve })
    await npmClient.close()
    await withTimeout(closed, WAIT_MS, 'the npm process to end')
    expect(log.lines.join('\n')).toMatch(/stdin closed: closing/)
  })
})

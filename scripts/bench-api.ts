/**
 * `npm run bench:api`: the HTTP gateway against the library, in one run, on the same workers
 * (issue 10). A real relay, 4 worker processes (src/node/worker.ts), a library requester in this
 * process and the gateway as its own process (`npm run gateway`), each with its own job store:
 *
 *  - batch throughput: a 10,000-task digit batch as a persisted job through the library
 *    (submit + results()) and through the HTTP API (POST /v1/jobs with the inputs as JSON, then
 *    GET /v1/jobs/:id/results read as NDJSON until the last line), alternated, --rounds times;
 *    tasks/s of each (median and spread) and the ratio of the medians. Also map() (no store) once
 *    per round, for reference.
 *  - single-task latency: run() against POST /v1/run, alternated, --runs times each; p50/p95 and
 *    what the HTTP hop adds.
 * Both sides use the defaults (replicas 1, spot checks 5 %). Options: --tasks N (10000),
 * --rounds N (3), --runs N (200), --workers N (4), --out FILE.
 */
import '../src/node/polyfill.js'
import { spawn } from 'node:child_process'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startRelayNode } from '../relay/relay-node.js'
import { connect } from '../src/index.js'
import { loadDigitDataset } from '../src/node/datasets.js'
import { fmt, summarize } from './stats.js'
import type { ChildProcess } from 'node:child_process'
import type { Requester } from '../src/index.js'

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
const WORKER_ENTRY = fileURLToPath(new URL('../src/node/worker.ts', import.meta.url))
const GATEWAY_ENTRY = fileURLToPath(new URL('../src/gateway/main.ts', import.meta.url))

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '200' },
    workers: { type: 'string', default: '4' },
    out: { type: 'string', default: `bench-results/bench-api-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})
const TASKS = Number(values.tasks)
const ROUNDS = Number(values.rounds)
const RUNS = Number(values.runs)
const WORKERS = Number(values.workers)
const command = `npm run bench:api -- --tasks ${TASKS} --rounds ${ROUNDS} --runs ${RUNS} --workers ${WORKERS}`
const log = (label: string, text: string): void => { console.log(`${label.padEnd(34)} ${text}`) }

const children: ChildProcess[] = []
const dirs: string[] = []
let requester: Requester | undefined
let relayStop: (() => Promise<void>) | undefined

async function teardown (): Promise<void> {
  await requester?.close().catch(() => {})
  for (const child of children) if (child.exitCode == null && child.signalCode == null) child.kill('SIGTERM')
  await Promise.all(children.map(async c => { await exitOf(c) }))
  await relayStop?.().catch(() => {})
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { teardown().finally(() => process.exit(130)) })
}

async function exitOf (child: ChildProcess): Promise<void> {
  if (child.exitCode != null || child.signalCode != null) return
  await new Promise(resolve => child.once('close', resolve))
}

/** Spawns `node --import tsx <entry> args` and resolves with the first stdout line matching `pattern`. */
async function spawnUntil (entry: string, args: string[], pattern: RegExp, what: string): Promise<RegExpMatchArray> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  createInterface({ input: child.stderr! }).on('line', line => { if (/error|fail/i.test(line)) console.error(`  ${what}: ${line}`) })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`bench: ${what} did not start within 60 s`)) }, 60_000)
    createInterface({ input: child.stdout! }).on('line', line => {
      const m = line.match(pattern)
      if (m != null) { clearTimeout(timer); resolve(m) }
    })
    child.once('close', () => { clearTimeout(timer); reject(new Error(`bench: ${what} exited before starting`)) })
  })
}

async function tmp (name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `p2p-bench-api-${name}-`))
  dirs.push(dir)
  return dir
}

async function main (): Promise<void> {
  console.log(`P2P AI Agents API bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`)
  console.log(command)
  const relay = await startRelayNode({ host: '127.0.0.1', port: 0, inboundConnectionThreshold: 1000 })
  relayStop = async () => { await relay.node.stop() }
  const relayAddr = relay.node.getMultiaddrs().find(a => a.toString().startsWith('/ip4/127.0.0.1/'))!.toString()
  await Promise.all(Array.from({ length: WORKERS }, async () => await spawnUntil(WORKER_ENTRY, ['--relay', relayAddr], /^worker (\S+) joined /, 'a worker')))
  const gatewayUrl = (await spawnUntil(GATEWAY_ENTRY, ['--relay', relayAddr, '--port', '0', '--data', await tmp('gateway')], /(http:\/\/127\.0\.0\.1:\d+)/, 'the gateway'))[1]!
  requester = await connect({ relays: relayAddr, dataDir: await tmp('library') })
  await requester.waitForWorkers(WORKERS, { timeoutMs: 60_000 })
  await waitForGatewayWorkers(gatewayUrl, WORKERS)

  const dataset = await loadDigitDataset('mnist-test')
  const inputs = Array.from({ length: TASKS }, (_, i) => ({ input: { dims: [1, 1, 28, 28], data: Array.from(dataset.pixels(i % dataset.count)) } }))
  const body = JSON.stringify({ model: 'digits', inputs })
  log('batch', `${TASKS} digit tasks, ${WORKERS} worker processes; HTTP body ${(body.length / 2 ** 20).toFixed(1)} MiB of JSON`)

  // Warm-up on both sides: sessions, JIT, direct connections.
  await librarySubmit(requester, inputs.slice(0, 500))
  await httpJob(gatewayUrl, JSON.stringify({ model: 'digits', inputs: inputs.slice(0, 500) }), 500)

  const lib: number[] = []
  const http: number[] = []
  const mapped: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const a = await librarySubmit(requester, inputs)
    const b = await httpJob(gatewayUrl, body, TASKS)
    const c = await libraryMap(requester, inputs)
    lib.push(a)
    http.push(b)
    mapped.push(c)
    log(`round ${round + 1}`, `library ${a.toFixed(0)} tasks/s, HTTP ${b.toFixed(0)} tasks/s, map() ${c.toFixed(0)} tasks/s`)
  }
  const sLib = summarize(lib)
  const sHttp = summarize(http)
  const sMap = summarize(mapped)
  const ratio = sHttp.p50 / sLib.p50
  log('library submit (tasks/s)', fmt(sLib, 'tasks/s', 0))
  log('HTTP /v1/jobs (tasks/s)', fmt(sHttp, 'tasks/s', 0))
  log('library map() (tasks/s)', fmt(sMap, 'tasks/s', 0))
  log('HTTP ÷ library', `${ratio.toFixed(3)} (aim ≥ 0.9)`)

  const one = { input: inputs[0]!.input }
  const oneBody = JSON.stringify({ model: 'digits', inputs: one })
  for (let i = 0; i < 20; i++) { await requester.run('digits', one); await httpRun(gatewayUrl, oneBody) }
  const runMs: number[] = []
  const postMs: number[] = []
  for (let i = 0; i < RUNS; i++) {
    let t0 = performance.now()
    await requester.run('digits', one)
    runMs.push(performance.now() - t0)
    t0 = performance.now()
    await httpRun(gatewayUrl, oneBody)
    postMs.push(performance.now() - t0)
  }
  const sRun = summarize(runMs)
  const sPost = summarize(postMs)
  log('run() latency', fmt(sRun))
  log('POST /v1/run latency', fmt(sPost))
  log('added by HTTP (p50, p95)', `${(sPost.p50 - sRun.p50).toFixed(2)} ms, ${(sPost.p95 - sRun.p95).toFixed(2)} ms`)

  await mkdir('bench-results', { recursive: true })
  await writeFile(values.out!, JSON.stringify({
    command,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memGiB: totalmem() / 2 ** 30, node: process.version },
    batch: { tasks: TASKS, workers: WORKERS, bodyBytes: body.length, library: sLib, http: sHttp, map: sMap, ratio },
    latency: { runs: RUNS, run: sRun, post: sPost, addedP50Ms: sPost.p50 - sRun.p50, addedP95Ms: sPost.p95 - sRun.p95 }
  }, null, 2))
  console.log(`\nwrote ${values.out!}`)
}

async function waitForGatewayWorkers (url: string, n: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${url}/v1/workers`)
    const workers = await res.json() as { workers?: unknown[] } | unknown[]
    const list = Array.isArray(workers) ? workers : workers.workers ?? []
    if (list.length >= n) return
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`bench: the gateway saw fewer than ${n} workers in 60 s`)
}

/** tasks/s of a persisted job through the library, its results read in order to the last one. */
async function librarySubmit (net: Requester, inputs: unknown[]): Promise<number> {
  const t0 = performance.now()
  const job = await net.submit('digits', inputs as Array<Record<string, unknown>>)
  let n = 0
  for await (const out of job.results()) if (out.outputs != null) n++
  if (n !== inputs.length) throw new Error(`bench: library job got ${n}/${inputs.length} results`)
  return inputs.length / ((performance.now() - t0) / 1000)
}

async function libraryMap (net: Requester, inputs: unknown[]): Promise<number> {
  const t0 = performance.now()
  let n = 0
  for await (const out of net.map('digits', inputs as Array<Record<string, unknown>>)) if (out.outputs != null) n++
  if (n !== inputs.length) throw new Error(`bench: map got ${n}/${inputs.length} results`)
  return inputs.length / ((performance.now() - t0) / 1000)
}

/** tasks/s through the HTTP API: the POST with every input, then the NDJSON results to the last line. */
async function httpJob (url: string, body: string, count: number): Promise<number> {
  const t0 = performance.now()
  const res = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  if (!res.ok) throw new Error(`bench: POST /v1/jobs ${res.status}: ${await res.text()}`)
  const { id } = await res.json() as { id: string }
  const results = await fetch(`${url}/v1/jobs/${id}/results`)
  if (!results.ok || results.body == null) throw new Error(`bench: GET results ${results.status}`)
  let lines = 0
  const decoder = new TextDecoder()
  let tail = ''
  const reader = results.body.getReader()
  for (let r = await reader.read(); r.done !== true; r = await reader.read()) {
    const chunk = r.value
    const text = tail + decoder.decode(chunk, { stream: true })
    const parts = text.split('\n')
    tail = parts.pop()!
    for (const line of parts) if (line !== '' && !line.includes('"error"')) lines++
  }
  if (lines !== count) throw new Error(`bench: HTTP job got ${lines}/${count} results`)
  return count / ((performance.now() - t0) / 1000)
}

async function httpRun (url: string, body: string): Promise<void> {
  const res = await fetch(`${url}/v1/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  if (!res.ok) throw new Error(`bench: POST /v1/run ${res.status}: ${await res.text()}`)
  await res.arrayBuffer()
}

try {
  await main()
} finally {
  await teardown()
}
// node-datachannel's native threads keep the loop alive after every peer has stopped.
process.exit(0)

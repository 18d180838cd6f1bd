/**
 * Batch-job figures for `npm run bench` (issue #3); also runs alone:
 *   node --import tsx scripts/bench-batch.ts [--tasks 10000] [--rounds 3] [--kills 3] [--tab-workers 0] [--out FILE]
 * With P2P_BENCH_CPU_PROF=<dir> the worker processes write CPU profiles there (node --cpu-prof).
 *
 *  - throughput: one requester → 4 worker processes (src/node/worker.ts), digit tasks, replicas 1,
 *    over the real relay and direct WebRTC, with the JobRunner and a FileJobStore exactly as
 *    `npm run submit` runs them; batching on and off, each its own network kept up, in rounds that
 *    alternate between the two (median and min–max over rounds); then the same to `--tab-workers`
 *    worker tabs of the built app (P2P_APP_DIR honoured), each variant on an app server of its own,
 *    `?batch=1` for off;
 *  - scheduler scaling: scripts/sim-scheduler.ts `simulate` with N = 8, 32, 64 one-slot peers;
 *  - lost-worker detection: a worker process SIGKILLed mid-job → the requester re-queues its tasks;
 *  - verification overhead: `liarSimulation`, adaptive policy, 10 % of the peers lying.
 */
import '../src/node/polyfill.js'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { peerIdFromString } from '@libp2p/peer-id'
import { startRelayNode } from '../relay/relay-node.js'
import { connectionKind } from '../src/net/connection-kind.js'
import { startNodePeer } from '../src/node/node-peer.js'
import { openTab } from '../src/node/page-driver.js'
import { startAppServer } from '../src/node/app-server.js'
import { launchChromium } from '../src/node/chromium.js'
import { loadDigitDataset } from '../src/node/datasets.js'
import { FileJobStore } from '../src/node/file-job-store.js'
import { JobRunner } from '../src/net/job-runner.js'
import { MemoryJobStore } from '../src/core/job-store.js'
import { Reputation } from '../src/core/reputation.js'
import { argmaxComparator } from '../src/core/compare.js'
import { builtinModel, modelRef } from '../src/models/catalog.js'
import { digitJobSource } from '../src/models/digit-job.js'
import { DIGITS_OUTPUT_PROBS } from '../src/models/digits.js'
import { liarSimulation, simulate } from './sim-scheduler.js'
import { fmt, summarize, within } from './stats.js'
import type { ChildProcess } from 'node:child_process'
import type { RelayNode } from '../relay/relay-node.js'
import type { NodePeer, NodePeerOptions } from '../src/node/node-peer.js'
import type { JobMeta, JobStore } from '../src/core/job-store.js'
import type { JobSource } from '../src/core/job-store.js'
import type { DigitDataset } from '../src/models/datasets.js'
import type { Summary } from './stats.js'
import type { Browser } from 'playwright-core'
import type { TabHandle } from '../src/node/page-driver.js'

const WORKER_ENTRY = fileURLToPath(new URL('../src/node/worker.ts', import.meta.url))
const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
const DIGITS = builtinModel('digits')
const SHA = modelRef(DIGITS).sha256

export interface BatchBenchOptions {
  /** Tasks per throughput run (default 10,000: the whole MNIST test set). */
  tasks?: number
  /** Worker processes killed for the detection figure (default 3). */
  kills?: number
  /** Throughput rounds per variant (default 3; 0 skips the throughput sections). */
  rounds?: number
  /** Worker tabs for the tab throughput section, which runs only with `tabs` (default 2). */
  tabCount?: number
  tabs?: TabsContext
  log?: (label: string, text: string) => void
}

type Log = (label: string, text: string) => void
const defaultLog: Log = (label, text) => { console.log(`${label.padEnd(34)} ${text}`) }

// ---------------------------------------------------------------- plumbing

interface Net {
  relay: RelayNode
  addr: string
  requester: NodePeer
  stops: Array<() => Promise<unknown>>
}

async function startNet (client?: NodePeerOptions['client']): Promise<Net> {
  // All peers dial from 127.0.0.1: lift the relay's 5-connections-a-second-per-address limit.
  const relay = await startRelayNode({ host: '127.0.0.1', port: 0, inboundConnectionThreshold: 1000 })
  const addr = relay.node.getMultiaddrs().find(a => a.toString().startsWith('/ip4/127.0.0.1/'))!.toString()
  const requester = await startNodePeer({ relays: [addr], work: false, client })
  return { relay, addr, requester, stops: [async () => { await requester.stop() }] }
}

async function stopNet (net: Net): Promise<void> {
  for (const stop of net.stops.splice(0).reverse()) await stop().catch(() => {})
  await Promise.resolve().then(async () => { await net.relay.node.stop() }).catch(() => {})
}

async function startWorkers (net: Net, count: number, slots: number): Promise<string[]> {
  const workers = await Promise.all(Array.from({ length: count }, async () => await startNodePeer({ relays: [net.addr], queue: { slots } })))
  for (const w of workers) net.stops.push(async () => { await w.stop() })
  return workers.map(w => w.node.peerId.toString())
}

interface WorkerProcess { peerId: string, child: ChildProcess, exited: Promise<unknown> }

/** Spawns src/node/worker.ts processes; resolves with their peer ids once each printed its joined line. */
async function spawnWorkers (net: Net, count: number, args: string[]): Promise<WorkerProcess[]> {
  // One after another: four tsx start-ups at once on a busy 2-core box starve the relay they dial.
  const started: WorkerProcess[] = []
  for (let i = 0; i < count; i++) started.push(await spawnWorker(net, args))
  return started
}

/** One worker process, resolved once it printed its joined line. */
async function spawnWorker (net: Net, args: string[]): Promise<WorkerProcess> {
  const profile = process.env.P2P_BENCH_CPU_PROF != null ? ['--cpu-prof', `--cpu-prof-dir=${process.env.P2P_BENCH_CPU_PROF}`] : []
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', WORKER_ENTRY, '--relay', net.addr, ...args], {
    cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise(resolve => child.once('close', resolve))
  net.stops.push(async () => {
    if (child.exitCode == null && child.signalCode == null) child.kill('SIGTERM')
    await within(exited, 5000, 'a worker process to exit').catch(() => { child.kill('SIGKILL') })
  })
  const lines = createInterface({ input: child.stdout! }) // keeps draining the pipe (two lines per task unless --quiet)
  createInterface({ input: child.stderr! }).on('line', line => { console.error(`  worker: ${line}`) })
  const peerId = await within(new Promise<string>((resolve, reject) => {
    lines.on('line', line => { const m = line.match(/^worker (\S+) joined /); if (m != null) resolve(m[1]) })
    void exited.then(() => { reject(new Error('a worker process exited before joining')) })
  }), 120_000, 'a worker process to join')
  return { peerId, child, exited }
}

/** Resolves once the requester holds a ready digits advert from every peer in `ids`; returns their total credits. */
async function waitForWorkers (requester: NodePeer, ids: string[]): Promise<void> {
  const table = requester.discovery.table
  const ready = (): boolean => ids.every(id => {
    const a = table.get(id)?.advert
    return a != null && a.worker && !a.paused && a.models.includes(SHA)
  })
  let onAdvert!: () => void
  try {
    await within(new Promise<void>(resolve => {
      onAdvert = () => { if (ready()) resolve() }
      table.addEventListener('advert', onAdvert)
      onAdvert()
    }), 90_000, () => `adverts from ${ids.length} workers (missing: ${ids.filter(id => table.get(id) == null).map(id => {
      const conns = requester.node.getConnections(peerIdFromString(id)).map(c => `${connectionKind(c)} ${c.status}`)
      return `${id} [${conns.join(', ') || 'no connection'}]`
    }).join('; ')}; the requester holds ${table.size} advert(s) and relay(s) ${requester.relays.ready.join(', ') || 'none'})`)
  } finally {
    table.removeEventListener('advert', onAdvert)
  }
}

/** Tasks the workers take at once now, from their adverts: read after the warm-up, once quick workers offer a batch's worth queued. */
function creditsOf (requester: NodePeer, ids: string[]): number {
  return ids.reduce((sum, id) => sum + (requester.discovery.table.get(id)?.advert.slots ?? 0), 0)
}

function newMeta (dataset: DigitDataset, taskCount: number): JobMeta {
  const now = Date.now()
  return {
    jobId: randomUUID(), modelId: DIGITS.id, model: modelRef(DIGITS), datasetId: dataset.id,
    taskCount, replicas: 1, adaptive: false, state: 'queued', createdAt: now, updatedAt: now
  }
}

async function newRunner (net: Pick<Net, 'requester'>, store: JobStore, meta: JobMeta, source: JobSource): Promise<JobRunner> {
  await store.putJob(meta)
  return new JobRunner({
    meta, source, tasks: net.requester.tasks, adverts: net.requester.discovery.table, store,
    compare: argmaxComparator(DIGITS_OUTPUT_PROBS), reputation: new Reputation()
  })
}

// ---------------------------------------------------------------- 1. throughput

/** One throughput variant: a network kept up across rounds, its workers started once. */
export interface Variant {
  label: string
  /** Runs one job of `tasks` tasks on this variant's network; resolves with its figures. */
  round(tasks: number): Promise<Round>
  stop(): Promise<void>
}

export interface Round { tasks: number, seconds: number, tasksPerSec: number, cpuMsPerTask: number, state: string }

export interface VariantFigures {
  label: string
  credits: number
  rounds: Round[]
  tasksPerSec: Summary
  cpuMsPerTask: Summary
}

/**
 * Runs `rounds` rounds over `variants`, each round every variant once, the order alternating
 * between rounds so neither side always runs on the warmer (or quieter) machine; medians and
 * min–max spread per variant.
 */
export async function interleaved (variants: Array<Variant & { credits: number }>, tasks: number, rounds: number, log: Log): Promise<VariantFigures[]> {
  const per = variants.map(() => [] as Round[])
  for (let r = 0; r < rounds; r++) {
    const order = variants.map((_v, i) => i)
    if (r % 2 === 1) order.reverse()
    for (const i of order) {
      const round = await variants[i].round(tasks)
      per[i].push(round)
      log(`  round ${r + 1}/${rounds}, ${variants[i].label}`, `${round.tasksPerSec.toFixed(0)} tasks/s (${round.tasks} tasks in ${round.seconds.toFixed(2)} s; ${round.cpuMsPerTask.toFixed(3)} ms CPU/task in the requester's process; ${round.state})`)
    }
  }
  return variants.map((v, i) => ({
    label: v.label,
    credits: v.credits,
    rounds: per[i],
    tasksPerSec: summarize(per[i].map(x => x.tasksPerSec)),
    cpuMsPerTask: summarize(per[i].map(x => x.cpuMsPerTask))
  }))
}

/** A JobRunner job on `net`'s requester, timed, with this process's CPU per task. */
async function timedJob (net: Pick<Net, 'requester'>, store: JobStore, dataset: DigitDataset, tasks: number): Promise<Round> {
  const runner = await newRunner(net, store, newMeta(dataset, tasks), digitJobSource(dataset))
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const final = await within(runner.run(), 300_000, `the ${tasks}-task job`)
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return { tasks, seconds, tasksPerSec: tasks / seconds, cpuMsPerTask: (cpu.user + cpu.system) / 1000 / tasks, state: final.state }
}

/**
 * A network of its own (relay, requester) with `count` worker processes (src/node/worker.ts, each
 * with its inference child process) started with `args`, warmed up with one 500-task job.
 */
export async function processVariant (label: string, dataset: DigitDataset, count: number, args: string[]): Promise<Variant & { credits: number }> {
  const net = await startNet()
  const dir = await mkdtemp(join(tmpdir(), 'p2p-bench-batch-'))
  const stop = async (): Promise<void> => {
    await stopNet(net)
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const ids = (await spawnWorkers(net, count, args)).map(w => w.peerId)
    await waitForWorkers(net.requester, ids)
    const store = new FileJobStore(dir)
    // Warm-up: inference sessions, JIT, direct connections and task streams.
    await timedJob(net, store, dataset, 500)
    return { label, credits: creditsOf(net.requester, ids), round: async (tasks) => await timedJob(net, store, dataset, tasks), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** The worker arguments that turn batching on (the worker's default) or off; per-task lines off (see worker.ts --quiet). */
export const BATCHING = { on: ['--quiet'], off: ['--quiet', '--batch', '1'] }

/** Where worker tabs run: this browser (each variant serves the built app from a relay of its own). */
export interface TabsContext { browser: Browser }

/**
 * `count` worker tabs of the built app (`?batch=1` turns their batching off) and a Node requester,
 * on an app server (relay) of the variant's own, warmed up with one 500-task job; all of it lives
 * until stop(). Its own relay keeps variants apart: a requester uses every worker it hears
 * advertise, so on a shared relay each variant's jobs would run on the other's tabs too.
 */
export async function tabVariant (label: string, tabs: TabsContext, dataset: DigitDataset, count: number, batch: 'on' | 'off'): Promise<Variant & { credits: number }> {
  const server = await startAppServer()
  const context = await tabs.browser.newContext()
  const dir = await mkdtemp(join(tmpdir(), 'p2p-bench-tabs-'))
  let requester: NodePeer | undefined
  const stop = async (): Promise<void> => {
    await requester?.stop().catch(() => {})
    await context.close().catch(() => {})
    await server.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const url = batch === 'off' ? `${server.url}${server.url.includes('?') ? '&' : '?'}batch=1` : server.url
    const workers: TabHandle[] = []
    for (let i = 0; i < count; i++) workers.push(await openTab(context, url, 90_000))
    requester = await startNodePeer({ relays: [server.relayAddr], work: false })
    const net = { requester }
    const ids = workers.map(w => w.peerId)
    await waitForWorkers(requester, ids)
    const store = new FileJobStore(dir)
    await timedJob(net, store, dataset, 500)
    return { label, credits: creditsOf(requester, ids), round: async (n) => await timedJob(net, store, dataset, n), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Prints one variant's summary line. */
export function logVariant (log: Log, what: string, f: VariantFigures): void {
  log(what, `${fmt(f.tasksPerSec, 'tasks/s', 0)}; ${f.credits} credits in flight; requester process ${f.cpuMsPerTask.p50.toFixed(3)} ms CPU/task (p50)`)
}

// ---------------------------------------------------------------- 3. lost-worker detection

interface Detection { ms: number, via: 'peer-gone failure' | 'no-peer failure' | 'advert gone', inFlightAtKill: number }

/**
 * Worker processes join a long job next to 2 in-process workers; each in turn is SIGKILLed while
 * the requester has tasks in flight on it, timed until the requester re-queues them: the first
 * 'peer-gone'/'no-peer' failure of a task sent to it (JobRunner.dispatch → removeWorker), or its
 * advert going away (connection closed → JobRunner removeWorker), whichever comes first.
 */
async function detection (dataset: DigitDataset, kills: number): Promise<Detection[]> {
  const net = await startNet() // the requester's default heartbeats, as `npm run submit` uses
  try {
    const local = await startWorkers(net, 2, 1)
    const doomed = await spawnWorkers(net, kills, ['--slots', '1'])
    await waitForWorkers(net.requester, [...local, ...doomed.map(d => d.peerId)])

    const inFlight = new Map<string, number>()
    let onLost: (peerId: string, via: Detection['via']) => void = () => {}
    const tasks = net.requester.tasks
    const run = tasks.run.bind(tasks)
    tasks.run = async (peer, request, options) => {
      const id = peer.toString()
      inFlight.set(id, (inFlight.get(id) ?? 0) + 1)
      try {
        return await run(peer, request, options)
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code === 'peer-gone' || code === 'no-peer') onLost(id, `${code} failure`)
        throw err
      } finally {
        inFlight.set(id, inFlight.get(id)! - 1)
      }
    }
    net.requester.discovery.table.addEventListener('gone', (evt) => { onLost((evt as CustomEvent<{ peerId: string }>).detail.peerId, 'advert gone') })

    // Long enough never to finish: tasks cycle over the dataset; the job is stopped at the end.
    const digits = digitJobSource(dataset)
    const source: JobSource = { task: (i) => digits.task(i % dataset.count) }
    const runner = await newRunner(net, new MemoryJobStore(), newMeta(dataset, 10_000_000), source)
    const running = runner.run()
    const results: Detection[] = []
    try {
      for (const d of doomed) {
        // Mid-job: it has done some work and has tasks in flight right now.
        await within(new Promise<void>(resolve => {
          const check = (): void => {
            if ((runner.progress.perPeer[d.peerId] ?? 0) >= 50 && (inFlight.get(d.peerId) ?? 0) > 0) {
              runner.removeEventListener('progress', check)
              resolve()
            }
          }
          runner.addEventListener('progress', check)
        }), 60_000, `worker process ${d.peerId} to be busy`)
        const detected = new Promise<Detection['via']>(resolve => {
          onLost = (peerId, via) => { if (peerId === d.peerId) resolve(via) }
        })
        const inFlightAtKill = inFlight.get(d.peerId) ?? 0
        const t0 = performance.now()
        d.child.kill('SIGKILL')
        const via = await within(detected, 60_000, `the requester to notice killed worker ${d.peerId}`)
        results.push({ ms: performance.now() - t0, via, inFlightAtKill })
        onLost = () => {}
      }
    } finally {
      await runner.stop()
      await running
    }
    return results
  } finally {
    await stopNet(net)
  }
}

// ---------------------------------------------------------------- all of it

export async function benchBatch (options: BatchBenchOptions = {}): Promise<Record<string, unknown>> {
  const log = options.log ?? defaultLog
  const tasks = options.tasks ?? 10_000
  const kills = options.kills ?? 3
  const rounds = options.rounds ?? 3
  const tabCount = options.tabCount ?? 2
  const dataset = await loadDigitDataset('mnist-test')
  const out: Record<string, unknown> = { tasks, rounds, kills }

  // 1. Throughput: 4 worker processes, H2's batching on and off, interleaved rounds.
  if (rounds > 0) {
    log('throughput, 4 worker processes', `${tasks} digit tasks per round, ${rounds} rounds, batching on/off alternated (src/node/worker.ts ${BATCHING.off.join(' ')} for off)`)
    const variants: Array<Variant & { credits: number }> = []
    try {
      variants.push(await processVariant('batching on', dataset, 4, BATCHING.on))
      variants.push(await processVariant('batching off', dataset, 4, BATCHING.off))
      const figures = await interleaved(variants, tasks, rounds, log)
      for (const f of figures) logVariant(log, `throughput, 4 worker processes, ${f.label}`, f)
      out.throughput = figures
    } finally {
      for (const v of variants) await v.stop()
    }
  }

  // 1b. The same from one requester to worker tabs (needs the built app and a browser).
  if (rounds > 0 && options.tabs != null && tabCount > 0) {
    log(`throughput, ${tabCount} worker tabs`, `${tasks} digit tasks per round from a Node requester, ${rounds} rounds, batching on/off alternated (?batch=1 for off)`)
    const variants: Array<Variant & { credits: number }> = []
    try {
      variants.push(await tabVariant('batching on', options.tabs, dataset, tabCount, 'on'))
      variants.push(await tabVariant('batching off', options.tabs, dataset, tabCount, 'off'))
      const figures = await interleaved(variants, tasks, rounds, log)
      for (const f of figures) logVariant(log, `throughput, ${tabCount} worker tabs, ${f.label}`, f)
      out.tabThroughput = figures
    } finally {
      for (const v of variants) await v.stop()
    }
  }

  // 2. Scheduler scaling (virtual clock).
  const scaling = [8, 32, 64].map(n => {
    const r = simulate({ workers: n, taskMs: 100, tasks: 10_000 })
    return { workers: n, taskMs: 100, tasks: 10_000, efficiency: r.efficiency, makespanMs: r.makespanMs, idealMs: r.idealMs, speculative: r.speculative }
  })
  for (const s of scaling) {
    log(`scheduler efficiency, N = ${s.workers}`, `${(s.efficiency * 100).toFixed(1)} % (10,000 fixed 100 ms tasks: makespan ${s.makespanMs.toFixed(0)} ms, ideal ${s.idealMs.toFixed(0)} ms)`)
  }
  out.scaling = scaling

  // 3. Lost-worker detection.
  if (kills > 0) {
    const detections = await detection(dataset, kills)
    const s: Summary = summarize(detections.map(d => d.ms))
    const via = detections.map(d => d.via)
    log('lost worker → tasks re-queued', `p50 ${(s.p50 / 1000).toFixed(2)} s, max ${(s.max / 1000).toFixed(2)} s over ${s.n} SIGKILLs (${detections.map(d => `${(d.ms / 1000).toFixed(2)} s via ${d.via}`).join('; ')})`)
    out.detection = { summaryMs: s, kills: detections, via }
  }

  // 4. Verification overhead, adaptive policy, 10 % liars among 32 peers.
  const verification = []
  for (const lieProbability of [1, 0.1]) {
    const reputation = new Reputation()
    for (const phase of ['cold', 'warm'] as const) {
      // 'warm': a second job keeps the reputation the first one earned (the requester stores it).
      const r = liarSimulation({ workers: 32, liarFraction: 0.1, tasks: 10_000, adaptive: true, lieProbability, reputation })
      verification.push({ lieProbability, phase, extraComputeFraction: r.extraComputeFraction, caughtFraction: r.caughtFraction, liesTold: r.liesTold, wrongDecisions: r.wrongDecisions, honestFlagged: r.honestFlagged, liars: r.liars })
      log(`verification, ${lieProbability === 1 ? 'liars always lie' : 'liars lie 10 %'}, ${phase}`, `extra compute ${(r.extraComputeFraction * 100).toFixed(1)} %, caught ${(r.caughtFraction * 100).toFixed(1)} % of ${r.liesTold} lies, ${r.wrongDecisions} wrong decision(s), ${r.honestFlagged} honest peer(s) flagged`)
    }
  }
  const fixed = liarSimulation({ workers: 32, liarFraction: 0.1, tasks: 10_000, adaptive: false, replicas: 2 })
  log('verification, fixed replicas 2', `extra compute ${(fixed.extraComputeFraction * 100).toFixed(1)} %, caught ${(fixed.caughtFraction * 100).toFixed(1)} % of ${fixed.liesTold} lies (for comparison)`)
  out.verification = { adaptive: verification, fixedReplicas2: { extraComputeFraction: fixed.extraComputeFraction, caughtFraction: fixed.caughtFraction, liesTold: fixed.liesTold } }
  return out
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      tasks: { type: 'string', default: '10000' },
      kills: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      'tab-workers': { type: 'string', default: '0' },
      out: { type: 'string', default: `bench-results/bench-batch-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
    }
  })
  const tabCount = Number(values['tab-workers'])
  const command = `${process.env.P2P_APP_DIR != null ? `P2P_APP_DIR=${process.env.P2P_APP_DIR} ` : ''}node --import tsx scripts/bench-batch.ts --tasks ${values.tasks} --rounds ${values.rounds} --kills ${values.kills} --tab-workers ${tabCount}`
  console.log(`P2P AI Agents batch bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}\n${command}\n`)
  // Worker tabs need the built app (dist/, or P2P_APP_DIR; each variant serves it) and a browser.
  const browser = tabCount > 0 ? await launchChromium() : undefined
  const stopAll = async (): Promise<void> => {
    await browser?.close().catch(() => {})
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { void stopAll().finally(() => process.exit(1)) })
  let batch: Record<string, unknown>
  try {
    batch = await benchBatch({
      tasks: Number(values.tasks),
      rounds: Number(values.rounds),
      kills: Number(values.kills),
      tabCount,
      tabs: browser != null ? { browser } : undefined
    })
  } finally {
    await stopAll()
  }
  await mkdir('bench-results', { recursive: true })
  await writeFile(values.out, JSON.stringify({ command, batch }, null, 2))
  console.log(`\nwrote ${values.out}`)
  process.exit(0)
}

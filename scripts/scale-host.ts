/**
 * A peer-host child process of `npm run bench:scale` (scripts/bench-scale.ts): runs many Node
 * peers (startNodePeer, in-memory model stores, one onnxruntime-node module for all of them) and
 * answers the orchestrator's requests over the IPC channel (scripts/scale-protocol.ts).
 *
 * Commands: init, start, stats, watch, seen, late, batch, stop. Exits when the parent goes away
 * (IPC disconnect, or the parent pid changing), like P2P_EXIT_WITH_PARENT=1 does for the relay.
 */
import '../src/node/polyfill.js'
import { randomUUID } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { startNodePeer } from '../src/node/node-peer.js'
import { MemoryModelStore } from '../src/core/model-store.js'
import { MemoryJobStore } from '../src/core/job-store.js'
import { JobRunner } from '../src/net/job-runner.js'
import { Reputation } from '../src/core/reputation.js'
import { argmaxComparator } from '../src/core/compare.js'
import { builtinModel, modelRef } from '../src/models/catalog.js'
import { digitJobSource, digitPredictions, summarizeDigits } from '../src/models/digit-job.js'
import { DIGITS_OUTPUT_PROBS } from '../src/models/digits.js'
import { DISCOVERY_TOPIC } from '../src/core/discovery/codec.js'
import { loadDigitDataset } from '../src/node/datasets.js'
import { summarize, within } from './stats.js'
import type { NodePeer } from '../src/node/node-peer.js'
import type { JobMeta, StoredResult } from '../src/core/job-store.js'
import type { AdvertEvent } from '../src/core/discovery/table.js'
import type { PacerOptions } from '../src/core/discovery/pacer.js'
import type { BatchResult, HostStats, LateResult, PeerReport, PeerSpec, Reply, Request, SeenTimes, StartedPeer } from './scale-protocol.js'

if (process.send == null) {
  console.error('scale-host: run me through scripts/bench-scale.ts (needs an IPC channel)')
  process.exit(2)
}

// ---------------------------------------------------------------- exit with the parent

const parentPid = process.ppid
process.on('disconnect', () => { process.exit(0) })
setInterval(() => { if (process.ppid !== parentPid) process.exit(0) }, 1000).unref()
process.on('SIGTERM', () => { process.exit(0) })
process.on('SIGINT', () => { process.exit(0) })
// A stray rejection deep in libp2p must not take 40 peers down with it; it is reported instead.
process.on('unhandledRejection', (err) => { console.error(`scale-host ${process.pid}: unhandled rejection: ${String((err as Error)?.stack ?? err).split('\n').slice(0, 3).join(' | ')}`) })

// ---------------------------------------------------------------- state

interface Hosted {
  spec: PeerSpec
  peer: NodePeer
  peerId: string
  maxHeld: number
  maxConns: number
  maxRelayConns: number
}

const TOPIC = DISCOVERY_TOPIC
const hosted: Hosted[] = []
/** Event-loop delay of this process: how long a peer here may wait before it runs (reset by 'stats'). */
const loopDelay = monitorEventLoopDelay({ resolution: 20 })
loopDelay.enable()
let relayAddrs: string[] = []
let relayIds = new Set<string>()
let pacer: PacerOptions | undefined
/** While set, every local peer's first sight of a peer it did not know is time-stamped. */
let watching = false
const seen = new Map<string, number[]>()
const seenPairs = new Set<string>()

function sample (h: Hosted): void {
  const conns = h.peer.node.getConnections()
  h.maxConns = Math.max(h.maxConns, conns.length)
  h.maxRelayConns = Math.max(h.maxRelayConns, conns.filter(c => relayIds.has(c.remotePeer.toString())).length)
  h.maxHeld = Math.max(h.maxHeld, h.peer.connections.held().length)
}
setInterval(() => { for (const h of hosted) sample(h) }, 1000).unref()

async function startOne (spec: PeerSpec, privateKey?: Awaited<ReturnType<typeof generateKeyPair>>, noWait = false): Promise<Hosted> {
  const peer = await startNodePeer({
    noWait,
    relays: spec.relays,
    privateKey,
    work: spec.work,
    threads: 1,
    // Hundreds of peers in one process: one onnxruntime for all rather than an inference process
    // each (the bench measures the network; the digit model it runs is trusted).
    inProcess: true,
    modelStore: new MemoryModelStore(),
    discovery: pacer == null ? undefined : { pacer },
    connections: spec.maxDirect == null ? undefined : { maxDirect: spec.maxDirect }
  })
  const h: Hosted = { spec, peer, peerId: peer.node.peerId.toString(), maxHeld: 0, maxConns: 0, maxRelayConns: 0 }
  const local = String(spec.index)
  peer.discovery.table.addEventListener('advert', (evt) => {
    if (!watching) return
    const { peerId, isNew } = (evt as CustomEvent<AdvertEvent>).detail
    if (!isNew) return
    const key = `${local}|${peerId}`
    if (seenPairs.has(key)) return
    seenPairs.add(key)
    const list = seen.get(peerId) ?? []
    list.push(Date.now())
    seen.set(peerId, list)
  })
  hosted.push(h)
  sample(h)
  return h
}

// ---------------------------------------------------------------- commands

/** Resolves once `peer` holds a reservation on one of its relays (its RelaySet keeps retrying meanwhile). */
async function joined (peer: NodePeer, ms: number): Promise<void> {
  if (peer.relays.ready.length > 0) return
  let onChange!: () => void
  try {
    await within(new Promise<void>(resolve => {
      onChange = () => { if (peer.relays.ready.length > 0) resolve() }
      peer.relays.addEventListener('change', onChange)
    }), ms, () => `a relay reservation (relays: ${peer.relays.views.map(v => `${v.state}${v.error != null ? ` (${v.error})` : ''}`).join(', ')})`)
  } finally {
    peer.relays.removeEventListener('change', onChange)
  }
}

/**
 * Starts base peers, `concurrency` at a time. Each is started with noWait and then waited for
 * (90 s): on a loaded machine a relay dial can outlast the RelaySet's 10 s timeout, and the set
 * retries it in the background rather than the whole peer failing.
 */
async function start (args: { peers: PeerSpec[], concurrency: number }): Promise<{ started: StartedPeer[], failed: string[] }> {
  const started: StartedPeer[] = []
  const failed: string[] = []
  const queue = [...args.peers]
  await Promise.all(Array.from({ length: Math.max(1, args.concurrency) }, async () => {
    for (let spec = queue.shift(); spec != null; spec = queue.shift()) {
      const t0 = performance.now()
      try {
        const h = await within(startOne(spec, undefined, true), 60_000, `peer ${spec.index} to start`)
        await joined(h.peer, 90_000)
        started.push({ index: spec.index, peerId: h.peerId, joinMs: performance.now() - t0 })
      } catch (err) {
        failed.push(`peer ${spec.index}: ${(err as Error).message}`)
      }
    }
  }))
  return { started, failed }
}

function report (h: Hosted): PeerReport {
  sample(h)
  const conns = h.peer.node.getConnections()
  const s = h.peer.connections.stats
  return {
    index: h.spec.index,
    role: h.spec.role,
    peerId: h.peerId,
    table: h.peer.discovery.table.size,
    discovery: { ...h.peer.discovery.stats },
    dials: s.dials,
    dialFailures: s.dialFailures,
    maxHeld: s.maxHeld,
    heldNow: h.peer.connections.held().length,
    maxHeldSampled: h.maxHeld,
    connsNow: conns.length,
    maxConnsSampled: h.maxConns,
    relayConnsNow: conns.filter(c => relayIds.has(c.remotePeer.toString())).length,
    maxRelayConnsSampled: h.maxRelayConns,
    relaysReady: h.peer.relays.ready.length,
    gossipSubscribers: h.peer.node.services.pubsub.getSubscribers(TOPIC).length
  }
}

function stats (): HostStats {
  const m = process.memoryUsage()
  const lag = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 }
  loopDelay.reset()
  return { pid: process.pid, peers: hosted.map(report), memory: { rss: m.rss, heapUsed: m.heapUsed, external: m.external }, loopDelayMs: lag }
}

/**
 * A worker started now on relays `relays` (indexes into the relay list): the time until its advert
 * is in the table of the observer peer of this process that holds relay `observerRelay` only.
 * Both ends are in this process: one clock.
 */
async function late (args: { index: number, relays: number[], observerRelay: number }): Promise<LateResult> {
  const observer = hosted.find(h => h.spec.role === 'observer' && h.spec.relays.length === 1 && h.spec.relays[0] === relayAddrs[args.observerRelay])
  if (observer == null) throw new Error(`no observer on relay ${args.observerRelay}`)
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key).toString()
  const table = observer.peer.discovery.table
  let onAdvert!: (evt: Event) => void
  const seenAt = new Promise<number>(resolve => {
    onAdvert = (evt) => { if ((evt as CustomEvent<AdvertEvent>).detail.peerId === id) resolve(Date.now()) }
    table.addEventListener('advert', onAdvert)
  })
  try {
    const t0 = Date.now()
    const worker = await within(startOne({ index: args.index, role: 'late', relays: args.relays.map(r => relayAddrs[r]), work: true }, key), 60_000, `late worker ${args.index} to join`)
    const joinMs = Date.now() - t0
    try {
      const at = await within(seenAt, 30_000, 'its advert')
      return { peerId: id, t0, joinMs, seenMs: at - t0, observerRelay: args.observerRelay, workerRelays: args.relays }
    } catch {
      return { peerId: id, t0, joinMs, seenMs: null, observerRelay: args.observerRelay, workerRelays: args.relays, diagnosis: diagnose(observer, worker) }
    }
  } finally {
    table.removeEventListener('advert', onAdvert)
  }
}


/** Why an advert did not arrive: both ends' relays, connections and gossipsub view. */
function diagnosePeer (h: Hosted): string {
  const ps = h.peer.node.services.pubsub
  const conns = h.peer.node.getConnections().map(c => `${relayIds.has(c.remotePeer.toString()) ? 'relay' : 'peer'} ${c.remotePeer.toString().slice(-4)} ${c.status}${c.limits != null ? ' limited' : ''}`)
  const mesh = (ps as unknown as { getMeshPeers?: (t: string) => string[] }).getMeshPeers?.(TOPIC) ?? []
  return `relays ready [${h.peer.relays.ready.map(id => id.slice(-4)).join(' ')}] (${h.peer.relays.views.map(v => `${v.peerId.slice(-4)} ${v.state}`).join(', ')}), conns [${conns.join(', ')}], ` +
    `gossip peers ${ps.getPeers().length}, subscribers ${ps.getSubscribers(TOPIC).length}, mesh [${mesh.map(id => id.slice(-4)).join(' ')}], ` +
    `table ${h.peer.discovery.table.size}, stats ${JSON.stringify(h.peer.discovery.stats)}`
}

function diagnose (observer: Hosted, worker: Hosted): string {
  return `observer: ${diagnosePeer(observer)}; worker: ${diagnosePeer(worker)}`
}

/** Every decision written once: counts writes per index. */
class CountingStore extends MemoryJobStore {
  readonly writes = new Map<number, number>()
  override async putResults (jobId: string, results: StoredResult[]): Promise<void> {
    for (const r of results) this.writes.set(r.index, (this.writes.get(r.index) ?? 0) + 1)
    await super.putResults(jobId, results)
  }
}

/** A digits batch (replicas 1) from this process's requester over whoever advertises. */
async function batch (args: { tasks: number, maxWorkers: number, timeoutMs: number }): Promise<BatchResult> {
  const req = hosted.find(h => h.spec.role === 'requester')
  if (req == null) throw new Error('no requester in this process')
  const requester = req.peer
  const dataset = await loadDigitDataset('mnist-test')
  const digits = builtinModel('digits')
  const n = args.tasks
  const now = Date.now()
  const meta: JobMeta = {
    jobId: randomUUID(), modelId: digits.id, model: modelRef(digits), datasetId: dataset.id,
    taskCount: n, replicas: 1, adaptive: false, state: 'queued', createdAt: now, updatedAt: now
  }
  // Every failed dispatch, by error code and message (first few kept).
  const failures = new Map<string, number>()
  const run = requester.tasks.run.bind(requester.tasks)
  requester.tasks.run = async (peer, request, options) => {
    try {
      return await run(peer, request, options)
    } catch (err) {
      const key = `${(err as { code?: string }).code ?? '?'}: ${String((err as Error).message).slice(0, 160)}`
      failures.set(key, (failures.get(key) ?? 0) + 1)
      throw err
    }
  }
  const store = new CountingStore()
  await store.putJob(meta)
  const source = digitJobSource(dataset)
  const runner = new JobRunner({
    meta,
    source: { task: (i) => source.task(i % dataset.count) },
    tasks: requester.tasks,
    adverts: requester.discovery.table,
    maxWorkers: args.maxWorkers,
    store,
    compare: argmaxComparator(DIGITS_OUTPUT_PROBS),
    reputation: new Reputation()
  })
  // The requester's connections, sampled often while the job runs.
  const sampler = setInterval(() => { sample(req) }, 100)
  const t00 = performance.now()
  const reporter = setInterval(() => {
    const p = runner.progress
    console.log(`batch +${((performance.now() - t00) / 1000).toFixed(0)} s: ${p.state}, ${p.done} done, ${p.inFlight} in flight, ${Object.keys(p.perPeer).length} workers so far, ${requester.connections.held().length} direct connections, ${failures.size === 0 ? 'no failures' : `failures: ${[...failures].map(([k, n]) => `${n} × ${k}`).join('; ').slice(0, 300)}`}`)
  }, 15_000)
  let tenth: number | undefined
  const onProgress = (): void => { if (tenth == null && runner.progress.done >= n / 10) tenth = performance.now() }
  runner.addEventListener('progress', onProgress)
  const t0 = performance.now()
  // Past the time limit the job is stopped (resumable, as a user would) and what was decided is reported.
  let timedOut = false
  const limit = setTimeout(() => {
    timedOut = true
    // A store that fails to save leaves nothing to report that the timeout does not already say.
    runner.stop().catch(() => {})
  }, args.timeoutMs)
  let final: JobMeta
  try {
    final = await runner.run()
  } finally {
    clearTimeout(limit)
    clearInterval(sampler)
    clearInterval(reporter)
    runner.removeEventListener('progress', onProgress)
  }
  const t1 = performance.now()
  sample(req)
  const results = await store.getResults(meta.jobId)
  const indexes = new Set(results.map(r => r.index))
  let missing = 0
  for (let i = 0; i < n; i++) if (!indexes.has(i)) missing++
  const decided = results.length
  const duplicates = [...store.writes.values()].filter(c => c !== 1).length
  const outOfRange = results.filter(r => r.index < 0 || r.index >= n).length
  const summary = summarizeDigits(digitPredictions(results.map(r => ({ ...r, index: r.index % dataset.count })), dataset))
  const s = requester.connections.stats
  const dialMs = s.dialTimes.length > 0 ? summarize(s.dialTimes) : undefined
  return {
    tasks: n,
    state: timedOut ? `stopped after ${(args.timeoutMs / 1000).toFixed(0)} s (${decided} of ${n} decided)` : final.state,
    error: final.error,
    seconds: (t1 - t0) / 1000,
    tasksPerSec: decided / ((t1 - t0) / 1000),
    steadyTasksPerSec: tenth == null ? 0 : (decided - Math.ceil(n / 10)) / ((t1 - tenth) / 1000),
    resultsCount: results.length,
    missing,
    duplicates,
    outOfRange,
    accuracy: summary.accuracy,
    perPeer: runner.progress.perPeer,
    maxWorkers: args.maxWorkers,
    maxDirect: requester.connections.maxDirect,
    failures: Object.fromEntries([...failures].sort((x, y) => y[1] - x[1]).slice(0, 8)),
    requester: {
      maxHeld: s.maxHeld,
      maxHeldSampled: req.maxHeld,
      maxConnsSampled: req.maxConns,
      maxRelayConnsSampled: req.maxRelayConns,
      dials: s.dials,
      dialFailures: s.dialFailures,
      dialMsP50: dialMs?.p50 ?? 0,
      dialMsP95: dialMs?.p95 ?? 0
    }
  }
}

async function stopAll (): Promise<{ stopped: number, failed: number }> {
  const results = await Promise.allSettled(hosted.map(async h => { await within(h.peer.stop(), 10_000, `peer ${h.spec.index} to stop`) }))
  return { stopped: results.filter(r => r.status === 'fulfilled').length, failed: results.filter(r => r.status === 'rejected').length }
}

async function handle (req: Request): Promise<unknown> {
  switch (req.cmd) {
    case 'init': {
      const a = req.args as { relays: string[], relayIds: string[], pacer?: PacerOptions }
      relayAddrs = a.relays
      relayIds = new Set(a.relayIds)
      pacer = a.pacer
      return null
    }
    case 'start': return await start(req.args as { peers: PeerSpec[], concurrency: number })
    case 'stats': return stats()
    case 'stopPeers': {
      const indexes = new Set((req.args as { indexes: number[] }).indexes)
      const gone = hosted.filter(h => indexes.has(h.spec.index))
      for (const h of gone) hosted.splice(hosted.indexOf(h), 1)
      await Promise.allSettled(gone.map(async h => { await within(h.peer.stop(), 10_000, `peer ${h.spec.index} to stop`) }))
      return gone.length
    }
    case 'tableIds': {
      const h = hosted.find(x => x.spec.index === (req.args as { index: number }).index)
      return h == null ? [] : [...h.peer.discovery.table.values()].map(e => e.peerId)
    }
    case 'diagnose': {
      const h = hosted.find(x => x.spec.index === (req.args as { index: number }).index)
      return h == null ? 'not here' : diagnosePeer(h)
    }
    case 'watch': watching = (req.args as { on: boolean }).on; return null
    case 'seen': {
      const out: SeenTimes = {}
      for (const id of (req.args as { ids: string[] }).ids) out[id] = seen.get(id) ?? []
      return out
    }
    case 'late': return await late(req.args as { index: number, relays: number[], observerRelay: number })
    case 'batch': return await batch(req.args as { tasks: number, maxWorkers: number, timeoutMs: number })
    case 'stop': {
      const r = await stopAll()
      setTimeout(() => { process.exit(0) }, 100)
      return r
    }
    default: throw new Error(`unknown command ${req.cmd}`)
  }
}

process.on('message', (msg: Request) => {
  handle(msg).then(
    (result) => { process.send!({ id: msg.id, ok: true, result } satisfies Reply) },
    (err: unknown) => { process.send!({ id: msg.id, ok: false, error: String((err as Error)?.message ?? err) } satisfies Reply) }
  )
})
process.send({ type: 'ready', pid: process.pid })

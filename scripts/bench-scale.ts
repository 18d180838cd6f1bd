/**
 * `npm run bench:scale`: the network at a few hundred peers, on one machine, over loopback.
 *
 *   node --import tsx scripts/bench-scale.ts [--peers 200] [--relays 3] [--workers 50] [--tasks 10000]
 *     [--processes 4] [--late 20] [--window 60] [--concurrency 1] [--step 25] [--batch-seconds 180]
 *     [--heartbeat-ms N] [--out FILE]
 *
 * Starts `--relays` relays as child processes (`relay/main.ts`, linked: relay 2.. bootstrap to relay
 * 1, and every relay's links are checked), then up to `--peers` Node peers (startNodePeer,
 * `work: true`, one slot, in-memory model stores) spread evenly over the relays (peer i holds relay
 * i mod R and the next one) and over `--processes` peer-host child processes
 * (scripts/scale-host.ts), `--step` at a time. After each step the network must still be healthy
 * (every peer joined and holds a relay, no host's event loop stalls past 1 s at p99, the machine
 * under 60 % busy with this bench and anything else running): the first step that is not is taken
 * back, the limit it hit is printed, and the run goes on with the largest network that fitted.
 * Plus one probe process holding an observer per relay (holding that relay only) and a requester.
 * Measures:
 *
 *  a. advert visibility: `--late` workers started after the network is up; startNodePeer() call →
 *     their advert in the table of an observer on a relay the worker does not hold (same process,
 *     one clock), and → in the table of every base peer (other processes, same machine clock);
 *  b. discovery traffic per peer over a steady window of `--window` s: advert bytes
 *     (discovery.stats published + received bytes) and all bytes on the wire (/proc/<pid>/io of
 *     the host processes: gossipsub with its control messages and duplicates, noise, yamux,
 *     identify, pings);
 *  c. relay memory (VmRSS) per attached peer: with no peers vs with every peer attached;
 *  d. the most connections any peer held (direct WebRTC, and all libp2p connections);
 *  e. a `--tasks` digit batch (replicas 1) from the requester with maxWorkers = maxDirect =
 *     `--workers`: every task decided exactly once, tasks/s, distinct workers, its connections.
 *
 * Prints measurements only (no assertions), writes JSON to bench-results/, exits 0, and stops
 * everything it started (also on SIGINT/SIGTERM; the children exit when this process dies).
 * Debugging: SCALE_RELAY_DEBUG=<libp2p debug namespaces> logs the relays to .tmp/scale-relay-N.log;
 * SCALE_HOST_PROF=<dir> writes a V8 CPU profile of each host process there.
 */
import { fork, spawn, execSync } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, freemem, totalmem, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { summarize, within } from './stats.js'
import type { ChildProcess } from 'node:child_process'
import type { Summary } from './stats.js'
import type { BatchResult, HostStats, LateResult, PeerReport, PeerSpec, ReadyMessage, Reply, SeenTimes, StartedPeer } from './scale-protocol.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const HOST_ENTRY = fileURLToPath(new URL('./scale-host.ts', import.meta.url))
const RELAY_ENTRY = fileURLToPath(new URL('../relay/main.ts', import.meta.url))

// ---------------------------------------------------------------- options

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '200' },
    relays: { type: 'string', default: '3' },
    workers: { type: 'string', default: '50' },
    tasks: { type: 'string', default: '10000' },
    processes: { type: 'string', default: '4' },
    late: { type: 'string', default: '20' },
    window: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '1' },
    step: { type: 'string', default: '25' },
    'batch-seconds': { type: 'string', default: '180' },
    'heartbeat-ms': { type: 'string' },
    out: { type: 'string', default: `bench-results/bench-scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})

function intFlag (name: string, value: string, min: number): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) {
    console.error(`bench:scale: --${name} must be an integer ≥ ${min}, got '${value}'`)
    process.exit(2)
  }
  return n
}

const PEERS = intFlag('peers', values.peers, 1)
const RELAYS = intFlag('relays', values.relays, 1)
const WORKERS = intFlag('workers', values.workers, 1)
const TASKS = intFlag('tasks', values.tasks, 0)
const PROCESSES = intFlag('processes', values.processes, 1)
const LATE = intFlag('late', values.late, 0)
const WINDOW_S = intFlag('window', values.window, 1)
const CONCURRENCY = intFlag('concurrency', values.concurrency, 1)
const STEP = intFlag('step', values.step, 1)
const BATCH_S = intFlag('batch-seconds', values['batch-seconds'], 1)
/** Pause after each step of joins before the network's health is checked. */
const SETTLE_MS = 8000
/** A host whose event loop stalls longer than this (p99) can no longer keep its peers' connections alive. */
const LAG_LIMIT_MS = 1000
/** Past this fraction of all cores busy (this bench and anything else), a bigger network would starve: stop growing. */
const BUSY_LIMIT = 0.6
const HEARTBEAT_MS = values['heartbeat-ms'] == null ? undefined : intFlag('heartbeat-ms', values['heartbeat-ms'], 1000)
const COMMAND = `npm run bench:scale -- --peers ${PEERS} --relays ${RELAYS} --workers ${WORKERS} --tasks ${TASKS} --processes ${PROCESSES} ` +
  `--late ${LATE} --window ${WINDOW_S} --concurrency ${CONCURRENCY} --step ${STEP} --batch-seconds ${BATCH_S}${HEARTBEAT_MS == null ? '' : ` --heartbeat-ms ${HEARTBEAT_MS}`}`

// ---------------------------------------------------------------- output

const T0 = performance.now()
const results: Record<string, unknown> = {}

function elapsed (): string {
  return `${((performance.now() - T0) / 1000).toFixed(0).padStart(4)} s`
}

function progress (text: string): void {
  console.log(`[${elapsed()}] ${text}`)
}

function figure (label: string, text: string): void {
  console.log(`  ${label.padEnd(46)} ${text}`)
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(2)} KB`
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`

function fmtS (s: Summary, unit: string, digits = 0): string {
  return `p50 ${s.p50.toFixed(digits)} ${unit}, p95 ${s.p95.toFixed(digits)} ${unit} (n=${s.n}, min ${s.min.toFixed(digits)}, max ${s.max.toFixed(digits)})`
}

// ---------------------------------------------------------------- /proc

interface ProcSample { rss: number, rchar: number, wchar: number, cpuTicks: number }

const CLK_TCK = (() => {
  try { return Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()

async function procSample (pid: number): Promise<ProcSample> {
  const [status, io, stat] = await Promise.all([
    readFile(`/proc/${pid}/status`, 'utf8'),
    readFile(`/proc/${pid}/io`, 'utf8').catch(() => ''),
    readFile(`/proc/${pid}/stat`, 'utf8')
  ])
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
  const rchar = Number(/rchar:\s+(\d+)/.exec(io)?.[1] ?? 0)
  const wchar = Number(/wchar:\s+(\d+)/.exec(io)?.[1] ?? 0)
  // Fields after the command name (which may hold spaces): utime is the 14th field, stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpuTicks = Number(fields[11]) + Number(fields[12])
  return { rss, rchar, wchar, cpuTicks }
}

// ---------------------------------------------------------------- children

const children = new Set<ChildProcess>()

function killAll (signal: NodeJS.Signals): void {
  for (const c of children) {
    if (c.exitCode == null && c.signalCode == null) {
      try { c.kill(signal) } catch {}
    }
  }
}

process.on('exit', () => { killAll('SIGKILL') })
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    console.error(`\nbench:scale: ${sig}: stopping every process it started`)
    killAll('SIGTERM')
    setTimeout(() => { killAll('SIGKILL'); process.exit(130) }, 2000).unref()
  })
}

function track (child: ChildProcess): Promise<void> {
  children.add(child)
  return new Promise(resolve => {
    child.once('exit', () => { children.delete(child); resolve() })
  })
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Busy core-seconds of the whole machine (/proc/stat), and of this process, at `at` (s). */
async function cpuSample (): Promise<{ busy: number, self: number, at: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
  const u = process.cpuUsage()
  return { busy: (user + nice + system + irq + softirq + (steal ?? 0)) / CLK_TCK, self: (u.user + u.system) / 1e6, at: performance.now() / 1000 }
}

interface Relay {
  index: number
  child: ChildProcess
  pid: number
  addr: string
  peerId: string
  httpPort: number
  exited: Promise<void>
}

/** `node --import tsx relay/main.ts …` with an empty app dir (for /metrics); resolves once it printed its addresses. */
async function startRelay (index: number, bootstrap: string[], appDir: string): Promise<Relay> {
  const args = ['--import', 'tsx', RELAY_ENTRY, '--host', '127.0.0.1', '--port', '0', '--http-port', '0', '--serve', appDir,
    // Every peer dials from 127.0.0.1: lift the per-address limit on new connections a second.
    '--max-joins-per-ip', '100000', ...bootstrap.flatMap(b => ['--bootstrap', b])]
  // SCALE_RELAY_DEBUG=<libp2p debug namespaces>: the relays log them to .tmp/scale-relay-<n>.log.
  const debug = process.env.SCALE_RELAY_DEBUG
  const env = { ...process.env, P2P_EXIT_WITH_PARENT: '1', ...(debug != null ? { DEBUG: debug } : {}) }
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env })
  const exited = track(child)
  if (debug != null) {
    await mkdir(join(ROOT, '.tmp'), { recursive: true })
    child.stderr!.pipe(createWriteStream(join(ROOT, '.tmp', `scale-relay-${index + 1}.log`)))
  } else {
    createInterface({ input: child.stderr! }).on('line', line => { console.error(`  relay ${index + 1}: ${line}`) })
  }
  const lines = createInterface({ input: child.stdout! })
  let addr: string | undefined
  const found = new Promise<{ addr: string, httpPort: number }>((resolve, reject) => {
    lines.on('line', line => {
      const m = /^relay listening on (\S+)$/.exec(line)
      if (m != null) addr = m[1]
      const h = /^Open https?:\/\/[^:/]+:(\d+)\//.exec(line)
      if (h != null && addr != null) resolve({ addr, httpPort: Number(h[1]) })
    })
    void exited.then(() => { reject(new Error(`relay ${index + 1} exited (${child.exitCode ?? child.signalCode}) before listening`)) })
  })
  const r = await within(found, 60_000, `relay ${index + 1} to listen`)
  const peerId = r.addr.split('/p2p/').pop()!
  return { index, child, pid: child.pid!, addr: r.addr, peerId, httpPort: r.httpPort, exited }
}

async function relayMetrics (r: Relay): Promise<Record<string, number>> {
  const res = await fetch(`http://127.0.0.1:${r.httpPort}/metrics`, { signal: AbortSignal.timeout(5000) })
  const out: Record<string, number> = {}
  for (const line of (await res.text()).split('\n')) {
    const m = /^p2p_ai_agents_(\S+) (\S+)$/.exec(line)
    if (m != null) out[m[1]] = Number(m[2])
  }
  return out
}

class Host {
  readonly child: ChildProcess
  readonly name: string
  readonly exited: Promise<void>
  pid = 0
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  readonly ready: Promise<void>

  constructor (name: string) {
    this.name = name
    this.child = fork(HOST_ENTRY, [], {
      cwd: ROOT,
      // SCALE_HOST_PROF=<dir>: each host writes a V8 CPU profile there when it exits.
      execArgv: ['--import', 'tsx', ...(process.env.SCALE_HOST_PROF != null ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCALE_HOST_PROF}`] : [])],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, P2P_EXIT_WITH_PARENT: '1' }
    })
    this.exited = track(this.child)
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on('line', line => { console.error(`  ${name}: ${line}`) })
    }
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (msg: Reply | ReadyMessage) => {
        if ('type' in msg) {
          this.pid = msg.pid
          resolve()
          return
        }
        const p = this.pending.get(msg.id)
        if (p == null) return
        this.pending.delete(msg.id)
        if (msg.ok) p.resolve(msg.result)
        else p.reject(new Error(`${name}: ${msg.error}`))
      })
      void this.exited.then(() => {
        const err = new Error(`${name} exited (${this.child.exitCode ?? this.child.signalCode})`)
        reject(err)
        for (const p of this.pending.values()) p.reject(err)
        this.pending.clear()
      })
    })
    this.ready.catch(() => {})
  }

  async call<T> (cmd: string, args: unknown = {}, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++
    const reply = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
    })
    this.child.send({ id, cmd, args })
    return await within(reply, timeoutMs, `${this.name} to answer '${cmd}'`)
  }
}

// ---------------------------------------------------------------- helpers

/** Relays a peer holds: its own and, when there are several, the next one. */
function relaysOf (i: number): number[] {
  return RELAYS === 1 ? [0] : [i % RELAYS, (i + 1) % RELAYS]
}

async function allStats (hosts: Host[]): Promise<HostStats[]> {
  return await Promise.all(hosts.map(async h => await h.call<HostStats>('stats')))
}

function sum (xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0)
}

// ---------------------------------------------------------------- the run

const relays: Relay[] = []
const hosts: Host[] = []
let appDir: string | undefined

async function main (): Promise<void> {
  const machine = {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'cpu',
    memGiB: totalmem() / 2 ** 30,
    freeGiB: freemem() / 2 ** 30,
    node: process.version,
    clkTck: CLK_TCK
  }
  console.log(`P2P AI Agents scale bench — ${machine.cpus} × ${machine.model}, ${machine.memGiB.toFixed(0)} GiB (${machine.freeGiB.toFixed(0)} free), Node ${machine.node}`)
  console.log(`command: ${COMMAND}\n`)
  Object.assign(results, { machine, command: COMMAND, date: new Date().toISOString() })
  if (PEERS < 2) throw new Error('--peers must be at least 2')
  const machine0 = await cpuSample()
  await sleep(2000)
  const machine1 = await cpuSample()
  const idleLoad = (machine1.busy - machine0.busy) / (machine1.at - machine0.at)
  figure('machine load before starting', `${(idleLoad * 100).toFixed(0)} % of one core busy (other processes)`)
  results.loadBefore = idleLoad

  // 1. Relays, linked.
  appDir = await mkdtemp(join(tmpdir(), 'p2p-scale-app-'))
  relays.push(await startRelay(0, [], appDir))
  relays.push(...await Promise.all(Array.from({ length: RELAYS - 1 }, async (_, k) => await startRelay(k + 1, [relays[0].addr], appDir!))))
  const linkDeadline = Date.now() + 30_000
  let metrics = await Promise.all(relays.map(relayMetrics))
  while (metrics.some(m => (m.relay_links ?? 0) < RELAYS - 1) && Date.now() < linkDeadline) {
    await sleep(250)
    metrics = await Promise.all(relays.map(relayMetrics))
  }
  const links = metrics.map(m => m.relay_links ?? 0)
  progress(`${RELAYS} relay(s) up (pids ${relays.map(r => r.pid).join(', ')}); links per relay: ${links.join(', ')} (want ${RELAYS - 1} each)`)
  results.relayLinks = links
  if (links.some(l => l < RELAYS - 1)) console.log('  WARNING: not every relay is linked to every other one')

  // 2. Host processes (module loading only), then the relays' memory with no peer attached.
  const baseHosts = Array.from({ length: PROCESSES }, (_, k) => new Host(`host ${k + 1}`))
  const probe = new Host('probe')
  hosts.push(...baseHosts, probe)
  await within(Promise.all(hosts.map(async h => { await h.ready })), 120_000, 'the host processes to load')
  const pacer = HEARTBEAT_MS == null ? undefined : { heartbeatMs: HEARTBEAT_MS }
  await Promise.all(hosts.map(async h => { await h.call('init', { relays: relays.map(r => r.addr), relayIds: relays.map(r => r.peerId), pacer }) }))
  await sleep(3000)
  const relayIdle = await Promise.all(relays.map(async r => await procSample(r.pid)))
  const hostIdle = await Promise.all(hosts.map(async h => await procSample(h.pid)))
  progress(`${hosts.length} host processes loaded; idle RSS relays ${relayIdle.map(s => mb(s.rss)).join(', ')}; hosts ${mb(sum(hostIdle.map(s => s.rss)) / hosts.length)} each (mean)`)

  // 3. Base peers, spread evenly over relays and host processes, added `--step` at a time; after
  // each step the network must still be healthy (every peer joined and holds a relay, the hosts'
  // event loops answer within LAG_LIMIT_MS), else that step is taken back and the run goes on
  // with the largest network that fitted.
  const specs: PeerSpec[] = Array.from({ length: PEERS }, (_, i) => ({ index: i, role: 'base', relays: relaysOf(i).map(r => relays[r].addr), work: true }))
  const hostOf = (index: number): Host => baseHosts[index % PROCESSES]
  const tStart = performance.now()
  const started: StartedPeer[] = []
  const startFailures: string[] = []
  const ramp: Array<Record<string, unknown>> = []
  let limit: string | undefined
  await allStats(baseHosts) // resets the hosts' event-loop delay histograms
  for (let from = 0; from < PEERS && limit == null; from += STEP) {
    const step = specs.slice(from, from + STEP)
    const replies = await Promise.all(baseHosts.map(async (h, k) => await h.call<{ started: StartedPeer[], failed: string[] }>('start', { peers: step.filter(x => x.index % PROCESSES === k), concurrency: CONCURRENCY }, 600_000)))
    // Load is judged once the step's joins are done: what the network costs, plus whatever else runs here.
    const c0 = await cpuSample()
    await sleep(SETTLE_MS)
    const st = await allStats(baseHosts)
    const c1 = await cpuSample()
    const ok = replies.flatMap(r => r.started)
    const failed = replies.flatMap(r => r.failed)
    const all = st.flatMap(h => h.peers)
    const noRelay = all.filter(p => p.relaysReady === 0)
    const deaf = all.filter(p => p.relaysReady > 0 && p.gossipSubscribers === 0)
    const lag = Math.max(...st.map(h => h.loopDelayMs.p99))
    const busy = (c1.busy - c0.busy) / (c1.at - c0.at)
    const joins = ok.length > 0 ? summarize(ok.map(x => x.joinMs)) : undefined
    const size = started.length + ok.length
    progress(`${size} peers: this step's joins ${joins == null ? '-' : `p50 ${joins.p50.toFixed(0)} ms, p95 ${joins.p95.toFixed(0)} ms`}, ${failed.length} failed; ${noRelay.length} without a relay, ${deaf.length} with a relay but no gossip peer; hosts' event-loop p99 ${lag.toFixed(0)} ms; machine ${(busy * 100).toFixed(0)} % of one core busy`)
    ramp.push({ peers: size, joinMs: joins, failed: failed.length, noRelay: noRelay.length, deaf: deaf.length, loopDelayP99Ms: lag, machineBusyCores: busy })
    const reasons = [
      ...(failed.length > 0 ? [`${failed.length} peer(s) could not join (${failed[0]})`] : []),
      ...(noRelay.length > 0 ? [`${noRelay.length} peer(s) lost every relay`] : []),
      ...(lag > LAG_LIMIT_MS ? [`a host's event loop stalled ${(lag / 1000).toFixed(1)} s (p99)`] : []),
      ...(busy > BUSY_LIMIT * machine.cpus ? [`the machine was ${(busy / machine.cpus * 100).toFixed(0)} % busy once the joins were done`] : [])
    ]
    if (reasons.length > 0 && started.length >= 2) {
      limit = `${size} peers did not fit: ${reasons.join('; ')}; machine ${(busy * 100).toFixed(0)} % of one core busy over that step`
      const back = [...ok.map(x => x.index), ...step.filter(x => !ok.some(o => o.index === x.index)).map(x => x.index)]
      await Promise.all(baseHosts.map(async (h, k) => { await h.call('stopPeers', { indexes: back.filter(i => i % PROCESSES === k) }, 60_000) }))
      startFailures.push(...failed)
      progress(`limit: ${limit}; took that step back, going on with ${started.length} peers`)
      await sleep(SETTLE_MS)
    } else {
      started.push(...ok)
      startFailures.push(...failed)
    }
  }
  const startSeconds = (performance.now() - tStart) / 1000
  if (started.length < 2) throw new Error(`fewer than two peers joined: ${startFailures.slice(0, 3).join('; ')}`)
  const N = started.length
  const peerIdToIndex = new Map(started.map(s => [s.peerId, s.index]))
  const joinSummary = summarize(started.map(s => s.joinMs))
  progress(`${N} peers joined in ${startSeconds.toFixed(1)} s (${PROCESSES} processes × ${CONCURRENCY} at a time, steps of ${STEP}); start → first relay reservation ${fmtS(joinSummary, 'ms')}`)
  results.join = { peers: N, requested: PEERS, limit, ramp, failed: startFailures, seconds: startSeconds, joinMs: joinSummary }

  // Probe process: an observer per relay (holding that relay only) and the batch requester.
  const probeSpecs: PeerSpec[] = [
    ...relays.map((r, k): PeerSpec => ({ index: 100_000 + k, role: 'observer', relays: [r.addr], work: false })),
    { index: 200_000, role: 'requester', relays: relaysOf(0).map(r => relays[r].addr), work: false, maxDirect: WORKERS }
  ]
  const probeStart = await probe.call<{ started: StartedPeer[], failed: string[] }>('start', { peers: probeSpecs, concurrency: 1 }, 300_000)
  if (probeStart.failed.length > 0) throw new Error(`probe peers did not join: ${probeStart.failed.join('; ')}`)

  // 4. Every base peer and observer knows every worker (and every relay).
  const expected = N - 1 + RELAYS
  const tConverge = performance.now()
  // Done when every peer that hears gossip has every advert but those of peers that do not (see 'deaf' below), or after 60 s.
  let minTable = 0
  let tables: HostStats[] = []
  for (;;) {
    tables = await allStats(hosts)
    const listening = tables.flatMap(h => h.peers.filter(p => (p.role === 'base' || p.role === 'observer')))
    const deaf = listening.filter(p => p.gossipSubscribers === 0).length
    const sizes = listening.filter(p => p.gossipSubscribers > 0).map(p => p.table + (p.role === 'observer' ? 1 : 0))
    minTable = Math.min(...sizes)
    if (minTable >= expected - deaf || performance.now() - tConverge > 60_000) break
    await sleep(2000)
  }
  const convergeSeconds = (performance.now() - tConverge) / 1000
  progress(`tables: smallest ${minTable} of ${expected} expected entries (peers that hear gossip), ${convergeSeconds.toFixed(1)} s after the last join; event-loop delay in the hosts p99 ${Math.max(...tables.map(h => h.loopDelayMs.p99)).toFixed(0)} ms, max ${Math.max(...tables.map(h => h.loopDelayMs.max)).toFixed(0)} ms (worst host)`)
  if (minTable < expected) {
    const short = tables.flatMap((h, k) => h.peers.filter(p => (p.role === 'base' || p.role === 'observer') && p.table + (p.role === 'observer' ? 1 : 0) < expected).map(p => ({ host: hosts[k], p })))
      .sort((x, y) => x.p.table - y.p.table)
    console.log(`  ${short.length} peer(s) short of a full table; the emptiest:`)
    for (const { host, p } of short.slice(0, 2)) console.log(`    ${p.role} ${p.index} (${host.name}): ${await host.call<string>('diagnose', { index: p.index })}`)
    // Whose adverts are missing from a typical short table?
    const typical = short[Math.floor(short.length / 2)]
    const ids = new Set(await typical.host.call<string[]>('tableIds', { index: typical.p.index }))
    const missing = [...started.map(s => ({ id: s.peerId, index: s.index })), ...relays.map(r => ({ id: r.peerId, index: -1 - r.index }))]
      .filter(x => x.id !== typical.p.peerId && !ids.has(x.id))
    console.log(`  ${typical.p.role} ${typical.p.index} lacks ${missing.length}: ${missing.slice(0, 6).map(x => x.index < 0 ? `relay ${-x.index}` : `peer ${x.index}`).join(', ')}`)
    for (const x of missing.filter(x => x.index >= 0).slice(0, 2)) {
      const host = hostOf(x.index)
      console.log(`    peer ${x.index} (${host.name}): ${await host.call<string>('diagnose', { index: x.index })}`)
    }
  }
  const deafNow = tables.flatMap(h => h.peers).filter(p => p.relaysReady > 0 && p.gossipSubscribers === 0)
  if (deafNow.length > 0) console.log(`  ${deafNow.length} peer(s) hold a relay but have no gossipsub peer on the discovery topic (they neither hear nor reach anyone): ${deafNow.slice(0, 8).map(p => `${p.role} ${p.index}`).join(', ')}`)
  results.converge = { seconds: convergeSeconds, minTable, expected, deaf: deafNow.map(p => p.index) }

  // 5. Steady window: nothing joins or leaves; heartbeats only.
  const pids = [...relays.map(r => r.pid), ...hosts.map(h => h.pid)]
  const procA = await Promise.all(pids.map(procSample))
  const cpuA = await cpuSample()
  const statsA = await allStats(hosts)
  const tA = performance.now()
  progress(`steady window: ${WINDOW_S} s`)
  await sleep(WINDOW_S * 1000)
  const procB = await Promise.all(pids.map(procSample))
  const cpuB = await cpuSample()
  const statsB = await allStats(hosts)
  const windowS = (performance.now() - tA) / 1000
  const relayMetricsSteady = await Promise.all(relays.map(relayMetrics))
  const d = (i: number): ProcSample => ({
    rss: procB[i].rss,
    rchar: procB[i].rchar - procA[i].rchar,
    wchar: procB[i].wchar - procA[i].wchar,
    cpuTicks: procB[i].cpuTicks - procA[i].cpuTicks
  })
  const relayD = relays.map((_, k) => d(k))
  const hostD = hosts.map((_, k) => d(relays.length + k))
  const baseHostD = hostD.slice(0, PROCESSES)

  const byIndex = (stats: HostStats[]): Map<number, PeerReport> => new Map(stats.flatMap(h => h.peers).map(p => [p.index, p]))
  const a = byIndex(statsA)
  const b = byIndex(statsB)
  const basePeers = [...b.values()].filter(p => p.role === 'base')
  const perPeer = basePeers.map(p => {
    const p0 = a.get(p.index)!
    const pub = p.discovery.publishedBytes - p0.discovery.publishedBytes
    const rec = p.discovery.receivedBytes - p0.discovery.receivedBytes
    return { pub, rec, published: p.discovery.published - p0.discovery.published, received: p.discovery.received - p0.discovery.received }
  })
  const advertBytesPerPeerPerS = perPeer.map(x => (x.pub + x.rec) / windowS)
  const advertSummary = summarize(advertBytesPerPeerPerS)
  const advertSize = sum(basePeers.map(p => p.discovery.publishedBytes)) / Math.max(1, sum(basePeers.map(p => p.discovery.published)))
  const wireBytes = sum(baseHostD.map(x => x.rchar + x.wchar))
  const wirePerPeerPerS = wireBytes / N / windowS
  const receivedPerPeerPerMin = sum(perPeer.map(x => x.received)) / N / (windowS / 60)
  const publishedPerPeerPerMin = sum(perPeer.map(x => x.published)) / N / (windowS / 60)
  const ours = sum([...relayD, ...hostD].map(x => x.cpuTicks)) / CLK_TCK + (cpuB.self - cpuA.self)
  const machineBusy = cpuB.busy - cpuA.busy
  const baseCpuS = sum(baseHostD.map(x => x.cpuTicks)) / CLK_TCK
  console.log(`\n(b) discovery traffic per peer, steady ${windowS.toFixed(0)} s window, ${N} workers + ${RELAYS} relays advertising — ${COMMAND}`)
  figure('advert bytes / peer (published + received)', `${kb(advertSummary.mean)}/s mean = ${kb(advertSummary.mean * 60)}/min (${fmtS({ ...advertSummary, p50: advertSummary.p50 / 1024, p95: advertSummary.p95 / 1024, min: advertSummary.min / 1024, max: advertSummary.max / 1024 }, 'KB/s', 2)})`)
  figure('↳ adverts received / published per peer', `${receivedPerPeerPerMin.toFixed(1)} / ${publishedPerPeerPerMin.toFixed(2)} per min; one signed advert ≈ ${advertSize.toFixed(0)} B`)
  figure('all wire bytes / peer (/proc io of hosts)', `${kb(wirePerPeerPerS)}/s = ${kb(wirePerPeerPerS * 60)}/min (read + written on its sockets: gossipsub incl. duplicates and control, noise, yamux, identify, ping)`)
  figure('CPU of the peers', `${(baseCpuS / windowS * 100).toFixed(1)} % of one core for ${N} peers = ${(baseCpuS / windowS / N * 1000).toFixed(2)} ms/s per peer`)
  figure('event-loop delay in the hosts', `p99 ${Math.max(...statsB.map(h => h.loopDelayMs.p99)).toFixed(0)} ms, max ${Math.max(...statsB.map(h => h.loopDelayMs.max)).toFixed(0)} ms (worst host over the window)`)
  figure('CPU of the machine', `${(machineBusy / windowS * 100).toFixed(0)} % of one core busy (${machine.cpus} cores): this bench ${(ours / windowS * 100).toFixed(0)} %, other processes ${(Math.max(0, machineBusy - ours) / windowS * 100).toFixed(0)} %`)
  for (const r of relays) {
    const x = relayD[r.index]
    const m = relayMetricsSteady[r.index]
    const attached = (m.connections ?? 0) - (m.relay_links ?? 0)
    figure(`relay ${r.index + 1}: traffic, CPU`, `${kb((x.rchar + x.wchar) / windowS)}/s on the wire (${kb((x.rchar + x.wchar) / windowS / Math.max(1, attached))}/s per attached peer, ${attached} attached), CPU ${(x.cpuTicks / CLK_TCK / windowS * 100).toFixed(1)} % of a core; adverts received ${m.discovery_adverts_received_total}, table ${m.discovery_peers}`)
  }
  results.traffic = {
    windowS,
    advertBytesPerPeerPerS: advertSummary,
    advertSizeBytes: advertSize,
    advertsReceivedPerPeerPerMin: receivedPerPeerPerMin,
    advertsPublishedPerPeerPerMin: publishedPerPeerPerMin,
    wireBytesPerPeerPerS: wirePerPeerPerS,
    peersCpuCoreFraction: baseCpuS / windowS,
    machineBusyCoreFraction: machineBusy / windowS,
    otherProcessesCoreFraction: Math.max(0, machineBusy - ours) / windowS,
    relays: relays.map(r => ({ wireBytesPerS: (relayD[r.index].rchar + relayD[r.index].wchar) / windowS, cpuCoreFraction: relayD[r.index].cpuTicks / CLK_TCK / windowS, metrics: relayMetricsSteady[r.index] }))
  }

  // (c) Relay memory per attached peer.
  console.log(`\n(c) memory — ${COMMAND}`)
  const relayMem = relays.map(r => {
    const m = relayMetricsSteady[r.index]
    const attached = (m.connections ?? 0) - (m.relay_links ?? 0)
    const idle = relayIdle[r.index].rss
    const full = relayD[r.index].rss
    return { relay: r.index + 1, idleRss: idle, rss: full, attached, perPeer: (full - idle) / Math.max(1, attached) }
  })
  for (const x of relayMem) figure(`relay ${x.relay} VmRSS`, `${mb(x.idleRss)} with 0 peers → ${mb(x.rss)} with ${x.attached} attached = ${kb(x.perPeer)} per attached peer`)
  const baseHostRss = sum(baseHostD.map(x => x.rss))
  const baseHostIdle = sum(hostIdle.slice(0, PROCESSES).map(x => x.rss))
  figure('peer-host VmRSS', `${mb(baseHostIdle / PROCESSES)} per process loaded, ${mb(baseHostRss / PROCESSES)} with its ~${(N / PROCESSES).toFixed(0)} peers = ${mb((baseHostRss - baseHostIdle) / N)} per peer`)
  const heap = sum(statsB.slice(0, PROCESSES).map(h => h.memory.heapUsed))
  figure('peer-host JS heap', `${mb(heap / N)} used per peer`)
  results.memory = { relays: relayMem, hostIdleRss: baseHostIdle / PROCESSES, hostRss: baseHostRss / PROCESSES, perPeerRss: (baseHostRss - baseHostIdle) / N, perPeerHeap: heap / N }

  // 6. (a) Advert visibility of workers that join now.
  console.log(`\n(a) advert visibility, ${LATE} workers started after the network is up — ${COMMAND}`)
  const late: LateResult[] = []
  if (LATE > 0) {
    await Promise.all(hosts.map(async h => { await h.call('watch', { on: true }) }))
    for (let j = 0; j < LATE; j++) {
      const x = j % RELAYS
      const workerRelays = RELAYS >= 3 ? [x, (x + 1) % RELAYS] : [x]
      const observerRelay = RELAYS >= 3 ? (x + 2) % RELAYS : (x + 1) % RELAYS
      try {
        late.push(await probe.call<LateResult>('late', { index: 300_000 + j, relays: workerRelays, observerRelay }, 120_000))
      } catch (err) {
        console.log(`  late worker ${j}: ${(err as Error).message}`)
      }
      await sleep(500)
    }
    await sleep(3000)
    const seenAll = await Promise.all(baseHosts.map(async h => await h.call<SeenTimes>('seen', { ids: late.map(l => l.peerId) })))
    await Promise.all(hosts.map(async h => { await h.call('watch', { on: false }) }))
    const arrived = late.filter((l): l is LateResult & { seenMs: number } => l.seenMs != null)
    for (const l of late) if (l.seenMs == null) console.log(`  late worker ${l.peerId} on relays ${l.workerRelays.map(r => r + 1).join('+')}: advert not at the observer on relay ${l.observerRelay + 1} within 30 s — ${l.diagnosis ?? ''}`)
    const crossRelay = arrived.length > 0 ? summarize(arrived.map(l => l.seenMs)) : undefined
    const join = summarize(late.map(l => l.joinMs))
    figure('startNodePeer() → advert at observer, other relay', `${crossRelay == null ? 'none arrived' : fmtS(crossRelay, 'ms')}; ${late.length - arrived.length} of ${late.length} not within 30 s`)
    figure('↳ of which startNodePeer() resolving (joined)', fmtS(join, 'ms'))
    const everyone = late.map(l => {
      const times = seenAll.flatMap(s => s[l.peerId] ?? []).map(t => t - l.t0)
      return { n: times.length, last: times.length > 0 ? Math.max(...times) : NaN, all: times }
    })
    const pairs = everyone.flatMap(e => e.all)
    if (pairs.length > 0) {
      figure(`startNodePeer() → advert at each of ${N} base peers`, fmtS(summarize(pairs), 'ms'))
      figure('↳ → at the last base peer (per worker)', `${fmtS(summarize(everyone.filter(e => e.n > 0).map(e => e.last)), 'ms')}; seen by ${Math.min(...everyone.map(e => e.n))}–${Math.max(...everyone.map(e => e.n))} of ${N}`)
    }
    results.visibility = { late, crossRelayMs: crossRelay, joinMs: join, everyPeerMs: pairs.length > 0 ? summarize(pairs) : undefined, lastPeerMs: everyone.filter(e => e.n > 0).length > 0 ? summarize(everyone.filter(e => e.n > 0).map(e => e.last)) : undefined, seenBy: everyone.map(e => e.n) }
  }

  // 7. (e) A batch from the requester over ≥ --workers workers.
  let batch: BatchResult | undefined
  if (TASKS > 0) {
    console.log(`\n(e) batch: ${TASKS} digit tasks, replicas 1, requester maxWorkers = maxDirect = ${WORKERS} — ${COMMAND}`)
    progress('batch running')
    const pidsNow = [...relays.map(r => r.pid), ...hosts.map(h => h.pid)]
    const p0 = await Promise.all(pidsNow.map(procSample))
    const c0 = await cpuSample()
    try {
      batch = await probe.call<BatchResult>('batch', { tasks: TASKS, maxWorkers: WORKERS, timeoutMs: BATCH_S * 1000 }, BATCH_S * 1000 + 120_000)
    } catch (err) {
      console.log(`  batch failed: ${(err as Error).message}`)
    }
    const p1 = await Promise.all(pidsNow.map(procSample))
    const c1 = await cpuSample()
    const oursBatch = sum(p1.map((x, k) => x.cpuTicks - p0[k].cpuTicks)) / CLK_TCK + (c1.self - c0.self)
    const probeCpu = (p1[p1.length - 1].cpuTicks - p0[p0.length - 1].cpuTicks) / CLK_TCK
    const span = c1.at - c0.at
    results.batchCpu = { seconds: span, machineBusyCoreFraction: (c1.busy - c0.busy) / span, benchCoreFraction: oursBatch / span, probeCoreFraction: probeCpu / span }
    figure('CPU during the batch', `machine ${((c1.busy - c0.busy) / span * 100).toFixed(0)} % of one core (${machine.cpus} cores): this bench ${(oursBatch / span * 100).toFixed(0)} % (requester's process ${(probeCpu / span * 100).toFixed(0)} %), other processes ${(Math.max(0, c1.busy - c0.busy - oursBatch) / span * 100).toFixed(0)} %`)
    if (batch != null) {
      const lateIds = new Set(late.map(l => l.peerId))
      const workersUsed = Object.keys(batch.perPeer)
      const onRelay = Array.from({ length: RELAYS }, (_, r) => workersUsed.filter(id => {
        const i = peerIdToIndex.get(id)
        return i != null && relaysOf(i)[0] === r
      }).length)
      const counts = summarize(Object.values(batch.perPeer))
      figure('state', `${batch.state}${batch.error != null ? ` (${batch.error})` : ''}; ${batch.resultsCount} results, ${batch.missing} missing, ${batch.duplicates} indexes written more than once, ${batch.outOfRange} out of range; accuracy ${(batch.accuracy * 100).toFixed(2)} %`)
      figure('throughput', `${batch.tasksPerSec.toFixed(0)} tasks/s (${batch.resultsCount} decided in ${batch.seconds.toFixed(1)} s, dials and model loads included); ${batch.steadyTasksPerSec.toFixed(0)} tasks/s after the first 10 %`)
      figure('distinct workers that did work', `${workersUsed.length} (own relay 1..${RELAYS}: ${onRelay.join(' / ')}; late workers ${workersUsed.filter(id => lateIds.has(id)).length}); tasks per worker ${fmtS(counts, '', 0)}`)
      for (const [what, n] of Object.entries(batch.failures)) figure('↳ failed dispatch', `${n} × ${what}`)
      figure('requester direct connections', `max held ${batch.requester.maxHeld} (sampled ${batch.requester.maxHeldSampled}) with maxDirect = ${batch.maxDirect}, maxWorkers = ${batch.maxWorkers}; all connections max ${batch.requester.maxConnsSampled} (to relays ${batch.requester.maxRelayConnsSampled}); ${batch.requester.dials} dials, ${batch.requester.dialFailures} failed, dial p50 ${batch.requester.dialMsP50.toFixed(0)} ms / p95 ${batch.requester.dialMsP95.toFixed(0)} ms`)
      results.batch = { ...batch, workersUsed: workersUsed.length, workersByOwnRelay: onRelay }
    }
  }

  // 8. (d) Connections over the whole run.
  const final = await allStats(hosts)
  const everyPeer = final.flatMap(h => h.peers)
  const base = everyPeer.filter(p => p.role === 'base' || p.role === 'late')
  const worst = (key: keyof PeerReport, peers: PeerReport[]): PeerReport => peers.reduce((m, p) => (p[key] as number) > (m[key] as number) ? p : m)
  console.log(`\n(d) connections over the whole run — ${COMMAND}`)
  const maxHeld = worst('maxHeld', everyPeer)
  figure('most direct connections held by any peer', `${maxHeld.maxHeld} (${maxHeld.role}; connections.stats.maxHeld; sampled max ${Math.max(...everyPeer.map(p => p.maxHeldSampled))})`)
  figure('↳ by any worker', `${Math.max(...base.map(p => p.maxHeld))} (held now: max ${Math.max(...base.map(p => p.heldNow))})`)
  const conns = summarize(base.map(p => p.maxConnsSampled))
  figure('libp2p connections per worker (max sampled)', `${fmtS(conns, '', 0)}; to relays: max ${Math.max(...base.map(p => p.maxRelayConnsSampled))}`)
  figure('libp2p connections, any peer', `${Math.max(...everyPeer.map(p => p.maxConnsSampled))} (${worst('maxConnsSampled', everyPeer).role})`)
  const relayEnd = await Promise.all(relays.map(relayMetrics))
  const relayEndProc = await Promise.all(relays.map(async r => await procSample(r.pid)))
  for (const r of relays) figure(`relay ${r.index + 1} at the end`, `${relayEnd[r.index].connections} connections, ${relayEnd[r.index].relay_links} relay links, table ${relayEnd[r.index].discovery_peers}, VmRSS ${mb(relayEndProc[r.index].rss)}`)
  results.connections = {
    maxHeldAnyPeer: maxHeld.maxHeld,
    maxHeldAnyPeerRole: maxHeld.role,
    maxHeldAnyWorker: Math.max(...base.map(p => p.maxHeld)),
    connsPerWorker: conns,
    maxRelayConnsPerWorker: Math.max(...base.map(p => p.maxRelayConnsSampled)),
    relaysAtEnd: relayEnd.map((m, k) => ({ ...m, rss: relayEndProc[k].rss }))
  }
  const dialFailures = sum(everyPeer.map(p => p.dialFailures))
  if (dialFailures > 0) figure('dial failures (all peers)', String(dialFailures))
}

async function teardown (): Promise<void> {
  progress('stopping')
  await Promise.all(hosts.map(async h => {
    if (h.child.exitCode != null || h.child.signalCode != null) return
    try {
      await h.call('stop', {}, 20_000)
    } catch {}
    await within(h.exited, 5000, `${h.name} to exit`).catch(() => { h.child.kill('SIGKILL') })
  }))
  await Promise.all(relays.map(async r => {
    if (r.child.exitCode == null && r.child.signalCode == null) r.child.kill('SIGTERM')
    await within(r.exited, 12_000, `relay ${r.index + 1} to exit`).catch(() => { r.child.kill('SIGKILL') })
  }))
  killAll('SIGKILL')
  if (appDir != null) await rm(appDir, { recursive: true, force: true }).catch(() => {})
}

let failed = false
try {
  await main()
} catch (err) {
  failed = true
  console.error(`\nbench:scale: ${(err as Error).stack ?? String(err)}`)
  results.error = String((err as Error).message ?? err)
} finally {
  await teardown()
}
results.totalSeconds = (performance.now() - T0) / 1000
await mkdir('bench-results', { recursive: true }).catch(() => {})
await writeFile(values.out, JSON.stringify(results, null, 2)).catch(() => {})
console.log(`\ntotal ${((performance.now() - T0) / 1000).toFixed(0)} s; wrote ${values.out}`)
process.exit(failed ? 1 : 0)

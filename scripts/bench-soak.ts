/**
 * `npm run bench:soak -- --minutes N`: memory over time under a mixed load, on real parts.
 *
 *   node --import tsx scripts/bench-soak.ts [--minutes 5] [--warmup M] [--sample-s 60]
 *        [--plot docs/img/soak.png] [--out FILE]
 *   node --import tsx scripts/bench-soak.ts --replot FILE.json --plot docs/img/soak.png
 *        (draws the chart again from a run's JSON and prints its tables, without running anything)
 *
 * Runs the relay (serving the built app: P2P_APP_DIR or dist/), 3 Chromium tabs (one browser with a
 * fresh profile on disk, as a volunteer's, deleted at the end) and 2 Node worker
 * processes (src/node/worker.ts), and loops a requester's day on tab A until the time is up:
 *  - a digit batch from the Batch panel (replicas 1, spot checks on, 500 images);
 *  - two sample OCR pages through the scripting API, every other round also on tab A itself;
 *  - an own model uploaded by tab A (the digit model and the OCR detection model, each made
 *    unique per round: a new sha256 every round, as new user models are) and run on any peer;
 *  - tab C leaving (closed) and a fresh tab joining in its place.
 * Every `--sample-s` seconds it records each process's resident memory (VmRSS from /proc): the
 * relay; Chromium's browser, GPU and utility processes; the renderer of each tab (the process
 * that appeared when the tab opened: its page and its Web Workers); each Node worker and, apart,
 * its inference child processes. For tabs A and B it also records the page's JS heap and what
 * performance.measureUserAgentSpecificMemory() counts over the page and its workers.
 * The warm-up is the first round of load (cold starts, backend measurements) and at least --warmup
 * minutes (default a sixth of N, at least 1); the load then goes on for N minutes. At the end it
 * prints the series, and per process the growth after the warm-up against the aim of 10 % over
 * an hour, and writes the series as JSON and, with --plot, a PNG chart drawn by uPlot in headless
 * Chromium. Ctrl-C stops everything it started.
 * Linux only (reads /proc).
 */
import '../src/node/polyfill.js'
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'
import { startAppServer } from '../src/node/app-server.js'
import { CHROMIUM_FLAGS, findChromium } from '../src/node/chromium.js'
import { openTab, startBatch, waitForWorker } from '../src/node/page-driver.js'
import { summarize, within } from './stats.js'
import type { ChildProcess } from 'node:child_process'
import type { BrowserContext, CDPSession, Page } from 'playwright-core'
import type { AppServer } from '../src/node/app-server.js'
import '../src/browser/scripting.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const WORKER_ENTRY = ROOT + 'src/node/worker.ts'
const MB = 2 ** 20
/** Growth after the warm-up that the issue aims to stay under, over an hour. */
const AIM = 0.10

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    warmup: { type: 'string' },
    'sample-s': { type: 'string', default: '60' },
    plot: { type: 'string' },
    replot: { type: 'string' },
    out: { type: 'string', default: `bench-results/soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})
const MINUTES = Number(values.minutes)
const WARMUP = values.warmup != null ? Number(values.warmup) : Math.max(1, Math.round(MINUTES / 6))
const SAMPLE_S = Number(values['sample-s'])
if (!(MINUTES > 0) || !(WARMUP >= 0) || !(SAMPLE_S >= 1)) {
  console.error('usage: bench-soak [--minutes N > 0] [--warmup M] [--sample-s S ≥ 1] [--plot file.png] [--out file.json]')
  process.exit(2)
}
let COMMAND = `npm run bench:soak -- --minutes ${MINUTES}${values.warmup != null ? ` --warmup ${WARMUP}` : ''}${SAMPLE_S !== 60 ? ` --sample-s ${SAMPLE_S}` : ''}${values.plot != null ? ` --plot ${values.plot}` : ''}`

// ---------------------------------------------------------------- processes (/proc)

interface Proc { pid: number, ppid: number, cmd: string }

function processes (): Map<number, Proc> {
  const out = new Map<number, Proc>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ')
      out.set(Number(name), { pid: Number(name), ppid, cmd })
    } catch {
      // exited meanwhile
    }
  }
  return out
}

function descendants (all: Map<number, Proc>, root: number): number[] {
  const found: number[] = []
  const stack = [root]
  while (stack.length > 0) {
    const pid = stack.pop()!
    for (const p of all.values()) if (p.ppid === pid) { found.push(p.pid); stack.push(p.pid) }
  }
  return found
}

/** Resident set size of a process in bytes (0 once it is gone). */
function rss (pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m == null ? 0 : Number(m[1]) * 1024
  } catch {
    return 0
  }
}

/** Chromium's processes under this bench: renderers, and the rest by their --type (browser when none). */
function chromiumProcesses (): { renderers: Set<number>, byType: Map<string, number[]> } {
  const all = processes()
  const renderers = new Set<number>()
  const byType = new Map<string, number[]>()
  for (const pid of descendants(all, process.pid)) {
    const cmd = all.get(pid)?.cmd ?? ''
    if (!/chrom/i.test(cmd.split(' ')[0])) continue
    const type = /--type=(\S+)/.exec(cmd)?.[1] ?? 'browser'
    if (type === 'renderer') renderers.add(pid)
    else if (type !== 'zygote' && type !== 'broker') byType.set(type, [...(byType.get(type) ?? []), pid])
  }
  return { renderers, byType }
}

// ---------------------------------------------------------------- the parts

let stopping = false
const cleanups: Array<() => Promise<unknown>> = []

interface NodeWorker { name: string, peerId: string, child: ChildProcess }

async function spawnWorker (server: AppServer, name: string, cacheDir: string): Promise<NodeWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_ENTRY, '--relay', server.relayAddr, '--model-cache', join(cacheDir, name)], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, P2P_EXIT_WITH_PARENT: '1' }
  })
  const exited = new Promise(resolve => child.once('close', resolve))
  cleanups.push(async () => {
    if (child.exitCode == null && child.signalCode == null) child.kill('SIGTERM')
    await within(exited, 5000, `${name} to exit`).catch(() => { child.kill('SIGKILL') })
  })
  const lines = createInterface({ input: child.stdout! }) // drains the pipe: two lines per task
  createInterface({ input: child.stderr! }).on('line', line => { if (!stopping) console.error(`  ${name}: ${line}`) })
  const peerId = await within(new Promise<string>((resolve, reject) => {
    lines.on('line', line => { const m = /^worker (\S+) joined /.exec(line); if (m != null) resolve(m[1]) })
    void exited.then(() => { reject(new Error(`${name} exited before joining`)) })
  }), 60_000, `${name} to join`)
  return { name, peerId, child }
}

interface Tab { name: string, page: Page, peerId: string, renderers: number[], cdp: CDPSession }

/**
 * Opens a tab and finds its renderer: the renderer process(es) that appeared while it opened.
 * Tabs open one at a time and Chromium keeps no spare renderer (flag below), so none is shared.
 */
async function openTracked (context: BrowserContext, url: string, name: string): Promise<Tab> {
  const before = chromiumProcesses().renderers
  const tab = await openTab(context, url, 60_000)
  const renderers = [...chromiumProcesses().renderers].filter(p => !before.has(p))
  if (renderers.length === 0) throw new Error(`${name}: no new renderer process appeared`)
  const cdp = await context.newCDPSession(tab.page)
  return { name, page: tab.page, peerId: tab.peerId, renderers, cdp }
}

/** Page helpers installed in tab A as plain JS (see scripts/bench-models.ts for why not functions). */
const PAGE_HELPERS = `
window.soakOwnModel = async (file, salt, inputs, count) => {
  const res = await fetch('models/' + file)
  if (!res.ok) throw new Error(file + ': HTTP ' + res.status)
  const served = new Uint8Array(await res.arrayBuffer())
  const s = new TextEncoder().encode(salt)
  // An appended ONNX doc_string (field 6): same graph, new sha256, as a user's own model.
  const bytes = new Uint8Array(served.length + 2 + s.length)
  bytes.set(served)
  bytes[served.length] = 0x32
  bytes[served.length + 1] = s.length
  bytes.set(s, served.length + 2)
  const tensors = inputs.map(t => {
    const n = t.dims.reduce((a, b) => a * b, 1)
    const data = new Float32Array(n)
    for (let i = 0; i < n; i++) data[i] = Math.random()
    return { name: t.name, dtype: 'float32', dims: t.dims, bytes: new Uint8Array(data.buffer) }
  })
  const r = await window.p2pAgents.runModel({ bytes, name: file.replace('.onnx', '') + '-' + salt }, tensors, count, { kind: 'any' })
  return r.runs.length
}`

declare global {
  interface Window { soakOwnModel?: (file: string, salt: string, inputs: Array<{ name: string, dims: number[] }>, count: number) => Promise<number> }
}

// ---------------------------------------------------------------- the load

interface LoadStats { rounds: number, ok: Record<string, number>, failed: Record<string, number>, lastError: Record<string, string> }

async function step (stats: LoadStats, kind: string, ms: number, run: () => Promise<unknown>, endAt: number): Promise<void> {
  if (stopping || performance.now() >= endAt) return
  // A step still running when the time is up is left unfinished (the browser closes under it), not counted.
  const cut = endAt - performance.now() < ms
  try {
    await within(run(), Math.min(ms, endAt - performance.now()), kind)
    stats.ok[kind] = (stats.ok[kind] ?? 0) + 1
  } catch (err) {
    if (cut && performance.now() >= endAt) return
    stats.failed[kind] = (stats.failed[kind] ?? 0) + 1
    stats.lastError[kind] = (err as Error).message.split('\n')[0].slice(0, 200)
  }
}

async function digitBatch (page: Page, limit: number): Promise<void> {
  const jobOf = async (): Promise<string> => await page.evaluate(() => document.querySelector<HTMLElement>('[data-testid=batch-progress]')?.dataset.jobId ?? '')
  const before = await jobOf()
  await page.locator('[data-testid=batch-run]:not([disabled])').waitFor({ timeout: 60_000 })
  await startBatch(page, { replicas: 1, limit })
  await page.waitForFunction((prev) => {
    const id = document.querySelector<HTMLElement>('[data-testid=batch-progress]')?.dataset.jobId ?? ''
    return id !== '' && id !== prev
  }, before, { timeout: 60_000, polling: 250 })
  await page.locator('[data-testid=batch-run]:not([disabled])').waitFor({ timeout: 240_000 })
  const state = await page.locator('[data-testid=batch-summary]').getAttribute('data-state', { timeout: 10_000 })
  if (state !== 'done') throw new Error(`batch ended ${state ?? 'without a summary'}`)
}

async function ocrPages (page: Page, includeSelf: boolean): Promise<void> {
  const r = await page.evaluate(async (self) => await window.p2pAgents.ocrSamples(['document.png', 'receipt.png'], { replicas: 1, includeSelf: self }), includeSelf)
  const bad = r.texts.filter(t => t.trim() === '')
  if (bad.length > 0) throw new Error(`${bad.length} OCR page(s) read no text`)
}

// ---------------------------------------------------------------- samples

interface PageMemory {
  jsHeap: number
  /** measureUserAgentSpecificMemory: the page and its workers' JS realms, and of that the workers. */
  measured?: number
  workers?: number
  /** Web Workers the page runs (inference workers per backend and slot, the input parser; onnxruntime's pthreads when listed). */
  workerCount: number
}
interface Sample { minute: number, rss: Record<string, number>, pages: Record<string, PageMemory> }

async function pageMemory (tab: Tab): Promise<PageMemory> {
  const heap = await within(tab.cdp.send('Runtime.getHeapUsage'), 10_000, `${tab.name} heap usage`)
  const ua = await within(tab.page.evaluate(async () => {
    const p = performance as Performance & { measureUserAgentSpecificMemory?: () => Promise<{ bytes: number, breakdown: Array<{ bytes: number, attribution: Array<{ scope: string }> }> }> }
    if (p.measureUserAgentSpecificMemory == null || !crossOriginIsolated) return undefined
    const m = await p.measureUserAgentSpecificMemory()
    const workers = m.breakdown.filter(b => b.attribution.some(a => a.scope === 'DedicatedWorkerGlobalScope')).reduce((s, b) => s + b.bytes, 0)
    return { bytes: m.bytes, workers }
  }), 15_000, `${tab.name} measureUserAgentSpecificMemory`).catch(() => undefined)
  return { jsHeap: heap.usedSize, measured: ua?.bytes, workers: ua?.workers, workerCount: tab.page.workers().length }
}

// ---------------------------------------------------------------- report

/** Least-squares slope of y over x. */
function slope (xs: number[], ys: number[]): number {
  const n = xs.length
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) { num += (xs[i] - mx) * (ys[i] - my); den += (xs[i] - mx) ** 2 }
  return den === 0 ? 0 : num / den
}

interface Growth { name: string, warm: number, end: number, max: number, growth: number, perHour: number, judged: boolean, verdict: string }

/** Samples per end of the comparison: a sixth of those after the warm-up (10 of an hour's), at least 1. */
const windowOf = (samples: number): number => Math.max(1, Math.round(samples / 6))

const median = (values: number[]): number => values.length === 0 ? 0 : summarize(values).p50

/**
 * Per series: resident memory just after the warm-up and at the end, each the median of a window
 * of samples (windowOf: a single minute's sample swings ±10 % under this load), the most after the
 * warm-up, growth end vs warm-up (judged against the 10 % aim: a run shorter than an hour can only
 * fail it, never prove it), and the growth over an hour at the rate fitted after the warm-up (a
 * short run's fit is mostly noise). Series whose process is replaced during the run are shown, not judged.
 */
function judge (samples: Sample[], warmupMin: number, replaced: Set<string>): Growth[] {
  const names = [...new Set(samples.flatMap(s => Object.keys(s.rss)))]
  const after = samples.filter(s => s.minute >= warmupMin - 1e-9)
  return names.map(name => {
    const pts = after.filter(s => s.rss[name] != null)
    const w = windowOf(pts.length)
    const warm = median(pts.slice(0, w).map(s => s.rss[name]))
    const end = median(pts.slice(-w).map(s => s.rss[name]))
    const max = Math.max(0, ...pts.map(s => s.rss[name]))
    const growth = warm > 0 ? (end - warm) / warm : 0
    const perHour = warm > 0 && pts.length >= 2 ? slope(pts.map(s => s.minute), pts.map(s => s.rss[name])) * 60 / warm : 0
    const judged = !replaced.has(name) && pts.length >= 2 && warm > 0
    const verdict = !judged ? 'not judged (replaced during the run)' : growth <= AIM ? 'ok' : 'OVER 10 %'
    return { name, warm, end, max, growth, perHour, judged, verdict }
  })
}

const mb = (b: number | undefined): string => b == null ? '–' : (b / MB).toFixed(0)
const pc = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`

function printTables (samples: Sample[], growth: Growth[], warmupMin: number): void {
  const names = growth.map(g => g.name)
  const width = Math.max(8, ...names.map(n => n.length))
  console.log('\nresident memory (MB) per sample:')
  console.log(['min'.padStart(5), ...names.map(n => n.padStart(width))].join(' '))
  for (const s of samples) console.log([s.minute.toFixed(1).padStart(5), ...names.map(n => mb(s.rss[n]).padStart(width))].join(' '))
  const pageNames = [...new Set(samples.flatMap(s => Object.keys(s.pages)))]
  if (pageNames.length > 0) {
    console.log('\npage memory (MB): JS heap of the page / measureUserAgentSpecificMemory (page + workers) / of which workers, and the Web Workers it runs')
    for (const s of samples) {
      console.log(`${s.minute.toFixed(1).padStart(5)}  ${pageNames.map(p => `${p}: ${mb(s.pages[p]?.jsHeap)} / ${mb(s.pages[p]?.measured)} / ${mb(s.pages[p]?.workers)}, ${s.pages[p]?.workerCount ?? '–'} workers`).join('   ')}`)
    }
  }
  const w = windowOf(samples.filter(s => s.minute >= warmupMin - 1e-9).length)
  console.log(`\ngrowth after the warm-up (aim: ≤ ${AIM * 100} % over an hour; end/warm is judged, each the median of ${w} sample(s) at that end; "per hour" extrapolates the linear fit after the warm-up):`)
  console.log(`${'process'.padEnd(width)} ${'warm MB'.padStart(8)} ${'end MB'.padStart(8)} ${'max MB'.padStart(8)} ${'end/warm'.padStart(9)} ${'per hour'.padStart(10)}  verdict`)
  for (const g of growth) {
    console.log(`${g.name.padEnd(width)} ${mb(g.warm).padStart(8)} ${mb(g.end).padStart(8)} ${mb(g.max).padStart(8)} ${pc(g.growth).padStart(9)} ${pc(g.perHour).padStart(10)}  ${g.verdict}`)
  }
}

/** The browser's version, from the page a persistent context opens with (which then closes: it belongs to no tab). */
async function chromiumVersion (context: BrowserContext): Promise<string> {
  const page = context.pages()[0] ?? await context.newPage()
  const cdp = await context.newCDPSession(page)
  const { product } = await cdp.send('Browser.getVersion')
  await cdp.detach()
  await page.close()
  return product.replace(/^[^/]*\//, '')
}

/** Draws the series with uPlot in a headless Chromium page and saves a PNG of it. */
async function plot (context: BrowserContext, samples: Sample[], warmupMin: number, file: string): Promise<void> {
  const names = [...new Set(samples.flatMap(s => Object.keys(s.rss)))]
  // 0 or missing: no such process at that moment (a tab between leaving and its successor joining): a gap.
  const data = [samples.map(s => s.minute), ...names.map(n => samples.map(s => s.rss[n] == null || s.rss[n] === 0 ? null : Math.round(s.rss[n] / MB)))]
  const js = await readFile(ROOT + 'node_modules/uplot/dist/uPlot.iife.min.js', 'utf8')
  const css = await readFile(ROOT + 'node_modules/uplot/dist/uPlot.min.css', 'utf8')
  const colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39']
  const page = await context.newPage()
  try {
    await page.setViewportSize({ width: 1000, height: 560 })
    await page.setContent(`<!doctype html><html><head><style>${css} body{margin:0;background:#fff;font:13px sans-serif}</style></head><body><div id="c"></div></body></html>`)
    await page.addScriptTag({ content: js })
    // Plain JS (functions handed to page.evaluate must not carry the helpers tsx adds to named functions).
    await page.addScriptTag({
      content: `
      const cfg = ${JSON.stringify({ data, names, colours, title: `Resident memory per process — ${COMMAND}`, warmupMin })}
      const warmLine = (u) => {
        const x = u.valToPos(cfg.warmupMin, 'x', true)
        u.ctx.save(); u.ctx.strokeStyle = '#999'; u.ctx.setLineDash([6, 4]); u.ctx.beginPath()
        u.ctx.moveTo(x, u.bbox.top); u.ctx.lineTo(x, u.bbox.top + u.bbox.height); u.ctx.stroke(); u.ctx.restore()
      }
      new uPlot({
        title: cfg.title, width: 1000, height: 520,
        scales: { x: { time: false } },
        legend: { live: false },
        axes: [{ label: 'minutes (dashed: end of warm-up)' }, { label: 'resident MB', size: 60 }],
        series: [{ label: 'min' }, ...cfg.names.map((n, i) => ({ label: n, stroke: cfg.colours[i % cfg.colours.length], width: 2, points: { show: true, size: 4 } }))],
        hooks: { draw: [warmLine] }
      }, cfg.data, document.getElementById('c'))`
    })
    await mkdir(dirname(file), { recursive: true })
    await page.locator('#c').screenshot({ path: file })
  } finally {
    await page.close()
  }
}

// ---------------------------------------------------------------- main

async function main (): Promise<void> {
  if (process.platform !== 'linux') throw new Error('bench:soak reads /proc: Linux only')
  const server = await startAppServer()
  cleanups.push(async () => { await server.stop() })
  // One --disable-features flag (Chromium reads only the last): no spare renderer, so each tab's renderer is the one that appears when it opens.
  const args = CHROMIUM_FLAGS.map(f => f.startsWith('--disable-features=') ? `${f},SpareRendererForSitePerProcess` : f)
  args.push('--enable-blink-features=ForceEagerMeasureMemory')
  // A profile on disk, as a volunteer's browser has: an off-the-record context keeps IndexedDB and
  // Cache Storage (every job's results, every model) in the browser process's memory.
  const profile = await mkdtemp(join(tmpdir(), 'p2p-soak-profile-'))
  cleanups.push(async () => { await rm(profile, { recursive: true, force: true }) })
  const context = await chromium.launchPersistentContext(profile, { executablePath: findChromium(), headless: true, args })
  cleanups.push(async () => { await context.close() })
  const version = await chromiumVersion(context)
  console.log(`P2P AI Agents soak — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, Chromium ${version}`)
  console.log(`command: ${COMMAND}   (app: ${process.env.P2P_APP_DIR ?? 'dist'}, warm-up ${WARMUP} min, a sample every ${SAMPLE_S} s)`)

  const cacheDir = await mkdtemp(join(tmpdir(), 'p2p-soak-'))
  cleanups.push(async () => { await rm(cacheDir, { recursive: true, force: true }) })
  const workers = await Promise.all(['node-w1', 'node-w2'].map(async n => await spawnWorker(server, n, cacheDir)))
  const a = await openTracked(context, server.url, 'tab-A')
  const b = await openTracked(context, server.url, 'tab-B')
  let c = await openTracked(context, server.url, 'tab-C')
  await a.page.evaluate(PAGE_HELPERS)
  for (const peer of [b.peerId, c.peerId, ...workers.map(w => w.peerId)]) await waitForWorker(a.page, peer, 60_000)
  console.log(`tabs A (requester) ${a.peerId.slice(-8)}, B ${b.peerId.slice(-8)}, C ${c.peerId.slice(-8)} (replaced every round); Node workers ${workers.map(w => w.peerId.slice(-8)).join(', ')}`)

  const samples: Sample[] = []
  const t0 = performance.now()
  const minute = (): number => (performance.now() - t0) / 60_000
  const sample = async (): Promise<void> => {
    const at = minute()
    const all = processes()
    const chrome = chromiumProcesses()
    const r: Record<string, number> = { relay: rss(server.process.pid!) }
    for (const [type, pids] of chrome.byType) r[`chromium ${type}`] = pids.reduce((s, p) => s + rss(p), 0)
    for (const tab of [a, b, c]) {
      const bytes = tab.renderers.reduce((s, p) => s + rss(p), 0)
      // 0: caught between tab C closing and its successor opening (no process to count).
      if (bytes > 0) r[tab.name] = bytes
    }
    for (const w of workers) {
      r[w.name] = rss(w.child.pid!)
      r[`${w.name} inference`] = descendants(all, w.child.pid!).reduce((s, p) => s + rss(p), 0)
    }
    const pages: Record<string, PageMemory> = {}
    await Promise.all([a, b].map(async tab => { pages[tab.name] = await pageMemory(tab).catch(() => ({ jsHeap: 0, workerCount: tab.page.workers().length })) }))
    const s = { minute: at, rss: r, pages }
    samples.push(s)
    console.log(`  ${s.minute.toFixed(1).padStart(5)} min  ${Object.entries(r).map(([k, v]) => `${k} ${mb(v)}`).join(' · ')}  |  A heap ${mb(pages['tab-A'].jsHeap)} MB, A measured ${mb(pages['tab-A'].measured)} MB`)
  }

  const stats: LoadStats = { rounds: 0, ok: {}, failed: {}, lastError: {} }
  /** The warm-up lasts --warmup minutes and at least the first round (every kind of load has run once, cold starts done); N minutes follow it. */
  let warmupMin = WARMUP
  // Set once the warm-up ends: MINUTES of load after it.
  let endAt = Infinity
  let nextSample = t0
  const sampler = (async () => {
    while (!stopping) {
      await sample()
      nextSample += SAMPLE_S * 1000
      if (nextSample > endAt + 1000) {
        if (performance.now() < endAt) await new Promise(resolve => setTimeout(resolve, endAt - performance.now()))
        await sample()
        break
      }
      await new Promise(resolve => setTimeout(resolve, Math.max(0, nextSample - performance.now())))
    }
  })()

  const digitInputs = [{ name: 'input', dims: [1, 1, 28, 28] }]
  const detInputs = [{ name: 'x', dims: [1, 3, 320, 768] }]
  while (!stopping && performance.now() < endAt) {
    const round = ++stats.rounds
    await step(stats, 'digit batch', 300_000, async () => { await digitBatch(a.page, 500) }, endAt)
    await step(stats, 'OCR pages', 300_000, async () => { await ocrPages(a.page, round % 2 === 0) }, endAt)
    await step(stats, 'own digit model', 120_000, async () => await a.page.evaluate(async ([s, i]) => await window.soakOwnModel!('digits.onnx', s, i, 20), [`soak-${round}`, digitInputs] as const), endAt)
    await step(stats, 'own OCR det model', 300_000, async () => await a.page.evaluate(async ([s, i]) => await window.soakOwnModel!('ocr-det.onnx', s, i, 1), [`soak-${round}`, detInputs] as const), endAt)
    await step(stats, 'tab C leaves, a new one joins', 120_000, async () => {
      await c.cdp.detach().catch(() => {})
      await c.page.close()
      c = await openTracked(context, server.url, 'tab-C')
      await waitForWorker(a.page, c.peerId, 60_000)
    }, endAt)
    if (round === 1) {
      warmupMin = Math.max(WARMUP, minute())
      endAt = t0 + (warmupMin + MINUTES) * 60_000
      console.log(`  warm-up over at ${warmupMin.toFixed(1)} min; load runs until ${(warmupMin + MINUTES).toFixed(1)} min`)
    }
    console.log(`  round ${round} done at ${minute().toFixed(1)} min: ${Object.entries(stats.ok).map(([k, n]) => `${k} ${n}`).join(', ')}${Object.keys(stats.failed).length > 0 ? `; failed: ${Object.entries(stats.failed).map(([k, n]) => `${k} ${n} (${stats.lastError[k]})`).join(', ')}` : ''}`)
  }
  await sampler

  const growth = judge(samples, warmupMin, new Set(['tab-C']))
  console.log(`\n${COMMAND}`)
  console.log(`warm-up: ${warmupMin.toFixed(1)} min (--warmup ${WARMUP}, and at least the first round of load)`)
  console.log(`load: ${stats.rounds} rounds; ${Object.entries(stats.ok).map(([k, n]) => `${k} ×${n}`).join(', ')}${Object.keys(stats.failed).length > 0 ? `; FAILED: ${Object.entries(stats.failed).map(([k, n]) => `${k} ×${n} (last: ${stats.lastError[k]})`).join(', ')}` : ''}`)
  printTables(samples, growth, warmupMin)
  await mkdir(dirname(values.out), { recursive: true })
  await writeFile(values.out, JSON.stringify({ command: COMMAND, machine: { cpus: cpus().length, memGiB: totalmem() / 2 ** 30, node: process.version, chromium: version }, warmupMin, load: stats, samples, growth }, null, 2))
  console.log(`\nwrote ${values.out}`)
  if (values.plot != null) {
    await plot(context, samples, warmupMin, values.plot)
    console.log(`wrote ${values.plot}`)
  }
}

async function cleanup (): Promise<void> {
  stopping = true
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
}

/** --replot: the chart of a finished run, from its JSON. */
async function replot (json: string, file: string): Promise<void> {
  const run = JSON.parse(await readFile(json, 'utf8')) as { command: string, warmupMin: number, samples: Sample[] }
  COMMAND = run.command
  const browser = await chromium.launch({ executablePath: findChromium(), headless: true, args: CHROMIUM_FLAGS })
  cleanups.push(async () => { await browser.close() })
  await plot(await browser.newContext({ deviceScaleFactor: 1 }), run.samples, run.warmupMin, file)
  console.log(`\n${COMMAND}`)
  printTables(run.samples, judge(run.samples, run.warmupMin, new Set(['tab-C'])), run.warmupMin)
  console.log(`\nwrote ${file} from ${json}`)
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { void cleanup().finally(() => process.exit(130)) })
}
try {
  if (values.replot != null) {
    if (values.plot == null) throw new Error('--replot needs --plot FILE.png')
    await replot(values.replot, values.plot)
  } else {
    await main()
  }
} catch (err) {
  console.error(`bench:soak failed: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 1
} finally {
  await cleanup()
}
// node-datachannel and Chromium's pipes can keep the event loop alive after everything stopped.
process.exit()

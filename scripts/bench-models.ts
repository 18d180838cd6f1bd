/**
 * Real-model figures for `npm run bench` (issue #4), on the real app in Chromium tabs:
 *  1. per built-in model (digits, OCR detection on a sample page, OCR recognition on 4 of its
 *     lines): in-worker inference in a tab, warm, on the backend the tab picked, vs
 *     onnxruntime-node in this process at 1 and 2 threads on the same input;
 *  2. cold start vs warm: a model's first task on a tab that never ran it (load + per-model backend
 *     measurement, plus the P2P transfer for a custom model) vs the round trip of later tasks;
 *  3. model transfer throughput tab → tab over WebRTC (10.8 MB OCR rec model, fresh profile each);
 *  4. OCR pages per minute with 1 and 2 worker tabs, texts checked against the rendered ones.
 * `node --import tsx scripts/bench.ts --models-only` runs this part alone (after `npm run build`).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { relative } from 'node:path'
import { parseArgs } from 'node:util'
import { cpus } from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as ort from 'onnxruntime-node'
import { openTab, waitForWorker } from '../src/node/page-driver.js'
import { startAppServer } from '../src/node/app-server.js'
import { launchChromium } from '../src/node/chromium.js'
import { MODELS_DIR } from '../src/node/node-peer.js'
import { decodePng } from '../src/node/png.js'
import { heldOutDigits } from '../src/node/mnist.js'
import { builtinModel } from '../src/models/catalog.js'
import { DIGITS_INPUT } from '../src/models/digits.js'
import { detInput } from '../src/ocr/detect.js'
import { detectLines, recognizeBatches } from '../src/ocr/pipeline.js'
import { fromTypedArray, toTypedArray } from '../src/core/tensor.js'
import { fmt, summarize } from './stats.js'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { TabHandle } from '../src/node/page-driver.js'
import type { DTypeName, WireTensor } from '../src/core/tensor.js'
import type { ModelRunTiming } from '../src/browser/scripting.js'
import type { BackendChoice } from '../src/core/backend-picker.js'
import type { Target } from '../src/browser/tab-peer.js'
import type { Summary } from './stats.js'

const SAMPLES_DIR = fileURLToPath(new URL('../public/samples/ocr/', import.meta.url))
/** The page whose det input (768×320) and first rec batch (4 lines, 4×3×48×672) are measured. */
const PAGE = 'document.png'

export interface ModelsBenchOptions {
  browser: Browser
  /** The app server's URL (startAppServer). */
  url: string
  log?: (label: string, text: string) => void
  /** Timed in-worker and node runs per model (defaults: digits 300, OCR det/rec 30). */
  runs?: { digits?: number, det?: number, rec?: number }
  /** Tab → tab transfers of the 10.8 MB model, each to a fresh profile (default 3). */
  transfers?: number
  /** Pages per OCR throughput run (default 12: the 4 samples, 3 times). */
  ocrPages?: number
  /** Interleaved rounds of in-worker vs node runs per model (default 5): each ratio is a median over them. */
  rounds?: number
  /** The command line printed with the figures (default: this process's). */
  command?: string
  /** Only section 1 (in-worker vs onnxruntime-node per model). */
  speedOnly?: boolean
  /** Only the cold start vs warm section (2 + 3): `npm run bench -- --cold-only`. */
  coldOnly?: boolean
}

/** A tensor as it crosses into the page: bytes as base64 (a 3 MB number array is slow to serialise). */
interface PageTensor { name: string, dtype: DTypeName, dims: number[], b64: string }
type PageModel = { builtin: string } | { url: string, name: string, salt: string }
interface PageRun { runs: ModelRunTiming[], outputs: PageTensor[] }

declare global {
  interface Window {
    benchRun?: (model: PageModel, inputs: PageTensor[], count: number, target: Target) => Promise<PageRun>
  }
}

/**
 * Installed in each tab as plain JS (functions handed to page.evaluate must not carry the helpers
 * tsx adds to named functions). A `url` model is fetched by the page and made unique with an
 * appended ONNX doc_string field (protobuf field 6): a "custom" model with its own sha256, which
 * a peer can only get by transfer, never from the app's own built-ins.
 */
const PAGE_HELPERS = `
window.benchRun = async (model, inputs, count, target) => {
  const dec = (b64) => { const s = atob(b64); const a = new Array(s.length); for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); return a }
  const enc = (bytes) => { let s = ''; for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.slice(i, i + 0x8000)); return btoa(s) }
  let m = model
  if (model.url != null) {
    const res = await fetch(model.url)
    if (!res.ok) throw new Error(model.url + ': HTTP ' + res.status)
    const served = new Uint8Array(await res.arrayBuffer())
    const salt = new TextEncoder().encode(model.salt)
    if (salt.length > 127) throw new Error('salt too long')
    const bytes = new Uint8Array(served.length + 2 + salt.length)
    bytes.set(served)
    bytes[served.length] = 0x32
    bytes[served.length + 1] = salt.length
    bytes.set(salt, served.length + 2)
    m = { bytes, name: model.name }
  }
  const r = await window.p2pAgents.runModel(m, inputs.map(t => ({ name: t.name, dtype: t.dtype, dims: t.dims, bytes: dec(t.b64) })), count, target)
  return { runs: r.runs, outputs: r.outputs.map(o => ({ name: o.name, dtype: o.dtype, dims: o.dims, b64: enc(o.bytes) })) }
}`

const toPage = (t: WireTensor): PageTensor => ({ name: t.name, dtype: t.dtype, dims: t.dims, b64: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64') })
const fromPage = (t: PageTensor): WireTensor => ({ name: t.name, dtype: t.dtype, dims: t.dims, data: new Uint8Array(Buffer.from(t.b64, 'base64')) })

async function open (context: BrowserContext, url: string): Promise<TabHandle> {
  const tab = await openTab(context, url)
  await tab.page.evaluate(PAGE_HELPERS)
  return tab
}

async function runIn (page: Page, model: PageModel, inputs: WireTensor[], count: number, target: Target): Promise<PageRun> {
  return await page.evaluate(async ([m, i, n, t]) => await window.benchRun!(m, i, n, t), [model, inputs.map(toPage), count, target] as const)
}

/** Largest |a − b| over two float32 tensors (Infinity if their shapes differ). */
function maxAbsDiff (a: WireTensor, b: ort.Tensor): number {
  if (a.dims.join() !== b.dims.join()) return Infinity
  const x = toTypedArray(a) as Float32Array
  const y = b.data as Float32Array
  let d = 0
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]))
  return d
}

interface CpuSnapshot { total: number, busy: number, mine: number }

/**
 * CPU ticks (all cores) of the whole machine and of this process's tree (the relay, Chromium and
 * its tabs; reaped children count through cutime/cstime), from /proc; undefined off Linux.
 */
export function cpuSnapshot (): CpuSnapshot | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const total = f.reduce((a, b) => a + b, 0)
    const busy = total - f[3] - (f[4] ?? 0)
    const procs = new Map<number, { ppid: number, ticks: number }>()
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number) // from field 3 (state)
        procs.set(Number(name), { ppid: rest[1], ticks: rest[11] + rest[12] + rest[13] + rest[14] })
      } catch {
        // the process exited meanwhile
      }
    }
    const children = new Map<number, number[]>()
    for (const [pid, p] of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid])
    let mine = 0
    const stack = [process.pid]
    while (stack.length > 0) {
      const pid = stack.pop()!
      mine += procs.get(pid)?.ticks ?? 0
      stack.push(...(children.get(pid) ?? []))
    }
    return { total, busy, mine }
  } catch {
    return undefined
  }
}

/** /proc/<pid>/stat counts CPU in clock ticks of 10 ms (USER_HZ 100 on Linux). */
export const MS_PER_TICK = 10

interface CpuShare {
  /** Share of the whole machine (all cores) that was busy. */
  busy: number
  /** Share of the machine used by processes outside this bench (other users of a shared box). */
  others: number
}

/** Starts measuring; the returned function gives the shares since then (undefined off Linux). */
function cpuProbe (): () => CpuShare | undefined {
  const a = cpuSnapshot()
  return () => {
    const b = cpuSnapshot()
    if (a == null || b == null || b.total <= a.total) return undefined
    const span = b.total - a.total
    return { busy: (b.busy - a.busy) / span, others: Math.max(0, (b.busy - a.busy) - (b.mine - a.mine)) / span }
  }
}

const pct = (x: number | undefined): string => x == null ? '?' : `${(x * 100).toFixed(0)} %`

/** "wasm simd 1 thread (wasm simd 1 thread 130 ms, wasm simd 2 threads 320 ms)" */
function choiceText (c: BackendChoice | undefined, digits = 0): string {
  return c == null ? 'none' : `${c.backend} (${Object.entries(c.medians).map(([k, v]) => `${k} ${v.toFixed(digits)} ms`).join(', ')})`
}

interface Interleaved {
  /** In-worker inference ms, every timed run of every round. */
  inWorker: Summary
  selfRoundTrip: Summary
  threads1: Summary
  threads2: Summary
  /** Per round: in-worker p50 ÷ node p50 at 1 (and 2) threads, taken in that same round. */
  overNode1: Summary
  overNode2: Summary
  /**
   * CPU ms per run (all threads), which other load on a shared machine barely changes (wall
   * time counts the waits for a core): the tab's from this process tree (Chromium's processes;
   * undefined off Linux), node's from process.cpuUsage. Per round, as medians over rounds.
   */
  cpuPerRun?: { inWorker: Summary, node1: Summary, overNode1: Summary }
  /** The tab's last run and node's last output (1 thread), to compare. */
  last: PageRun
  output: ort.Tensor
}

/**
 * In-worker (the tab's own tasks) vs onnxruntime-node at 1 and 2 intra-op threads on the same
 * model and input, warm, in `rounds` interleaved rounds of runs/rounds runs each: the tab, then
 * node at 1 and at 2 threads. Load from other processes on a shared machine then weighs on both
 * sides of a ratio alike, and the ratio's spread over the rounds shows how much it did.
 */
async function interleaved (page: Page, id: string, file: string, inputs: WireTensor[], runs: number, warmup: number, rounds: number): Promise<Interleaved> {
  const feeds = Object.fromEntries(inputs.map(t => [t.name, new ort.Tensor(t.dtype, toTypedArray(t) as Float32Array, t.dims)]))
  const sessions = [] as ort.InferenceSession[]
  try {
    for (const threads of [1, 2]) {
      const session = await ort.InferenceSession.create(MODELS_DIR + file, { intraOpNumThreads: threads, interOpNumThreads: 1 })
      sessions.push(session)
      for (let i = 0; i < warmup; i++) await session.run(feeds)
    }
    const perRound = Math.max(1, Math.round(runs / rounds))
    const worker: ModelRunTiming[] = []
    const node: number[][] = [[], []]
    const ratios: number[][] = [[], []]
    const cpu = { tab: [] as number[], node: [] as number[] }
    let last: PageRun | undefined
    let output: ort.Tensor | undefined
    for (let round = 0; round < rounds; round++) {
      const before = cpuSnapshot()
      last = await runIn(page, { builtin: id }, inputs, perRound, { kind: 'self' })
      const after = cpuSnapshot()
      if (before != null && after != null) cpu.tab.push((after.mine - before.mine) * MS_PER_TICK / perRound)
      worker.push(...last.runs)
      const tab = summarize(last.runs.map(t => t.inferenceMs)).p50
      for (const k of [0, 1]) {
        const times: number[] = []
        const cpu0 = process.cpuUsage()
        for (let i = 0; i < perRound; i++) {
          const t0 = performance.now()
          const out = await sessions[k].run(feeds)
          times.push(performance.now() - t0)
          if (k === 0) output = out[sessions[k].outputNames[0]]
        }
        const used = process.cpuUsage(cpu0)
        if (k === 0) cpu.node.push((used.user + used.system) / 1000 / perRound)
        node[k].push(...times)
        ratios[k].push(tab / summarize(times).p50)
      }
    }
    return {
      inWorker: summarize(worker.map(t => t.inferenceMs)),
      selfRoundTrip: summarize(worker.map(t => t.roundTripMs)),
      threads1: summarize(node[0]),
      threads2: summarize(node[1]),
      overNode1: summarize(ratios[0]),
      overNode2: summarize(ratios[1]),
      cpuPerRun: cpu.tab.length === rounds
        ? { inWorker: summarize(cpu.tab), node1: summarize(cpu.node), overNode1: summarize(cpu.tab.map((t, i) => t / cpu.node[i])) }
        : undefined,
      last: last!,
      output: output!
    }
  } finally {
    for (const session of sessions) await session.release()
  }
}

/** "p50 1.42× (min 1.30×, max 1.61×, 5 rounds)" */
const ratioText = (s: Summary): string => `p50 ${s.p50.toFixed(2)}× (min ${s.min.toFixed(2)}×, max ${s.max.toFixed(2)}×, ${s.n} rounds)`

export async function benchModels (o: ModelsBenchOptions): Promise<Record<string, unknown>> {
  const log = o.log ?? ((label: string, text: string) => { console.log(`${label.padEnd(34)} ${text}`) })
  const RUNS = { digits: o.runs?.digits ?? 300, det: o.runs?.det ?? 30, rec: o.runs?.rec ?? 30 }
  const TRANSFERS = o.transfers ?? 3
  const ROUNDS = o.rounds ?? 5
  const COMMAND = o.command ?? `node ${process.execArgv.join(' ')} ${process.argv.slice(1).map(a => relative(process.cwd(), a) || a).join(' ')}`
  const OCR_PAGES = o.ocrPages ?? 12
  const contexts: BrowserContext[] = []
  // Each context is a browser profile of its own (own Cache Storage): like another device.
  const profile = async (): Promise<BrowserContext> => {
    const c = await o.browser.newContext()
    contexts.push(c)
    return c
  }
  const results: Record<string, unknown> = {}

  try {
    // Inputs, made with the project's own OCR pre-processing on a sample page.
    const img = decodePng(new Uint8Array(await readFile(SAMPLES_DIR + PAGE)))
    const det = detInput(img)
    const detSession = await ort.InferenceSession.create(MODELS_DIR + 'ocr-det.onnx')
    const detOut = (await detSession.run({ x: new ort.Tensor('float32', toTypedArray(det.tensor) as Float32Array, det.tensor.dims) }))[detSession.outputNames[0]]
    await detSession.release()
    const lines = detectLines(img, det, fromTypedArray('map', 'float32', [...detOut.dims], detOut.data as Float32Array))
    const batch = recognizeBatches(lines.map(l => l.crop), 4).find(b => b.indices.length === 4)
    if (batch == null) throw new Error(`${PAGE}: fewer than 4 text lines detected`)
    const digit = fromTypedArray(DIGITS_INPUT, 'float32', [1, 1, 28, 28], heldOutDigits()[0].pixels)
    const cases = [
      { id: 'digits', label: 'digits CNN, 1×1×28×28', inputs: [digit], runs: RUNS.digits, warmup: 50 },
      { id: 'ocr-det', label: `OCR det, ${PAGE} ${det.width}×${det.height}`, inputs: [det.tensor], runs: RUNS.det, warmup: 5 },
      { id: 'ocr-rec', label: `OCR rec, 4 lines ${batch.tensor.dims.slice(2).reverse().join('×')}`, inputs: [batch.tensor], runs: RUNS.rec, warmup: 5 }
    ]

    // 1. In-worker (one fresh tab running its own tasks: 'self') vs onnxruntime-node.
    console.log(`\nReal models (issue #4): in-worker vs onnxruntime-node, warm, same input, ${ROUNDS} interleaved rounds\n${COMMAND}`)
    const r = await open(await profile(), o.url)
    await r.page.bringToFront()
    const perModel: Record<string, unknown> = {}
    const coldSelf: Record<string, unknown> = {}
    for (const c of o.coldOnly === true ? [] : cases) {
      const model = builtinModel(c.id)
      const probe = cpuProbe()
      // The model's first task on this tab: session creation + the per-model backend measurement.
      const cold = (await runIn(r.page, { builtin: c.id }, c.inputs, 1, { kind: 'self' })).runs[0]
      await runIn(r.page, { builtin: c.id }, c.inputs, 3, { kind: 'self' })
      const ref = await interleaved(r.page, c.id, model.file, c.inputs, c.runs, c.warmup, ROUNDS)
      const { inWorker, selfRoundTrip, last: warm } = ref
      const choice = (await r.page.evaluate(() => window.p2pAgents.backendChoices()))[model.sha256] as BackendChoice | undefined
      const cpu = probe()
      const diff = maxAbsDiff(fromPage(warm.outputs[0]), ref.output)
      const digits = c.id === 'digits' ? 3 : 1
      console.log(`${c.label}`)
      log(`  in-worker (${warm.runs[0].backend})`, fmt(inWorker, 'ms', digits))
      log('  onnxruntime-node, 1 thread', fmt(ref.threads1, 'ms', digits))
      log('  onnxruntime-node, 2 threads', fmt(ref.threads2, 'ms', digits))
      log('  in-worker ÷ node 1 thread', `${ratioText(ref.overNode1)}  (outputs differ by ≤ ${diff.toExponential(1)})`)
      log('  in-worker ÷ node 2 threads', ratioText(ref.overNode2))
      // (A run of a tiny model costs less CPU than the page's own work around it: not worth a line.)
      if (ref.cpuPerRun != null && inWorker.p50 >= 20) log('  CPU per run: tab / node 1 thread', `${fmt(ref.cpuPerRun.inWorker, 'ms', 0)} / ${fmt(ref.cpuPerRun.node1, 'ms', 0)} → ${ratioText(ref.cpuPerRun.overNode1)}`)
      log('  backend chosen (medians measured)', choiceText(choice, digits))
      if (cpu != null && cpu.others > 0.05) log('  (shared box) other processes used', `${pct(cpu.others)} of the machine's CPU meanwhile: figures may be inflated`)
      log('  cold first task on this tab', `load ${cold.loadMs.toFixed(0)} ms + inference ${cold.inferenceMs.toFixed(digits)} ms = ${cold.roundTripMs.toFixed(0)} ms round trip (warm: ${selfRoundTrip.p50.toFixed(digits)} ms)`)
      perModel[c.id] = {
        input: c.inputs[0].dims,
        backend: warm.runs[0].backend,
        backendMedians: choice?.medians,
        inWorkerInferenceMs: inWorker,
        selfRoundTripMs: selfRoundTrip,
        nodeInferenceMs: { threads1: ref.threads1, threads2: ref.threads2 },
        inWorkerOverNode1: ref.overNode1,
        inWorkerOverNode2: ref.overNode2,
        cpuPerRunMs: ref.cpuPerRun,
        maxAbsDiffVsNode: diff,
        cpu
      }
      coldSelf[c.id] = { firstRoundTripMs: cold.roundTripMs, firstLoadMs: cold.loadMs, firstInferenceMs: cold.inferenceMs, warmRoundTripP50Ms: selfRoundTrip.p50 }
    }
    results.perModel = perModel
    results.coldSelf = coldSelf
    if (o.speedOnly === true) return results

    // 2 + 3. Cold vs warm from another tab, and model transfer: tab R asks a fresh profile's tab W
    // to run the built-in det model (no transfer) and the rec model as a custom model (transfer).
    console.log(`\nCold start vs warm, tab R → fresh tab W (new profile), ${TRANSFERS} times`)
    const rounds: Array<Record<string, number>> = []
    const roundChoices: Array<{ det?: BackendChoice, rec?: BackendChoice }> = []
    const probe2 = cpuProbe()
    for (let i = 0; i < TRANSFERS; i++) {
      const ctx = await profile()
      const w = await open(ctx, o.url)
      await waitForWorker(r.page, w.peerId)
      const peer: Target = { kind: 'peer', peerId: w.peerId }
      const detCold = (await runIn(r.page, { builtin: 'ocr-det' }, [det.tensor], 1, peer)).runs[0]
      const detWarm = (await runIn(r.page, { builtin: 'ocr-det' }, [det.tensor], 5, peer)).runs
      const custom: PageModel = { url: '/models/ocr-rec.onnx', name: `ocr-rec-custom-${i}.onnx`, salt: `bench ${Date.now()} ${i}` }
      const recCold = (await runIn(r.page, custom, [batch.tensor], 1, peer)).runs[0]
      const recWarm = (await runIn(r.page, custom, [batch.tensor], 5, peer)).runs
      const fetches = await w.page.evaluate(() => window.p2pAgents.modelFetches())
      const fetched = fetches.find(f => f.name === custom.name)
      if (fetched == null) throw new Error(`tab W did not fetch ${custom.name} from a peer: ${JSON.stringify(fetches)}`)
      if (fetched.from !== r.peerId) throw new Error(`tab W fetched ${custom.name} from ${fetched.from}, not from tab R`)
      const choices = await w.page.evaluate(() => window.p2pAgents.backendChoices())
      roundChoices.push({ det: choices[builtinModel('ocr-det').sha256], rec: choices[fetched.sha256] })
      log(`  W${i + 1}: backends chosen`, `det ${choiceText(choices[builtinModel('ocr-det').sha256])}; rec ${choiceText(choices[fetched.sha256])}`)
      const p50 = (xs: ModelRunTiming[], k: keyof ModelRunTiming): number => summarize(xs.map(x => x[k] as number)).p50
      rounds.push({
        detFirstRoundTripMs: detCold.roundTripMs,
        detFirstLoadMs: detCold.loadMs,
        detFirstQueueMs: detCold.queueMs,
        detFirstOutsideWorkerMs: detCold.roundTripMs - detCold.totalMs,
        detWarmRoundTripMs: p50(detWarm, 'roundTripMs'),
        detWarmInferenceMs: p50(detWarm, 'inferenceMs'),
        detWarmOutsideWorkerMs: summarize(detWarm.map(x => x.roundTripMs - x.totalMs)).p50,
        recFirstRoundTripMs: recCold.roundTripMs,
        recFirstLoadMs: recCold.loadMs,
        recFirstQueueMs: recCold.queueMs,
        recFirstOutsideWorkerMs: recCold.roundTripMs - recCold.totalMs,
        recWarmRoundTripMs: p50(recWarm, 'roundTripMs'),
        recWarmInferenceMs: p50(recWarm, 'inferenceMs'),
        recWarmOutsideWorkerMs: summarize(recWarm.map(x => x.roundTripMs - x.totalMs)).p50,
        transferMs: fetched.ms,
        transferBytes: fetched.size,
        transferMBps: fetched.size / 1e6 / (fetched.ms / 1000)
      })
      await ctx.close()
      contexts.splice(contexts.indexOf(ctx), 1)
    }
    const cpu2 = probe2()
    const med = (k: string): Summary => summarize(rounds.map(x => x[k]))
    const cold = Object.fromEntries(Object.keys(rounds[0]).map(k => [k, med(k)]))
    log('OCR det (built-in): first task', `${fmt(cold.detFirstRoundTripMs, 'ms', 0)}; load ${cold.detFirstLoadMs.p50.toFixed(0)} ms, queue ${cold.detFirstQueueMs.p50.toFixed(0)} ms, outside W ${cold.detFirstOutsideWorkerMs.p50.toFixed(0)} ms`)
    log('  warm task (round trip)', `${cold.detWarmRoundTripMs.p50.toFixed(0)} ms, of which inference ${cold.detWarmInferenceMs.p50.toFixed(0)} ms, outside W ${cold.detWarmOutsideWorkerMs.p50.toFixed(0)} ms → cold/warm ${(cold.detFirstRoundTripMs.p50 / cold.detWarmRoundTripMs.p50).toFixed(1)}×`)
    log('OCR rec (custom, 10.8 MB): first', `${fmt(cold.recFirstRoundTripMs, 'ms', 0)}; load ${cold.recFirstLoadMs.p50.toFixed(0)} ms (transfer ${cold.transferMs.p50.toFixed(0)} ms), queue ${cold.recFirstQueueMs.p50.toFixed(0)} ms, outside W ${cold.recFirstOutsideWorkerMs.p50.toFixed(0)} ms`)
    log('  warm task (round trip)', `${cold.recWarmRoundTripMs.p50.toFixed(0)} ms, of which inference ${cold.recWarmInferenceMs.p50.toFixed(0)} ms, outside W ${cold.recWarmOutsideWorkerMs.p50.toFixed(0)} ms → cold/warm ${(cold.recFirstRoundTripMs.p50 / cold.recWarmRoundTripMs.p50).toFixed(1)}×`)
    log('model transfer tab → tab (WebRTC)', `${fmt(cold.transferMBps, 'MB/s', 1)}; ${(rounds[0].transferBytes / 1e6).toFixed(1)} MB in p50 ${cold.transferMs.p50.toFixed(0)} ms`)
    if (cpu2 != null && cpu2.others > 0.05) log('(shared box) other processes used', `${pct(cpu2.others)} of the machine's CPU meanwhile: figures may be inflated`)
    results.coldVsWarm = { rounds, backendChoices: roundChoices, summary: cold, cpu: cpu2 }
    if (o.coldOnly === true) return results

    // 4. OCR throughput: tab R (not working itself) reads pages through 1, then 2 worker tabs.
    console.log('\nOCR pages per minute, requester tab R → worker tabs')
    const samples = JSON.parse(await readFile(SAMPLES_DIR + 'samples.json', 'utf8')) as Array<{ file: string, lines: string[] }>
    const files = Array.from({ length: OCR_PAGES }, (_, i) => samples[i % samples.length].file)
    const expected = new Map(samples.map(s => [s.file, s.lines.join('\n')]))
    const warmUp = async (w: TabHandle): Promise<void> => {
      await waitForWorker(r.page, w.peerId)
      const peer: Target = { kind: 'peer', peerId: w.peerId }
      await runIn(r.page, { builtin: 'ocr-det' }, [det.tensor], 1, peer)
      await runIn(r.page, { builtin: 'ocr-rec' }, [batch.tensor], 1, peer)
      const choices = await w.page.evaluate(() => window.p2pAgents.backendChoices())
      log(`  W${workers.length}: backends chosen`, `det ${choiceText(choices[builtinModel('ocr-det').sha256])}; rec ${choiceText(choices[builtinModel('ocr-rec').sha256])}`)
    }
    const ocr: Record<string, unknown> = {}
    const cores = cpus().length
    const workers: TabHandle[] = []
    for (const n of [1, 2]) {
      const w = await open(await profile(), o.url)
      workers.push(w)
      await warmUp(w)
      if (n === 1) await r.page.evaluate(async () => await window.p2pAgents.ocrSamples(['receipt.png']))
      const probe4 = cpuProbe()
      const run = await r.page.evaluate(async (f) => await window.p2pAgents.ocrSamples(f), files)
      const cpu = probe4()
      // CPU the whole bench spent per page (both cores count): what a page costs on this box.
      const cpuPerPage = cpu != null ? (cpu.busy - cpu.others) * cores * run.seconds / files.length : undefined
      const mismatches = run.texts.map((text, i) => ({ file: files[i], text })).filter(x => x.text !== expected.get(x.file))
      const perMinute = files.length / run.seconds * 60
      const perPeer = Object.fromEntries(workers.map((w, k) => [`W${k + 1}`, run.perPeer[w.peerId] ?? 0]))
      log(`${n} worker tab${n > 1 ? 's' : ''}`, `${perMinute.toFixed(1)} pages/min (${files.length} pages in ${run.seconds.toFixed(2)} s; tasks ${Object.entries(perPeer).map(([k, v]) => `${k} ${v}`).join(', ')}; CPU ${pct(cpu?.busy)} busy, others ${pct(cpu?.others)}, ${cpuPerPage?.toFixed(2) ?? '?'} core-s per page; ${mismatches.length} text mismatches)`)
      for (const m of mismatches) console.log(`    mismatch ${m.file}: ${JSON.stringify(m.text)}`)
      ocr[`workers${n}`] = { pages: files.length, seconds: run.seconds, pagesPerMinute: perMinute, tasksPerWorker: perPeer, cpu, cpuSecondsPerPage: cpuPerPage, mismatches }
    }
    const speedUp = (ocr.workers2 as { pagesPerMinute: number }).pagesPerMinute / (ocr.workers1 as { pagesPerMinute: number }).pagesPerMinute
    log('speed-up, 2 workers vs 1', `${speedUp.toFixed(2)}×`)
    results.ocr = { ...ocr, speedUp }
    return results
  } finally {
    for (const c of contexts) await c.close().catch(() => {})
  }
}

// Section 1 alone, against the build in P2P_APP_DIR (default dist):
//   node --import tsx scripts/bench-models.ts [--rounds 5] [--det 30] [--rec 30] [--digits 300]
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, det: { type: 'string', default: '30' }, rec: { type: 'string', default: '30' }, digits: { type: 'string', default: '300' } } })
  const command = `${process.env.P2P_APP_DIR != null ? `P2P_APP_DIR=${process.env.P2P_APP_DIR} ` : ''}node --import tsx scripts/bench-models.ts --rounds ${values.rounds} --det ${values.det} --rec ${values.rec} --digits ${values.digits}`
  const server = await startAppServer()
  const browser = await launchChromium()
  const stop = (): void => {
    void browser.close().catch(() => {}).finally(() => { void server.stop().finally(() => process.exit(130)) })
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    console.log(`${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, Chromium ${browser.version()}`)
    await benchModels({ browser, url: server.url, command, speedOnly: true, rounds: Number(values.rounds), runs: { det: Number(values.det), rec: Number(values.rec), digits: Number(values.digits) } })
  } finally {
    await browser.close().catch(() => {})
    await server.stop()
  }
}

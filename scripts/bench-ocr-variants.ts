/**
 * A/B of onnxruntime-web options and model variants for the OCR models in a Chromium Web Worker
 * (WASM), against onnxruntime-node at 1 thread on the package's original model, same input, same run:
 *
 *   node --import tsx scripts/bench-ocr-variants.ts [--model det|rec] [--rounds 5] [--runs 3]
 *
 * Each variant is a session in a worker of its own page (one page per WASM thread count: onnxruntime
 * reads it once). Rounds are interleaved and rotate the variants' order, so load from other processes
 * weighs on all of them alike; besides wall time, each variant's CPU per run (the browser's processes,
 * from /proc) is printed, which such load barely changes. The variant the build ships is "fused"
 * (src/ocr/fuse-graph.ts); `scripts/bench-models.ts` measures the shipped app itself.
 */
import { createServer } from 'node:http'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createRequire } from 'node:module'
import * as ort from 'onnxruntime-node'
import { launchChromium } from '../src/node/chromium.js'
import { packageAssetsDir } from '../src/node/ocr-assets.js'
import { decodePng } from '../src/node/png.js'
import { toTypedArray } from '../src/core/tensor.js'
import { detInput } from '../src/ocr/detect.js'
import { detectLines, recognizeBatches } from '../src/ocr/pipeline.js'
import { fromTypedArray } from '../src/core/tensor.js'
import { fuseForWasm } from '../src/ocr/fuse-graph.js'
import { cpuSnapshot, MS_PER_TICK } from './bench-models.js'
import { summarize } from './stats.js'
import type { Page } from 'playwright-core'

const { values } = parseArgs({ options: { model: { type: 'string', default: 'det' }, rounds: { type: 'string', default: '5' }, runs: { type: 'string', default: '3' } } })
const WHICH = values.model === 'rec' ? 'rec' : 'det'
const ROUNDS = Number(values.rounds)
const RUNS = Number(values.runs)
const COMMAND = `node --import tsx scripts/bench-ocr-variants.ts --model ${WHICH} --rounds ${ROUNDS} --runs ${RUNS}`

const ORT_DIST = join(createRequire(import.meta.url).resolve('onnxruntime-web'), '../')
const SOURCE = { det: 'ch_PP-OCRv4_det_infer.onnx', rec: 'ch_PP-OCRv4_rec_infer.onnx' }[WHICH]
const original = new Uint8Array(readFileSync(join(packageAssetsDir(), SOURCE)))
const MODELS: Record<string, Uint8Array> = { original, fused: fuseForWasm(original).bytes }

interface Variant { label: string, model: string, threads: number, options: Record<string, unknown> }
const wasm = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' }
// (Also tried, none better: enableCpuMemArena false, freeDimensionOverrides { batch: 1 } and fixed
// det dims, graphOptimizationLevel 'basic' and 'extended'; the 'xnnpack' provider is not in this build.)
const VARIANTS: Variant[] = [
  { label: 'original, 1 thread (before)', model: 'original', threads: 1, options: wasm },
  { label: 'fused, 1 thread (shipped)', model: 'fused', threads: 1, options: wasm },
  { label: 'fused, no memory pattern', model: 'fused', threads: 1, options: { ...wasm, enableMemPattern: false } },
  { label: 'original, 2 threads (before)', model: 'original', threads: 2, options: wasm },
  { label: 'fused, 2 threads (shipped)', model: 'fused', threads: 2, options: wasm },
  { label: 'fused, 2 threads, no spinning', model: 'fused', threads: 2, options: { ...wasm, extra: { session: { intra_op: { allow_spinning: '0' } } } } }
]

// The input: the det input of the sample page, or the first batch of 4 of its lines for rec.
const img = decodePng(new Uint8Array(readFileSync(new URL('../public/samples/ocr/document.png', import.meta.url))))
const det = detInput(img)
let input = det.tensor
if (WHICH === 'rec') {
  const s = await ort.InferenceSession.create(MODELS.original, { intraOpNumThreads: 1 })
  const map = (await s.run({ x: new ort.Tensor('float32', toTypedArray(det.tensor) as Float32Array, det.tensor.dims) }))[s.outputNames[0]]
  await s.release()
  const lines = detectLines(img, det, fromTypedArray('map', 'float32', [...map.dims], map.data as Float32Array))
  input = recognizeBatches(lines.map(l => l.crop), 4)[0].tensor
}
const data = toTypedArray(input) as Float32Array

const WORKER = `
import * as ort from '/ort/ort.wasm.min.mjs'
ort.env.wasm.wasmPaths = '/ort/'
const sessions = {}
let input
self.onmessage = async ({ data: m }) => {
  try {
    if (m.threads != null) { ort.env.wasm.numThreads = m.threads; self.postMessage({ isolated: self.crossOriginIsolated }); return }
    if (m.create != null) {
      const bytes = new Uint8Array(await (await fetch('/models/' + m.model)).arrayBuffer())
      sessions[m.create] = await ort.InferenceSession.create(bytes, m.options)
      self.postMessage({}); return
    }
    input ??= new Float32Array(await (await fetch('/input')).arrayBuffer())
    const s = sessions[m.run]
    const times = []
    let out
    for (let i = 0; i < m.n; i++) {
      const t0 = performance.now()
      out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', input, m.dims) })
      times.push(performance.now() - t0)
    }
    self.postMessage({ times, out: Array.from(out[s.outputNames[0]].data.subarray(0, 1 << 18)) })
  } catch (err) { self.postMessage({ error: String(err?.stack ?? err) }) }
}`
const PAGE = `<!doctype html><script type=module>
const w = new Worker('/worker.mjs', { type: 'module' })
let pending
w.onmessage = (e) => pending(e.data)
w.onerror = (e) => pending({ error: 'worker: ' + (e.message ?? 'failed to start') })
window.call = (m) => new Promise(resolve => { pending = resolve; w.postMessage(m) })
</script>`

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0]
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
  let body: Uint8Array | string | undefined
  let type = 'application/octet-stream'
  try {
    if (path === '/') [body, type] = [PAGE, 'text/html']
    else if (path === '/worker.mjs') [body, type] = [WORKER, 'text/javascript']
    else if (path === '/input') body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    else if (path.startsWith('/models/')) body = MODELS[path.slice(8)]
    else if (/^\/ort\/[\w.-]+$/.test(path)) [body, type] = [readFileSync(ORT_DIST + path.slice(5)), path.endsWith('.wasm') ? 'application/wasm' : 'text/javascript']
  } catch { /* a file this page does not need (e.g. a source map): 404 */ }
  if (body == null && path !== '/favicon.ico') console.error(`404 ${path}`)
  res.writeHead(body == null ? 404 : 200, body == null ? headers : { ...headers, 'Content-Type': type })
  res.end(body)
})
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`
const browser = await launchChromium()
const stop = (): void => { void browser.close().catch(() => {}).finally(() => { server.close(); process.exit(130) }) }
process.once('SIGINT', stop)
process.once('SIGTERM', stop)

type Reply = { times: number[], out: number[] } & { error?: string, isolated?: boolean }
const call = async (page: Page, m: unknown): Promise<Reply> => {
  const r = await page.evaluate(async (msg) => await (window as unknown as { call: (x: unknown) => Promise<unknown> }).call(msg), m) as Reply
  if (r.error != null) throw new Error(r.error)
  return r
}

try {
  console.log(`${COMMAND}\nOCR ${WHICH}, input ${input.dims.join('×')}; ${ROUNDS} interleaved rounds of ${RUNS} runs per variant; node: onnxruntime-node 1 thread, original model`)
  const pages = new Map<number, Page>()
  for (const v of VARIANTS) {
    if (!pages.has(v.threads)) {
      const page = await browser.newPage()
      page.on('console', m => { if (m.type() === 'error') console.error(`page: ${m.text()}`) })
      await page.goto(url)
      await page.waitForFunction(() => 'call' in window)
      if ((await call(page, { threads: v.threads })).isolated !== true) throw new Error('the page is not cross-origin isolated: no WASM threads')
      pages.set(v.threads, page)
    }
    await call(pages.get(v.threads)!, { create: v.label, model: v.model, options: v.options })
    await call(pages.get(v.threads)!, { run: v.label, n: 2, dims: input.dims })
    console.log(`  ready: ${v.label}`)
  }
  const node = await ort.InferenceSession.create(original, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  const feeds = { [node.inputNames[0]]: new ort.Tensor('float32', data, input.dims) }
  const reference = (await node.run(feeds))[node.outputNames[0]].data as Float32Array
  const wall = new Map<string, number[]>(VARIANTS.map(v => [v.label, []]))
  const cpu = new Map<string, number[]>(VARIANTS.map(v => [v.label, []]))
  const ratio = new Map<string, number[]>(VARIANTS.map(v => [v.label, []]))
  const cpuRatio = new Map<string, number[]>(VARIANTS.map(v => [v.label, []]))
  const diff = new Map<string, number>()
  const nodeWall: number[] = []
  const nodeCpu: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    console.log(`  round ${round + 1} of ${ROUNDS}`)
    const times: number[] = []
    const c0 = process.cpuUsage()
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now()
      await node.run(feeds)
      times.push(performance.now() - t0)
    }
    const used = process.cpuUsage(c0)
    const nodeP50 = summarize(times).p50
    const nodeCpuRun = (used.user + used.system) / 1000 / RUNS
    nodeWall.push(...times)
    nodeCpu.push(nodeCpuRun)
    const order = [...VARIANTS.slice(round % VARIANTS.length), ...VARIANTS.slice(0, round % VARIANTS.length)]
    for (const v of order) {
      const before = cpuSnapshot()
      const r = await call(pages.get(v.threads)!, { run: v.label, n: RUNS, dims: input.dims })
      const after = cpuSnapshot()
      wall.get(v.label)!.push(...r.times)
      ratio.get(v.label)!.push(summarize(r.times).p50 / nodeP50)
      if (before != null && after != null) {
        const perRun = (after.mine - before.mine) * MS_PER_TICK / RUNS
        cpu.get(v.label)!.push(perRun)
        cpuRatio.get(v.label)!.push(perRun / nodeCpuRun)
      }
      let d = 0
      for (let i = 0; i < r.out.length; i++) d = Math.max(d, Math.abs(r.out[i] - reference[i]))
      diff.set(v.label, d)
    }
  }
  await node.release()
  const range = (xs: number[], digits: number, unit = ''): string => {
    if (xs.length === 0) return '?'
    const s = summarize(xs)
    return `${s.p50.toFixed(digits)}${unit} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`
  }
  console.log(`\n${'variant'.padEnd(34)} ${'wall p50 (min–max) ms'.padEnd(24)} ${'÷ node wall'.padEnd(20)} ${'CPU/run ms'.padEnd(18)} ${'÷ node CPU'.padEnd(20)} max |Δ| vs node`)
  console.log(`${'onnxruntime-node, 1 thread'.padEnd(34)} ${range(nodeWall, 1).padEnd(24)} ${''.padEnd(20)} ${range(nodeCpu, 0).padEnd(18)}`)
  for (const v of VARIANTS) {
    console.log(`${v.label.padEnd(34)} ${range(wall.get(v.label)!, 1).padEnd(24)} ${range(ratio.get(v.label)!, 2, '×').padEnd(20)} ${range(cpu.get(v.label)!, 0).padEnd(18)} ${range(cpuRatio.get(v.label)!, 2, '×').padEnd(20)} ${diff.get(v.label)?.toExponential(1)}`)
  }
} finally {
  await browser.close().catch(() => {})
  server.close()
}

/**
 * `npm run bench`: measures the two-tab MVP on real parts and prints + writes the figures.
 *  - page open → ready to work, over N fresh tabs (p50/p95)
 *  - direct WebRTC dial time between tabs
 *  - per-task overhead = round trip − in-worker inference, over ≥ 1,000 digit tasks tab → tab
 *  - the digit model's in-worker inference time vs onnxruntime-node in this same run (ratio)
 *  - batch jobs (scripts/bench-batch.ts): throughput to 4 Node workers, scheduler scaling,
 *    lost-worker detection, verification overhead
 *  - real models (scripts/bench-models.ts): in-worker vs onnxruntime-node per built-in model,
 *    cold start vs warm, model transfer over WebRTC, OCR pages per minute with 1 and 2 worker tabs
 * Options: --tabs N (default 10), --tasks N (default 1000), --batch-tasks N (default 10000),
 * --kills N (default 3), --models-only (skip everything before the real-model section), --out FILE.
 */
import '../src/node/polyfill.js'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { startAppServer } from '../src/node/app-server.js'
import { launchChromium } from '../src/node/chromium.js'
import { heldOutDigits } from '../src/node/mnist.js'
import { openTab, waitForDirectPeer } from '../src/node/page-driver.js'
import { MODELS_DIR } from '../src/node/node-peer.js'
import { DIGITS_INPUT } from '../src/models/digits.js'
import { fmt, summarize } from './stats.js'
import { benchBatch } from './bench-batch.js'
import { benchModels } from './bench-models.js'
import type { DigitTaskTiming } from '../src/browser/scripting.js'
import '../src/browser/scripting.js'
import type { Summary } from './stats.js'

const { values } = parseArgs({
  options: {
    tabs: { type: 'string', default: '10' },
    tasks: { type: 'string', default: '1000' },
    'batch-tasks': { type: 'string', default: '10000' },
    kills: { type: 'string', default: '3' },
    'models-only': { type: 'boolean', default: false },
    out: { type: 'string', default: `bench-results/bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})
const TABS = Number(values.tabs)
const TASKS = Number(values.tasks)
const BATCH_TASKS = Number(values['batch-tasks'])
const KILLS = Number(values.kills)
const MODELS_ONLY = values['models-only']

const results: Record<string, unknown> = {}
const log = (label: string, text: string): void => { console.log(`${label.padEnd(34)} ${text}`) }

const server = await startAppServer()
const browser = await launchChromium()
try {
  console.log(`P2P AI Agents bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, Chromium ${browser.version()}`)
  Object.assign(results, {
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memGiB: totalmem() / 2 ** 30, node: process.version, chromium: browser.version() },
    command: MODELS_ONLY ? 'npm run bench -- --models-only' : `npm run bench -- --tabs ${TABS} --tasks ${TASKS} --batch-tasks ${BATCH_TASKS} --kills ${KILLS}`
  })
  if (!MODELS_ONLY) await benchMvpAndBatch()
  // 6. Real models, model transfer and OCR (issue #4).
  results.models = await benchModels({ browser, url: server.url, log })

  await mkdir('bench-results', { recursive: true }).catch(() => {})
  await writeFile(values.out, JSON.stringify(results, null, 2))
  console.log(`\nwrote ${values.out}`)
} finally {
  await browser.close().catch(() => {})
  await server.stop()
}
// The batch section's Node peers load node-datachannel, whose native threads keep the event loop
// alive after every peer has stopped.
process.exit(0)

/** Sections 1–5: the two-tab MVP (issue #2) and batch jobs (issue #3). */
async function benchMvpAndBatch (): Promise<void> {
  console.log('')
  const context = await browser.newContext()

  // One long-lived worker tab; every measured tab joins a network that already has a peer.
  const b = await openTab(context, server.url)
  await b.page.bringToFront()

  // 1. Page open → ready, and 2. direct dial time, over fresh tabs.
  const ready: number[] = []
  const dials: number[] = []
  for (let i = 0; i < TABS; i++) {
    const t = await openTab(context, server.url)
    ready.push((await t.page.evaluate(() => window.p2pAgents.readyMs()))!)
    await waitForDirectPeer(t.page, b.peerId)
    dials.push(...await t.page.evaluate(() => window.p2pAgents.dialTimes()))
    await t.page.close()
  }
  dials.push(...await b.page.evaluate(() => window.p2pAgents.dialTimes()))
  const readyS = summarize(ready)
  const dialS = summarize(dials)
  log('page open → ready to work', fmt(readyS, 'ms', 0))
  log('direct WebRTC dial (tab ↔ tab)', fmt(dialS, 'ms', 0))

  // 3. Per-task overhead, tab A → tab B, sequential tasks on a warm connection and session.
  const a = await openTab(context, server.url)
  await waitForDirectPeer(a.page, b.peerId)
  const digit = heldOutDigits()[0]
  const pixels = Array.from(digit.pixels)
  const run = async (count: number): Promise<DigitTaskTiming[]> => await a.page.evaluate(
    async ([px, peerId, n]) => await window.p2pAgents.runDigits(px, n, { kind: 'peer', peerId }), [pixels, b.peerId, count] as const)
  await run(20) // warm-up
  const timings = await run(TASKS)
  const overhead = summarize(timings.map(t => t.roundTripMs - t.inferenceMs))
  const roundTrip = summarize(timings.map(t => t.roundTripMs))
  const inWorker = summarize(timings.map(t => t.inferenceMs))
  log('round trip (tab A → tab B → A)', fmt(roundTrip))
  log('per-task overhead (RT − inference)', fmt(overhead))
  const network = summarize(timings.map(t => t.networkMs))
  const workerSide = summarize(timings.map(t => t.totalMs - t.inferenceMs))
  log('  of which network + framing', fmt(network))
  log('  of which worker tab (queue, hops)', fmt(workerSide))

  // 4. The same model and input on onnxruntime-node, in this process.
  const reference: Record<string, Summary> = {}
  for (const threads of [1, 2]) {
    const session = await ort.InferenceSession.create(MODELS_DIR + 'digits.onnx', { intraOpNumThreads: threads, interOpNumThreads: 1 })
    const feeds = { [DIGITS_INPUT]: new ort.Tensor('float32', digit.pixels, [1, 1, 28, 28]) }
    for (let i = 0; i < 50; i++) await session.run(feeds)
    const times: number[] = []
    for (let i = 0; i < TASKS; i++) {
      const t0 = performance.now()
      await session.run(feeds)
      times.push(performance.now() - t0)
    }
    reference[`threads${threads}`] = summarize(times)
    await session.release()
  }
  const backend = await b.page.locator('[data-testid=backend]').textContent()
  log(`in-worker inference (${backend})`, fmt(inWorker, 'ms', 3))
  log('onnxruntime-node, 1 thread', fmt(reference.threads1, 'ms', 3))
  log('onnxruntime-node, 2 threads', fmt(reference.threads2, 'ms', 3))
  const ratio = inWorker.p50 / reference.threads1.p50
  log('in-worker / node (p50, 1 thread)', `${ratio.toFixed(2)}×`)

  // 5. Batch jobs across Node peers (the tabs are closed first: they would only compete for the CPU).
  await context.close()
  console.log('\nBatch jobs (issue #3)')
  const batch = await benchBatch({ tasks: BATCH_TASKS, kills: KILLS, log })

  Object.assign(results, {
    readyMs: readyS,
    dialMs: dialS,
    roundTripMs: roundTrip,
    overheadMs: overhead,
    overheadNetworkMs: network,
    overheadWorkerSideMs: workerSide,
    inWorkerInferenceMs: inWorker,
    workerBackend: backend,
    nodeInferenceMs: reference,
    inWorkerOverNodeRatio: ratio,
    batch
  })
}

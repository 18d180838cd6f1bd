/**
 * `npm run bench`: measures the two-tab MVP on real parts and prints + writes the figures.
 *  - page open → ready to work, over N fresh tabs (p50/p95)
 *  - direct WebRTC dial time between tabs: tabs dial on demand, so this is the dial a fresh tab
 *    makes when it sends its first task to a peer it knows from its advert (and that first task's
 *    round trip, dial included)
 *  - per-task overhead = round trip − in-worker inference, over ≥ 1,000 digit tasks tab → tab
 *  - the digit model's in-worker inference time vs onnxruntime-node in this same run (ratio)
 *  - batch jobs (scripts/bench-batch.ts): throughput to 4 Node workers, scheduler scaling,
 *    lost-worker detection, verification overhead
 *  - real models (scripts/bench-models.ts): in-worker vs onnxruntime-node per built-in model,
 *    cold start vs warm, model transfer over WebRTC, OCR pages per minute with 1 and 2 worker tabs
 * Options: --tabs N (default 10), --tasks N (default 1000), --batch-tasks N (default 10000),
 * --kills N (default 3), --models-only (skip everything before the real-model section), --cold-only
 * (only the real models' cold start vs warm, --transfers N fresh worker tabs, default 3),
 * --mvp-only (only the two-tab sections: ready, dial, per-task overhead, in-worker vs Node), --out FILE.
 */
import '../src/node/polyfill.js'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { startAppServer } from '../src/node/app-server.js'
import { launchChromium } from '../src/node/chromium.js'
import { heldOutDigits } from '../src/node/mnist.js'
import { openTab, waitForWorker } from '../src/node/page-driver.js'
import { MODELS_DIR } from '../src/node/node-peer.js'
import { DIGITS_INPUT } from '../src/models/digits.js'
import { fmt, summarize } from './stats.js'
import { benchBatch } from './bench-batch.js'
import { benchModels } from './bench-models.js'
import { benchUi } from './bench-ui.js'
import type { DigitTaskTiming } from '../src/browser/scripting.js'
import '../src/browser/scripting.js'
import type { Summary } from './stats.js'
import type { Page } from 'playwright-core'

const { values } = parseArgs({
  options: {
    tabs: { type: 'string', default: '10' },
    tasks: { type: 'string', default: '1000' },
    'batch-tasks': { type: 'string', default: '10000' },
    kills: { type: 'string', default: '3' },
    'models-only': { type: 'boolean', default: false },
    'cold-only': { type: 'boolean', default: false },
    transfers: { type: 'string', default: '3' },
    'mvp-only': { type: 'boolean', default: false },
    out: { type: 'string', default: `bench-results/bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})
const TABS = Number(values.tabs)
const TASKS = Number(values.tasks)
const BATCH_TASKS = Number(values['batch-tasks'])
const KILLS = Number(values.kills)
const COLD_ONLY = values['cold-only']
const MODELS_ONLY = values['models-only'] || COLD_ONLY
const MVP_ONLY = values['mvp-only']

const results: Record<string, unknown> = {}
const log = (label: string, text: string): void => { console.log(`${label.padEnd(34)} ${text}`) }

const server = await startAppServer()
const browser = await launchChromium()
try {
  console.log(`P2P AI Agents bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, Chromium ${browser.version()}`)
  Object.assign(results, {
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memGiB: totalmem() / 2 ** 30, node: process.version, chromium: browser.version() },
    command: COLD_ONLY
      ? `npm run bench -- --cold-only --transfers ${values.transfers}`
      : MODELS_ONLY
        ? 'npm run bench -- --models-only'
        : MVP_ONLY
          ? `npm run bench -- --mvp-only --tabs ${TABS} --tasks ${TASKS}`
          : `npm run bench -- --tabs ${TABS} --tasks ${TASKS} --batch-tasks ${BATCH_TASKS} --kills ${KILLS}`
  })
  console.log(results.command)
  if (!MODELS_ONLY) await benchMvpAndBatch()
  // 6. Real models, model transfer and OCR (issue #4).
  if (!MVP_ONLY) results.models = await benchModels({ browser, url: server.url, log, coldOnly: COLD_ONLY, transfers: Number(values.transfers) })

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
  const digit = heldOutDigits()[0]
  const pixels = Array.from(digit.pixels)
  const runOn = async (page: Page, peerId: string, count: number): Promise<DigitTaskTiming[]> => await page.evaluate(
    async ([px, id, n]) => await window.p2pAgents.runDigits(px, n, { kind: 'peer', peerId: id }), [pixels, peerId, count] as const)

  // 1. Page open → ready, and 2. the on-demand direct dial: each fresh tab learns of B from its
  // advert, then sends B one task, which dials B (the dial time and that task's whole round trip).
  const ready: number[] = []
  const dials: number[] = []
  const firstTask: number[] = []
  let dialFailures = 0
  for (let i = 0; i < TABS; i++) {
    const t = await openTab(context, server.url)
    ready.push((await t.page.evaluate(() => window.p2pAgents.readyMs()))!)
    await waitForWorker(t.page, b.peerId)
    // The first task's whole time as the page sees it: the dial, the task stream, the task.
    firstTask.push(await t.page.evaluate(async ([px, id]) => {
      const t0 = performance.now()
      await window.p2pAgents.runDigits(px, 1, { kind: 'peer', peerId: id })
      return performance.now() - t0
    }, [pixels, b.peerId] as const))
    const stats = await t.page.evaluate(() => window.p2pAgents.connectionStats())
    dials.push(...(stats?.dialTimes ?? []))
    dialFailures += stats?.dialFailures ?? 0
    await t.page.close()
  }
  const readyS = summarize(ready)
  const dialS = summarize(dials)
  const firstTaskS = summarize(firstTask)
  log('page open → ready to work', fmt(readyS, 'ms', 0))
  log('direct WebRTC dial, on demand', `${fmt(dialS, 'ms', 0)}${dialFailures > 0 ? ` (${dialFailures} failed dial${dialFailures > 1 ? 's' : ''} retried)` : ''}`)
  log('first task to a new peer (+ dial)', fmt(firstTaskS, 'ms', 0))

  // 3. Per-task overhead, tab A → tab B, sequential tasks on a warm connection and session.
  const a = await openTab(context, server.url)
  await waitForWorker(a.page, b.peerId)
  const run = async (count: number): Promise<DigitTaskTiming[]> => await runOn(a.page, b.peerId, count)
  await run(20) // warm-up, and the dial
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
  // 4b. The page's own latency (issue #12): a warm digit through the real UI vs the scripting API, same run.
  console.log('\nThe page\'s own latency: digit tab A → tab B, real UI vs scripting API')
  results.pageLatency = await benchUi({ browser, url: server.url, rounds: 6, tasks: 50, log })
  let batch: unknown
  if (!MVP_ONLY) {
    console.log('\nBatch jobs (issue #3)')
    batch = await benchBatch({ tasks: BATCH_TASKS, kills: KILLS, log, tabs: { browser } })
  }

  Object.assign(results, {
    readyMs: readyS,
    dialMs: dialS,
    dialFailures,
    firstTaskWithDialMs: firstTaskS,
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

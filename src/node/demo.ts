/**
 * `npm run demo`: the two-tab MVP, scripted. Starts the server, opens two headless Chromium tabs,
 * waits until tab A knows tab B from its advert, draws a held-out MNIST digit in tab A, sends it to
 * tab B (which dials B directly, on demand) and prints what happened.
 * Exit 0 on success; otherwise exit 1 with a one-line reason.
 */
import { parseArgs } from 'node:util'
import { startAppServer } from './app-server.js'
import { launchChromium } from './chromium.js'
import { heldOutDigits } from './mnist.js'
import { openTab, paintDigit, peerRow, submitDigit, waitForDirectPeer, waitForRtt, waitForWorker } from './page-driver.js'
import { builtinModel } from '../models/catalog.js'
import type { AppServer } from './app-server.js'
import type { Browser } from 'playwright-core'

const { values } = parseArgs({ options: { digit: { type: 'string', default: '7' } } })
const PEER_TIMEOUT_MS = 30_000

class DemoFailure extends Error {}

async function step<T> (reason: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw new DemoFailure(`${reason}: ${(err as Error).message.split('\n')[0]}`)
  }
}

const short = (id: string): string => `${id.slice(0, 8)}…${id.slice(-6)}`
const line = (label: string, text: string): void => { console.log(`${label.padEnd(10)} ${text}`) }

let server: AppServer | undefined
let browser: Browser | undefined
try {
  console.log('P2P AI Agents: two-tab demo\n')
  server = await step('no relay (the server did not start)', async () => await startAppServer())
  line('server', `${server.url}  relay ${server.relayAddr}`)
  browser = await step('cannot start Chromium', launchChromium)
  const context = await browser.newContext()

  const a = await step(`tab A not ready within ${PEER_TIMEOUT_MS / 1000} s`, async () => await openTab(context, server!.url, PEER_TIMEOUT_MS))
  const b = await step(`tab B not ready within ${PEER_TIMEOUT_MS / 1000} s`, async () => await openTab(context, server!.url, PEER_TIMEOUT_MS))
  for (const [name, tab] of [['tab A', a], ['tab B', b]] as const) {
    const ready = await tab.page.locator('[data-testid=ready-ms]').textContent()
    const backend = await tab.page.locator('[data-testid=backend]').textContent()
    line(name, `${tab.peerId}  ready in ${ready}, runs ${backend}`)
  }

  await step(`tab A did not hear of tab B within ${PEER_TIMEOUT_MS / 1000} s (no advert from B reached it through the relay)`,
    async () => { await waitForWorker(a.page, b.peerId, PEER_TIMEOUT_MS) })
  line('discovery', `A knows B from its advert: ${await peerRow(a.page, b.peerId).getAttribute('data-connection')} (tabs dial only the peers they send work to)`)

  const index = Number(values.digit)
  const digit = heldOutDigits()[index]
  if (digit == null) throw new DemoFailure(`--digit must be 0…1999, got ${values.digit}`)
  const model = builtinModel('digits')
  line('task', `A → B: held-out MNIST digit #${index} (label ${digit.label}), model ${model.id} sha256 ${model.sha256.slice(0, 12)}…`)
  await paintDigit(a.page, digit.pixels)
  const result = await step('task error', async () => await submitDigit(a.page, b.peerId))
  if (result.status !== 'done') throw new DemoFailure(`task error: ${result.error ?? 'unknown'}`)

  const p = result.probs![result.prediction!]
  line('result', `predicted ${result.prediction} (p=${p.toFixed(3)}) ${result.prediction === digit.label ? '✓ matches the label' : `✗ label is ${digit.label}`}`)
  line('ran on', `${result.worker === b.peerId ? 'tab B' : 'another peer'} (${short(result.worker!)}), ${result.backend}`)
  const t = result.timings!
  line('timings', `round trip ${t.roundTripMs.toFixed(1)} ms = network ${t.networkMs.toFixed(1)} + queue ${t.queueMs.toFixed(1)} + model load ${t.loadMs.toFixed(1)} + inference ${t.inferenceMs.toFixed(2)} ms`)

  await step('tab A does not show a direct WebRTC connection to tab B after the task', async () => { await waitForDirectPeer(a.page, b.peerId, 10_000) })
  const dials = await a.page.evaluate(() => window.p2pAgents.dialTimes())
  const rtt = await waitForRtt(a.page, b.peerId, 10_000).then(ms => `${ms.toFixed(1)} ms`, () => 'not measured yet')
  line('link', `A → B: ${await peerRow(a.page, b.peerId).getAttribute('data-connection')}, dialled on demand in ${dials.length > 0 ? `${dials[0].toFixed(0)} ms` : '?'}, RTT ${rtt}`)

  const served = b.page.locator(`[data-testid=served-row][data-requester="${a.peerId}"][data-state=done]`)
  await step('tab B does not list the task it ran', async () => { await served.first().waitFor({ timeout: 10_000 }) })
  line('tab B', `ran task ${await served.first().getAttribute('data-task-id')} for tab A (${short(a.peerId)})`)
  if (result.worker !== b.peerId) throw new DemoFailure(`task ran on ${result.worker}, not on tab B`)
  console.log('\nOK')
  process.exitCode = 0
} catch (err) {
  console.error(`\ndemo failed: ${err instanceof DemoFailure ? err.message : (err as Error).message.split('\n')[0]}`)
  process.exitCode = 1
} finally {
  await browser?.close().catch(() => {})
  await server?.stop().catch(() => {})
}

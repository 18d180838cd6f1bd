/**
 * `npm run screenshots`: the README's pictures, taken from the real app. Starts the relay serving
 * the build (dist/, or P2P_APP_DIR), a Node worker and three Chromium tabs (two desktop, one phone
 * sized), has them run some work (digit batches and single digits, so the dashboard's charts and
 * the job list have something to show), then saves:
 *   docs/img/dashboard-desktop.png  1280×800, #/network
 *   docs/img/jobs-desktop.png       1280×800, #/jobs
 *   docs/img/dashboard-phone.png    390×844,  #/network
 *   docs/img/work-phone.png         390×844,  #/
 * Options: --out <dir> (default docs/img). Exit 0 when all four are saved, 1 with a reason otherwise.
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startAppServer } from '../src/node/app-server.js'
import { launchChromium } from '../src/node/chromium.js'
import { heldOutDigits } from '../src/node/mnist.js'
import { openTab, paintDigit, startBatch, submitDigit, waitBatchDone } from '../src/node/page-driver.js'
import { peerName } from '../src/core/peer-name.js'
import type { ChildProcess } from 'node:child_process'
import type { Browser, Page } from 'playwright-core'
import type { AppServer } from '../src/node/app-server.js'
import type { TabHandle } from '../src/node/page-driver.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/img' } } })
const OUT = resolve(ROOT, values.out)
const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const READY_MS = 60_000
/** How long each piece of work may take before the pictures are taken anyway. */
const WORK_MS = 45_000

interface WorkerProcess { peerId: string, child: ChildProcess }

/** A Node worker (`npm run worker`) on the relay; resolves once it says it joined. */
async function startWorker (relayAddr: string, dir: string): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [
    '--import', 'tsx', join(ROOT, 'src/node/worker.ts'), '--relay', relayAddr, '--key', join(dir, 'worker.key'), '--model-cache', join(dir, 'models')
  ], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, P2P_EXIT_WITH_PARENT: '1' } })
  let out = ''
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGTERM'); reject(new Error(`the Node worker did not join within ${READY_MS / 1000} s:\n${out}`)) }, READY_MS)
    const onData = (d: Buffer): void => {
      out += d.toString()
      const m = /worker (\S+) joined/.exec(out)
      if (m != null) {
        clearTimeout(timer)
        child.off('exit', onExit)
        resolve({ peerId: m[1], child })
      }
    }
    const onExit = (code: number | null): void => { clearTimeout(timer); reject(new Error(`the Node worker exited (${code}):\n${out}`)) }
    child.stdout.on('data', onData)
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    child.once('exit', onExit)
  })
}

/** Runs `fn`, printing a warning instead of failing: a picture with less in it beats none. */
async function tryStep (what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn()
  } catch (err) {
    console.warn(`screenshots: ${what} failed (${(err as Error).message.split('\n')[0]}); going on`)
  }
}

const VIEWS = ['work', 'jobs', 'network'] as const

/** Brings up whichever view holds `selector` (panels move between views as the app grows). */
async function reveal (page: Page, selector: string): Promise<void> {
  await page.bringToFront()
  for (const view of VIEWS) {
    if (await page.locator(selector).first().isVisible()) return
    await page.locator(`[data-testid=nav-${view}]`).click()
  }
  await page.locator(selector).first().waitFor({ state: 'visible', timeout: 5_000 })
}

/** Shows `view` through the page's own navigation and waits until it has rendered. */
async function show (page: Page, view: typeof VIEWS[number], ready: string): Promise<void> {
  await page.bringToFront()
  await page.locator(`[data-testid=nav-${view}]`).click()
  await page.locator(ready).first().waitFor({ timeout: 15_000 })
  // Charts and lists render from periodic snapshots: wait for the page to settle on one frame.
  await page.evaluate(async () => { await new Promise(resolve => requestAnimationFrame(() => { requestAnimationFrame(resolve) })) })
}

async function save (page: Page, file: string): Promise<void> {
  await page.screenshot({ path: join(OUT, file) })
  console.log(`saved ${join(values.out, file)}`)
}

let server: AppServer | undefined
let worker: WorkerProcess | undefined
let browser: Browser | undefined
const scratch = await mkdtemp(join(tmpdir(), 'p2p-ai-agents-screenshots-'))
try {
  await mkdir(OUT, { recursive: true })
  server = await startAppServer()
  worker = await startWorker(server.relayAddr, scratch)
  browser = await launchChromium()
  const desktop = async (): Promise<TabHandle> => await openTab(await browser!.newContext({ viewport: DESKTOP }), server!.url, READY_MS)
  const a = await desktop()
  const b = await desktop()
  const phone = await openTab(await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true }), server.url, READY_MS)
  const tabs = [a, b, phone]
  // Listed, not necessarily on show: the phone folds its peer list.
  const knows = async (t: TabHandle, peerId: string): Promise<void> => {
    await t.page.locator(`[data-testid=peer-row][data-peer-id="${peerId}"][data-worker=yes]`).waitFor({ state: 'attached', timeout: READY_MS })
  }
  for (const t of tabs) {
    for (const peerId of [worker.peerId, ...tabs.filter(o => o !== t).map(o => o.peerId)]) await knows(t, peerId)
  }
  console.log(`network: relay, Node worker ${peerName(worker.peerId)}, tabs ${tabs.map(t => peerName(t.peerId)).join(', ')}`)

  // Work for the charts and the job list: a replicated batch from A, a plain one from the phone, single digits from B.
  const batch = async (t: TabHandle, replicas: 1 | 2, limit: number): Promise<void> => {
    await reveal(t.page, '[data-testid=batch-run]')
    await startBatch(t.page, { replicas, limit })
    await waitBatchDone(t.page, limit, WORK_MS)
  }
  await tryStep('batch from tab A', async () => { await batch(a, 2, 200) })
  await tryStep('batch from the phone tab', async () => { await batch(phone, 1, 100) })
  await tryStep('digits from tab B', async () => {
    await reveal(b.page, '[data-testid=submit-digit]')
    for (const digit of heldOutDigits().slice(0, 5)) {
      await paintDigit(b.page, digit.pixels)
      await submitDigit(b.page, 'any', WORK_MS)
    }
  })

  const dashboard = '[data-testid=dashboard]'
  await show(a.page, 'network', dashboard)
  await tryStep('waiting for the dashboard to list the Node worker', async () => { await a.page.locator(dashboard).getByText(peerName(worker!.peerId)).first().waitFor({ timeout: 15_000 }) })
  await save(a.page, 'dashboard-desktop.png')
  await show(a.page, 'jobs', '[data-testid=job-row], [data-testid=jobs-empty]')
  // The job list, rather than the forms above it.
  await a.page.locator('[data-testid=job-row], [data-testid=jobs-empty]').first().evaluate(el => { el.closest('section')?.scrollIntoView() ?? el.scrollIntoView() })
  await save(a.page, 'jobs-desktop.png')
  await show(phone.page, 'network', dashboard)
  await save(phone.page, 'dashboard-phone.png')
  await show(phone.page, 'work', '[data-testid=self-peer-id]')
  await save(phone.page, 'work-phone.png')
  process.exitCode = 0
} catch (err) {
  console.error(`screenshots failed: ${(err as Error).message.split('\n')[0]}`)
  process.exitCode = 1
} finally {
  await browser?.close().catch(() => {})
  worker?.child.kill('SIGTERM')
  await server?.stop()
  await rm(scratch, { recursive: true, force: true })
}

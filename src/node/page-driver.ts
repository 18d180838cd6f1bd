/** Drives the real app in Chromium the way a person would (demo, e2e tests, bench). */
import type { BrowserContext, Locator, Page } from 'playwright-core'

export const PAD_SIZE = 280
const SCALE = PAD_SIZE / 28

export interface TabHandle {
  page: Page
  peerId: string
}

export interface ResultView {
  status: 'done' | 'failed'
  prediction?: number
  probs?: number[]
  worker?: string
  backend?: string
  timings?: { networkMs: number, queueMs: number, loadMs: number, inferenceMs: number, roundTripMs: number, totalMs: number }
  error?: string
}

/** Opens the app and waits until the tab is ready to work (relay ready, worker started). */
export async function openTab (context: BrowserContext, url: string, timeoutMs = 30_000): Promise<TabHandle> {
  const page = await context.newPage()
  await page.goto(url)
  return { page, peerId: await waitReady(page, timeoutMs) }
}

export async function waitReady (page: Page, timeoutMs = 30_000): Promise<string> {
  await page.locator('[data-testid=relay-status]', { hasText: 'ready' }).waitFor({ timeout: timeoutMs })
  await page.locator('[data-testid=ready-ms]').waitFor({ timeout: timeoutMs })
  return (await page.locator('[data-testid=self-peer-id]').textContent())!.trim()
}

/** `page`'s row for `peerId` in its peer list. */
export function peerRow (page: Page, peerId: string): Locator {
  return page.locator(`[data-testid=peer-row][data-peer-id="${peerId}"]`)
}

/**
 * Waits until `page` lists `peerId` (from its advert, or a connection), optionally with a given
 * connection ('not connected' until this tab sends work to it, then 'direct WebRTC').
 */
export async function waitForPeer (page: Page, peerId: string, options: { connection?: string, timeoutMs?: number } = {}): Promise<void> {
  const row = options.connection == null ? peerRow(page, peerId) : page.locator(`[data-testid=peer-row][data-peer-id="${peerId}"][data-connection="${options.connection}"]`)
  await row.waitFor({ timeout: options.timeoutMs ?? 30_000 })
}

/** Waits until `page` lists `peerId` as connected over direct WebRTC (a task went between them). */
export async function waitForDirectPeer (page: Page, peerId: string, timeoutMs = 30_000): Promise<void> {
  await waitForPeer(page, peerId, { connection: 'direct WebRTC', timeoutMs })
}

/** Waits until `page` has `peerId`'s capability advert as a worker: it can be chosen for tasks and gets batch work (dialled when work goes to it). */
export async function waitForWorker (page: Page, peerId: string, timeoutMs = 30_000): Promise<void> {
  await page.locator(`[data-testid=peer-row][data-peer-id="${peerId}"][data-worker=yes]`).waitFor({ timeout: timeoutMs })
}

/** Waits until `page` shows a round-trip time for `peerId` (measured over a direct connection) and returns it in ms. */
export async function waitForRtt (page: Page, peerId: string, timeoutMs = 15_000): Promise<number> {
  await page.waitForFunction((id) => /\d+(\.\d+)? ms/.test(document.querySelector(`[data-testid=peer-row][data-peer-id="${id}"] td:nth-child(3)`)?.textContent ?? ''), peerId, { timeout: timeoutMs, polling: 100 })
  const text = (await peerRow(page, peerId).locator('td').nth(2).textContent()) ?? ''
  return Number(/(\d+(?:\.\d+)?) ms/.exec(text)![1])
}

/** The 280×280 RGBA image that paintDigit puts on the pad: each MNIST pixel as a 10×10 block. */
export function digitCanvasRGBA (pixels: Float32Array): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(PAD_SIZE * PAD_SIZE * 4)
  for (let y = 0; y < PAD_SIZE; y++) {
    for (let x = 0; x < PAD_SIZE; x++) {
      const v = Math.round(pixels[Math.floor(y / SCALE) * 28 + Math.floor(x / SCALE)] * 255)
      const o = (y * PAD_SIZE + x) * 4
      rgba[o] = rgba[o + 1] = rgba[o + 2] = v
      rgba[o + 3] = 255
    }
  }
  return rgba
}

/** Puts an MNIST digit on the drawing pad, as if drawn there. */
export async function paintDigit (page: Page, pixels: Float32Array): Promise<void> {
  const rgba = Array.from(digitCanvasRGBA(pixels))
  await page.locator('[data-testid=digit-pad]').evaluate((canvas: HTMLCanvasElement, data: number[]) => {
    const ctx = canvas.getContext('2d')!
    ctx.putImageData(new ImageData(Uint8ClampedArray.from(data), canvas.width, canvas.height), 0, 0)
  }, rgba)
}

/** Picks the target in the UI, presses Recognise and waits for that submission's result. */
export async function submitDigit (page: Page, target: 'any' | 'self' | string, timeoutMs = 30_000): Promise<ResultView> {
  // Headless Chromium paces input to a background tab's frames (about one a second).
  await page.bringToFront()
  await page.locator('[data-testid=target-select]').selectOption(target)
  // The page shows the newest few results (kept across reloads): a new one is a new first card, not one more card.
  // Read at once, never waited for: a read that timed out would pass for "no card yet", and the
  // previous result would then count as the new one.
  const before = await page.evaluate(() => document.querySelector<HTMLElement>('[data-testid=result]')?.dataset.taskId ?? null)
  await page.locator('[data-testid=submit-digit]').click()
  const newest = page.locator('[data-testid=result]').first()
  await page.waitForFunction((id) => (document.querySelector<HTMLElement>('[data-testid=result]')?.dataset.taskId ?? null) !== id, before, { timeout: timeoutMs })
  await newest.and(page.locator('[data-status=done], [data-status=failed]')).waitFor({ timeout: timeoutMs })
  return await readResult(page)
}

/** The newest result card. */
export async function readResult (page: Page): Promise<ResultView> {
  return await page.locator('[data-testid=result]').first().evaluate((el: HTMLElement) => {
    const d = el.dataset
    return {
      status: d.status as 'done' | 'failed',
      prediction: d.prediction !== '' && d.prediction != null ? Number(d.prediction) : undefined,
      probs: d.probs !== '' && d.probs != null ? JSON.parse(d.probs) as number[] : undefined,
      worker: d.worker !== '' ? d.worker : undefined,
      backend: d.backend !== '' ? d.backend : undefined,
      timings: d.timings !== '' && d.timings != null ? JSON.parse(d.timings) : undefined,
      error: el.querySelector('[data-testid=result-error]')?.textContent ?? undefined
    }
  })
}

export interface BatchProgressView { done: number, total: number, state: string, restored: number, computed: number, jobId: string }

/** Starts a batch from the Batch panel. */
export async function startBatch (page: Page, options: { replicas: 1 | 2 | 3, limit?: number, adaptive?: boolean }): Promise<void> {
  await page.bringToFront()
  await page.locator('[data-testid=batch-replicas]').selectOption(String(options.replicas))
  if (options.adaptive === true) await page.locator('[data-testid=batch-adaptive]').check()
  if (options.limit != null) await page.locator('[data-testid=batch-limit]').fill(String(options.limit))
  await page.locator('[data-testid=batch-run]').click()
}

export async function batchProgress (page: Page): Promise<BatchProgressView> {
  return await page.locator('[data-testid=batch-progress]').evaluate((el: HTMLElement) => {
    const d = el.dataset
    return { done: Number(d.done), total: Number(d.total), state: d.state ?? '', restored: Number(d.restored), computed: Number(d.computed), jobId: d.jobId ?? '' }
  })
}

/**
 * Results per peer of the running batch, as its chart shows them: 'this tab' or the last 8
 * characters of a peer id → results accepted from it.
 */
export async function batchContributions (page: Page): Promise<Record<string, number>> {
  return await page.locator('[data-testid=batch-progress] [aria-label="results per peer"] > *').evaluateAll(rows => Object.fromEntries(rows.map(r => {
    const cells = [...r.children].map(c => c.textContent?.trim() ?? '')
    // Rows show the peer's readable name; data-peer holds its id ('self' for this tab).
    const peer = (r as HTMLElement).dataset.peer ?? ''
    return [peer === 'self' ? 'this tab' : peer.slice(-8), Number(cells.at(-1))]
  })))
}

/** Waits until the batch has at least `done` results. */
export async function waitBatchDone (page: Page, done: number, timeoutMs = 120_000): Promise<void> {
  await page.waitForFunction((n) => Number(document.querySelector<HTMLElement>('[data-testid=batch-progress]')?.dataset.done ?? 0) >= n, done, { timeout: timeoutMs, polling: 100 })
}

export interface BatchSummaryView { state: string, count: number, accuracy: number, crossChecked: number, disagreements: number }

export async function waitBatchSummary (page: Page, timeoutMs = 180_000): Promise<BatchSummaryView> {
  const el = page.locator('[data-testid=batch-summary]')
  await el.waitFor({ timeout: timeoutMs })
  return await el.evaluate((e: HTMLElement) => ({
    state: e.dataset.state ?? '',
    count: Number(e.dataset.count),
    accuracy: Number(e.dataset.accuracy),
    crossChecked: Number(e.dataset.crossChecked),
    disagreements: Number(e.dataset.disagreements)
  }))
}

/** Clicks Export JSON and returns the parsed download. */
/** Clicks "Export proofs" and returns the JSONL (results, signed receipts, audit log). */
export async function exportBatchProofs (page: Page): Promise<string> {
  const download = page.waitForEvent('download')
  await page.locator('[data-testid=batch-export-proofs]').click()
  const file = await (await download).createReadStream()
  const chunks: Buffer[] = []
  for await (const c of file) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function exportBatchJson (page: Page): Promise<{ summary: Record<string, number>, results: Array<{ index: number, label: number, prediction: number, agreedBy: string[] }> }> {
  const download = page.waitForEvent('download')
  await page.locator('[data-testid=batch-export-json]').click()
  const file = await (await download).createReadStream()
  const chunks: Buffer[] = []
  for await (const c of file) chunks.push(c as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

/**
 * The two-tab MVP in real Chromium: real relay, real WebRTC between tabs, real onnxruntime-web in a
 * Web Worker. Tabs learn of each other from adverts and connect directly only when one sends the
 * other work.
 */
import { mkdir } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { heldOutDigits } from '../../src/node/mnist.js'
import { openTab, paintDigit, peerRow, readResult, submitDigit, waitForDirectPeer, waitForPeer, waitForRtt, waitForWorker, waitReady } from '../../src/node/page-driver.js'
import { argmax } from '../../src/models/digits.js'
import { peerName } from '../../src/core/peer-name.js'
import { referenceProbs, startE2E, stopE2E } from './helpers.js'
import type { E2E } from './helpers.js'
import type { BrowserContext } from 'playwright-core'
import type { TabHandle } from '../../src/node/page-driver.js'

let e2e: E2E
let context: BrowserContext
let a: TabHandle
let b: TabHandle
const digits = heldOutDigits()

function expectClose (actual: number[], expected: number[], tolerance: number): void {
  expect(actual).toHaveLength(expected.length)
  actual.forEach((v, i) => { expect(Math.abs(v - expected[i]), `class ${i}: ${v} vs ${expected[i]}`).toBeLessThanOrEqual(tolerance) })
}

describe('two tabs', () => {
  beforeAll(async () => {
    e2e = await startE2E()
    context = await e2e.browser.newContext({ viewport: { width: 1280, height: 900 } })
    a = await openTab(context, e2e.server.url)
    b = await openTab(context, e2e.server.url)
  })

  afterAll(async () => { await stopE2E(e2e) })

  it('each tab is its own peer and lists the other from its advert, not connected until work goes to it', async () => {
    expect(a.peerId).toMatch(/^12D3KooW/)
    expect(b.peerId).not.toBe(a.peerId)
    // Opening a tab dials nobody: each knows the other only from its advert.
    await waitForPeer(a.page, b.peerId, { connection: 'not connected' })
    await waitForPeer(b.page, a.peerId, { connection: 'not connected' })
    await waitForWorker(a.page, b.peerId)
    await waitForWorker(b.page, a.peerId)
    expect(await peerRow(a.page, b.peerId).locator('td').nth(2).textContent()).toBe('—')
    expect(await a.page.evaluate(() => crossOriginIsolated)).toBe(true)
  })

  it("runs a digit drawn in tab A in tab B's Web Worker, with onnxruntime-node's answer", async () => {
    const digit = digits[3]
    await paintDigit(a.page, digit.pixels)
    const result = await submitDigit(a.page, b.peerId)
    expect(result.status, result.error).toBe('done')
    expect(result.worker).toBe(b.peerId)
    expect(result.backend).toMatch(/^wasm/)
    const reference = await referenceProbs(digit.pixels)
    expect(result.prediction).toBe(argmax(reference))
    expectClose(result.probs!, reference, 1e-5)
    const t = result.timings!
    expect(t.inferenceMs).toBeGreaterThan(0)
    expect(t.roundTripMs).toBeGreaterThanOrEqual(t.inferenceMs)
    // It ran off tab B's main thread, in the inference Web Worker.
    expect(b.page.workers().map(w => w.url()).some(u => u.includes('inference-worker'))).toBe(true)
    // Tab B shows the task it ran and for whom.
    await b.page.locator(`[data-testid=served-row][data-requester="${a.peerId}"][data-state=done]`).first().waitFor()
    // The task dialled tab B directly: both rows now say so, and tab A shows a round-trip time.
    expect(await peerRow(a.page, b.peerId).getAttribute('data-connection')).toBe('direct WebRTC')
    await waitForDirectPeer(b.page, a.peerId)
    expect(await waitForRtt(a.page, b.peerId)).toBeGreaterThan(0)
    if (process.env.UPDATE_SCREENSHOT === '1') {
      await mkdir('docs', { recursive: true })
      await a.page.screenshot({ path: 'docs/screenshot.png' })
    }
  })

  it('"any peer" spreads tasks and "this tab" runs locally', async () => {
    await paintDigit(a.page, digits[0].pixels)
    const remote = await submitDigit(a.page, 'any')
    expect(remote.status, remote.error).toBe('done')
    expect(remote.worker).toBe(b.peerId)
    const local = await submitDigit(a.page, 'self')
    expect(local.status, local.error).toBe('done')
    expect(local.worker).toBe('self')
    expect(local.prediction).toBe(remote.prediction)
    await a.page.locator('[data-testid=served-row][data-requester=self][data-state=done]').first().waitFor()
  })

  it('recognises a digit drawn with the mouse', async () => {
    await a.page.bringToFront() // background tabs get input at frame rate: about one event a second
    await a.page.locator('[data-testid=clear-digit]').click()
    const box = (await a.page.locator('[data-testid=digit-pad]').boundingBox())!
    // A "7": a top bar, then a diagonal stroke down to the left.
    await a.page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.2)
    await a.page.mouse.down()
    await a.page.mouse.move(box.x + box.width * 0.75, box.y + box.height * 0.2, { steps: 8 })
    await a.page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.85, { steps: 12 })
    await a.page.mouse.up()
    const result = await submitDigit(a.page, b.peerId)
    expect(result.status, result.error).toBe('done')
    expect(result.prediction).toBe(7)
  })

  it('recognises a digit drawn by touch', async () => {
    const touch = await e2e.browser.newContext({ hasTouch: true, viewport: { width: 420, height: 900 }, isMobile: true })
    try {
      const t = await openTab(touch, e2e.server.url)
      await t.page.bringToFront()
      const box = (await t.page.locator('[data-testid=digit-pad]').boundingBox())!
      const cdp = await touch.newCDPSession(t.page)
      const at = (fy: number): Array<{ x: number, y: number }> => [{ x: box.x + box.width * 0.5, y: box.y + box.height * fy }]
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(0.15) })
      for (let i = 1; i <= 12; i++) await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(0.15 + i * 0.06) })
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] })
      const result = await submitDigit(t.page, 'self')
      expect(result.status, result.error).toBe('done')
      expect(result.prediction).toBe(1)
    } finally {
      await touch.close()
    }
  })

  it('a reloaded tab keeps its peer id, and the tabs reconnect directly when work goes to it again', async () => {
    await waitForDirectPeer(a.page, b.peerId)
    await b.page.reload()
    const again = await waitReady(b.page)
    expect(again).toBe(b.peerId)
    expect(again).not.toBe(a.peerId)
    // Tab A notices the connection went with the old page (WebRTC finds out in ~8–16 s here), and
    // still lists B from its advert.
    await waitForPeer(a.page, b.peerId, { connection: 'not connected', timeoutMs: 45_000 })
    await waitForWorker(a.page, b.peerId)
    await paintDigit(a.page, digits[1].pixels)
    const result = await submitDigit(a.page, b.peerId)
    expect(result.status, result.error).toBe('done')
    expect(result.worker).toBe(b.peerId)
    await waitForDirectPeer(a.page, b.peerId)
  })

  it('closing the worker tab while a task is in flight gives the requester a clear error, not a hang', async () => {
    // A worker tab whose model download never completes, so the task is surely still in flight.
    const stalled = await e2e.browser.newContext({ serviceWorkers: 'block' })
    try {
      const held: Array<() => void> = []
      await stalled.route('**/models/*.onnx', async (route) => { await new Promise<void>(resolve => held.push(resolve)); await route.abort() })
      const c = await openTab(stalled, e2e.server.url)
      await waitForWorker(a.page, c.peerId)
      await paintDigit(a.page, digits[2].pixels)
      await a.page.locator('[data-testid=target-select]').selectOption(c.peerId)
      await a.page.locator('[data-testid=submit-digit]').click()
      const card = a.page.locator('[data-testid=result][data-status=running]').first()
      const taskId = await card.getAttribute('data-task-id')
      await c.page.locator(`[data-testid=served-row][data-task-id="${taskId}"][data-state=running]`).waitFor()
      await c.page.close()
      held.forEach(release => { release() })
      // The bound only keeps a broken build from hanging the suite; detection itself takes seconds.
      await a.page.locator(`[data-testid=result][data-task-id="${taskId}"][data-status=failed]`).waitFor({ timeout: 20_000 })
      const result = await readResult(a.page)
      // In words, naming the peer that went away; the code stays on the card for scripts.
      expect(await a.page.locator(`[data-testid=result][data-task-id="${taskId}"]`).getAttribute('data-error-code')).toBe('peer-gone')
      expect(result.error).toContain(peerName(c.peerId))
      expect(result.error).not.toMatch(/^peer-gone: /)
    } finally {
      await stalled.close()
    }
  })

  it('exercises the WebGPU code path on the software adapter when asked to', async () => {
    const page = await context.newPage()
    await page.goto(`${e2e.server.url}?backend=webgpu&allowFallbackAdapter=1`)
    await waitReady(page)
    expect(await page.locator('[data-testid=backend]').getAttribute('data-backends')).toMatch(/^webgpu/)
    expect(await page.locator('[data-testid=backend]').textContent()).toMatch(/^GPU \(WebGPU, /)
    const digit = digits[5]
    await paintDigit(page, digit.pixels)
    const result = await submitDigit(page, 'self', 120_000)
    expect(result.status, result.error).toBe('done')
    expect(result.backend).toMatch(/^webgpu/)
    const reference = await referenceProbs(digit.pixels)
    expect(result.prediction).toBe(argmax(reference))
    await page.close()
  })

  it('is an installable PWA whose service worker keeps the page cross-origin isolated', async () => {
    const page = await context.newPage()
    await page.goto(e2e.server.url)
    const manifest = await page.evaluate(async () => {
      const href = document.querySelector<HTMLLinkElement>('link[rel=manifest]')!.href
      return await (await fetch(href)).json() as { name: string, display: string, icons: unknown[] }
    })
    expect(manifest.name).toBe('P2P AI Agents')
    expect(manifest.display).toBe('standalone')
    expect(manifest.icons.length).toBeGreaterThan(0)
    await page.evaluate(async () => { await navigator.serviceWorker.ready })
    await page.reload()
    await waitReady(page)
    expect(await page.evaluate(() => navigator.serviceWorker.controller != null)).toBe(true)
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true)
    await page.close()
  })
})

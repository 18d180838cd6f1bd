/**
 * The installed app with no network, in real Chromium against the real served build: after one
 * visit in which the tab used OCR, the network goes away (the browser offline and the server that
 * served the app, which is also the relay, stopped), and a reload still opens the page
 * cross-origin isolated, says the relay is unreachable, and recognises a digit and reads a new
 * image on this tab's own Web Worker with the built-in models it kept.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { heldOutDigits } from '../../src/node/mnist.js'
import { openTab, paintDigit, submitDigit, waitReady } from '../../src/node/page-driver.js'
import { startE2E, stopE2E } from './helpers.js'
import type { E2E } from './helpers.js'
import type { BrowserContext, Page } from 'playwright-core'

const SAMPLES = fileURLToPath(new URL('../../public/samples/ocr/', import.meta.url))
/** One page read on this tab alone, models loaded and measured on first use: ~20 s on an idle 2-core machine, minutes on a loaded one. */
const OCR_MS = 240_000

let e2e: E2E
let context: BrowserContext

async function sampleLines (file: string): Promise<string[]> {
  const samples = JSON.parse(await readFile(SAMPLES + 'samples.json', 'utf8')) as Array<{ file: string, lines: string[] }>
  return samples.find(s => s.file === file)!.lines
}

/** Runs OCR on the page's unread pages and returns `name`'s recognised lines. */
async function readPage (page: Page, name: string): Promise<string[]> {
  const card = page.locator(`[data-testid=ocr-page][data-name="${name}"]`)
  await card.and(page.locator('[data-state=new]')).waitFor()
  await page.locator('[data-testid=ocr-run]').click()
  await card.and(page.locator('[data-state=read], [data-state=failed]')).waitFor({ timeout: OCR_MS })
  return ((await card.locator('[data-testid=ocr-text]').textContent()) ?? '').split('\n')
}

/**
 * What does not fit the window, in words, measured in the page once it is laid out and painted:
 * sideways scroll, peer rows past the right edge, a select too narrow for its chosen text.
 */
const LAYOUT_PROBLEMS = `(async () => {
    await new Promise(resolve => requestAnimationFrame(() => { requestAnimationFrame(resolve) }))
    const width = innerWidth
    const out = []
    if (document.scrollingElement.scrollWidth > width) out.push('page is ' + document.scrollingElement.scrollWidth + ' px wide')
    for (const row of document.querySelectorAll('[data-testid=peer-row], [data-testid=dash-peer], [data-testid=dash-relay]')) {
      const right = row.getBoundingClientRect().right
      if (row.checkVisibility() && right > width) out.push(row.dataset.testid + ' reaches ' + Math.round(right) + ' px')
    }
    // A select's chosen text, in its own font, plus padding and the arrow, must fit its box.
    const ctx = document.createElement('canvas').getContext('2d')
    for (const select of document.querySelectorAll('select')) {
      if (!select.checkVisibility()) continue
      const cs = getComputedStyle(select)
      ctx.font = cs.font
      const text = select.selectedOptions[0]?.text ?? ''
      const need = ctx.measureText(text).width + parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight) + 20
      if (need > select.clientWidth) out.push('select cuts "' + text + '" (' + Math.round(need) + ' px in ' + select.clientWidth + ')')
    }
    return out
  })()`

describe('installable and offline', () => {
  beforeAll(async () => {
    e2e = await startE2E()
    context = await e2e.browser.newContext({ viewport: { width: 1280, height: 900 } })
  })

  afterAll(async () => { await stopE2E(e2e) })

  it('fits a 390 px phone (nothing scrolls sideways, peers listed within the screen, secondary cards fold) and no select cuts its choice short, phone or desktop', async () => {
    const phone = await e2e.browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true })
    const desktop = await e2e.browser.newContext({ viewport: { width: 1280, height: 800 } })
    try {
      const page = await phone.newPage()
      await page.goto(e2e.server.url)
      await waitReady(page)
      // Folded on a phone: the digit pad comes first; a card opens from its heading.
      const ocr = page.locator('details', { has: page.locator('[data-testid=ocr-run]') })
      expect(await ocr.getAttribute('open')).toBeNull()
      await expect(page.locator('[data-testid=ocr-run]').isVisible()).resolves.toBe(false)
      await ocr.locator('summary').click()
      await page.locator('[data-testid=ocr-run]').waitFor()
      await page.locator('details > summary', { hasText: /^\s*Peers\s*\d/ }).click()
      // A card the user opened stays open when the page updates (here: another peer joins).
      const other = await openTab(desktop, e2e.server.url)
      await page.locator(`[data-testid=peer-row][data-peer-id="${other.peerId}"]`).waitFor()
      expect(await page.locator('[data-testid=ocr-run]').isVisible()).toBe(true)

      const problems: Record<string, string[]> = {}
      const views = { work: '[data-testid=submit-digit]', network: '[data-testid=dash-peer]', jobs: '[data-testid=batch-run]' }
      for (const [view, ready] of Object.entries(views)) {
        await page.locator(`[data-testid=nav-${view}]`).click()
        await page.locator(`[data-testid=nav-${view}][aria-current=page]`).waitFor()
        await page.locator(ready).first().waitFor()
        problems[view] = await page.evaluate(LAYOUT_PROBLEMS) as string[]
      }
      expect(problems).toEqual({ work: [], network: [], jobs: [] })

      // On a desktop the cards are narrow too: their selects show their whole choice ("2: every result checked").
      await other.page.locator('[data-testid=nav-jobs]').click()
      await other.page.locator('[data-testid=batch-run]').waitFor()
      expect(await other.page.evaluate(LAYOUT_PROBLEMS)).toEqual([])
    } finally {
      await phone.close()
      await desktop.close()
    }
  })

  it('opens with no network after one visit and reads an image on this tab with the models it kept', async () => {
    const page = await context.newPage()
    // One backend to measure (WASM, one thread): each OCR model loads once. Isolation, which WASM
    // threads need, is checked as such below.
    await page.goto(`${e2e.server.url}?threads=1`)
    await waitReady(page)
    // Installed: the service worker has cached the build's shell and controls the page.
    await page.waitForFunction(() => navigator.serviceWorker.controller?.state === 'activated', undefined, { timeout: 60_000 })

    // One use of OCR on this tab (the only peer there is): the built-in OCR models are fetched once.
    await page.locator('[data-testid=ocr-sample][data-file="note.png"]').click()
    expect(await readPage(page, 'note.png')).toEqual(await sampleLines('note.png'))

    // No network at all: the browser offline, and the server (the relay too) gone.
    await context.setOffline(true)
    await e2e.server.stop()
    await page.reload()

    await page.locator('[data-testid=nav-work]').waitFor()
    // The shell came from the cache with its COOP/COEP headers: still isolated, so WASM threads stay available.
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true)
    // The relays come from the last /config.json seen; the page says it cannot reach them.
    await page.locator('[data-testid=relay-error]').filter({ hasText: /relay/ }).waitFor({ timeout: 30_000 })
    expect(await page.locator('[data-testid=fatal]').count()).toBe(0)

    // A digit on this tab: the digits model it loaded at start came from its own cache.
    const digit = heldOutDigits()[0]
    await paintDigit(page, digit.pixels)
    const result = await submitDigit(page, 'self')
    expect(result).toMatchObject({ status: 'done', prediction: digit.label })

    // An image of the user's own, read by this tab's Web Worker with the cached models.
    await page.locator('[data-testid=ocr-files]').setInputFiles(SAMPLES + 'settings.png')
    expect(await readPage(page, 'settings.png')).toEqual(await sampleLines('settings.png'))
  }, 2 * OCR_MS + 60_000)
})

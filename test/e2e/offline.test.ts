/**
 * The installed app with no network, in real Chromium against the real served build: after one
 * visit in which the tab used OCR, the network goes away (the browser offline and the server that
 * served the app, which is also the relay, stopped), and a reload still opens the page
 * cross-origin isolated, says the relay is unreachable, and reads a new image on this tab's own
 * Web Worker with the built-in models it kept.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitReady } from '../../src/node/page-driver.js'
import { startE2E, stopE2E } from './helpers.js'
import type { E2E } from './helpers.js'
import type { BrowserContext, Page } from 'playwright-core'

const SAMPLES = fileURLToPath(new URL('../../public/samples/ocr/', import.meta.url))
const OCR_MS = 90_000

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

describe('installable and offline', () => {
  beforeAll(async () => {
    e2e = await startE2E()
    context = await e2e.browser.newContext({ viewport: { width: 1280, height: 900 } })
  })

  afterAll(async () => { await stopE2E(e2e) })

  it('opens with no network after one visit and reads an image on this tab with the models it kept', async () => {
    const page = await context.newPage()
    // Two WASM threads whatever the core count: a page that lost its isolation offline would run on one.
    await page.goto(`${e2e.server.url}?threads=2`)
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
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true)
    // The relays come from the last /config.json seen; the page says it cannot reach them.
    await page.locator('[data-testid=relay-error]').filter({ hasText: /relay/ }).waitFor({ timeout: 30_000 })
    expect(await page.locator('[data-testid=fatal]').count()).toBe(0)

    // An image of the user's own, read by this tab's Web Worker with the cached models.
    await page.locator('[data-testid=ocr-files]').setInputFiles(SAMPLES + 'settings.png')
    expect(await readPage(page, 'settings.png')).toEqual(await sampleLines('settings.png'))
  })
})

/**
 * A volunteer's controls and the rough edges a new user meets, in real Chromium: a pause that
 * survives a reload (banner, tab title, the other tab's view of it), "only while visible", slots
 * kept and applied on reload, an empty pad, wrong `?relay=` values, and a relay that is down.
 * Tabs A and B live in separate browser contexts: the settings are per browser (localStorage).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { heldOutDigits } from '../../src/node/mnist.js'
import { openTab, paintDigit, peerRow, submitDigit, waitForPeer, waitForWorker, waitReady } from '../../src/node/page-driver.js'
import { startE2E, stopE2E } from './helpers.js'
import type { E2E } from './helpers.js'
import type { Page } from 'playwright-core'
import type { TabHandle } from '../../src/node/page-driver.js'

let e2e: E2E
let a: TabHandle
let b: TabHandle
const digit = heldOutDigits()[7]

/** Waits until `page` lists `peerId` as paused ('yes') or working ('no'), from its adverts. */
async function waitPaused (page: Page, peerId: string, paused: 'yes' | 'no'): Promise<void> {
  await page.locator(`[data-testid=peer-row][data-peer-id="${peerId}"][data-paused=${paused}]`).waitFor()
}

/** Headless Chromium keeps every page visible: set what the page reads, and the event it listens to. */
async function setVisibility (page: Page, state: 'visible' | 'hidden'): Promise<void> {
  await page.evaluate((s) => {
    Object.defineProperty(document, 'visibilityState', { value: s, configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
  }, state)
}

describe('volunteer controls', () => {
  beforeAll(async () => {
    e2e = await startE2E()
    a = await openTab(await e2e.browser.newContext(), e2e.server.url)
    b = await openTab(await e2e.browser.newContext(), e2e.server.url)
    await waitForWorker(b.page, a.peerId)
  })

  afterAll(async () => { await stopE2E(e2e) })

  it('refuses to recognise an empty pad, with a hint, and sends nothing', async () => {
    await a.page.bringToFront()
    await a.page.locator('[data-testid=clear-digit]').click()
    const before = await a.page.locator('[data-testid=result]').count()
    await a.page.locator('[data-testid=submit-digit]').click()
    await a.page.locator('[data-testid=pad-hint]', { hasText: 'Draw a digit first' }).waitFor()
    // Drawing clears the hint.
    const box = (await a.page.locator('[data-testid=digit-pad]').boundingBox())!
    await a.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
    await a.page.mouse.down()
    await a.page.mouse.up()
    await a.page.locator('[data-testid=pad-hint]').waitFor({ state: 'detached' })
    // Nothing was sent for the empty pad: a digit sent now, once its result is shown, is the only
    // new card (a card for the empty pad, had one been sent, would be shown by then too).
    await paintDigit(a.page, digit.pixels)
    const sent = await submitDigit(a.page, 'self')
    expect(sent.status, sent.error).toBe('done')
    expect(await a.page.locator('[data-testid=result]').count()).toBe(before + 1)
  })

  it('says where the tab computes in words, not engine labels', async () => {
    const words = await a.page.locator('[data-testid=backend]').textContent()
    expect(words).toMatch(/^CPU \(WebAssembly\), \d+ threads? · 1 task at a time/)
    expect(words).not.toMatch(/wasm simd/)
  })

  it('a pause survives a reload: banner, tab title, and other peers see it paused', async () => {
    await a.page.bringToFront()
    await a.page.locator('[data-testid=pause-toggle]').click()
    await a.page.locator('[data-testid=paused-banner][data-reasons="paused by you"]').waitFor()
    expect(await a.page.title()).toMatch(/^⏸ Paused \(paused by you\)/)
    await waitPaused(b.page, a.peerId, 'yes')

    // B's row for A says paused from before the reload, and no page state tells when B has A's new
    // page's first advert: B notes every paused state it shows for A from now until A is resumed.
    await b.page.evaluate((id) => {
      const shown: string[] = []
      const note = (): void => {
        const state = document.querySelector(`[data-testid=peer-row][data-peer-id="${id}"]`)?.getAttribute('data-paused') ?? 'not listed'
        if (shown.at(-1) !== state) shown.push(state)
      }
      note()
      new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-paused'] })
      ;(window as unknown as { pausedShown: string[] }).pausedShown = shown
    }, a.peerId)
    await a.page.reload()
    expect(await waitReady(a.page)).toBe(a.peerId)
    await a.page.locator('[data-testid=paused-banner][data-reasons="paused by you"]').waitFor()
    expect(await a.page.title()).toMatch(/^⏸ Paused/)
    expect(await a.page.locator('[data-testid=pause-toggle]').getAttribute('aria-pressed')).toBe('true')
    expect(await a.page.locator('link[rel=icon]').getAttribute('data-state')).toBe('paused')
    await paintDigit(b.page, digit.pixels)
    const refused = await submitDigit(b.page, a.peerId)
    expect(refused.status).toBe('failed')
    expect(await b.page.locator('[data-testid=result]').first().getAttribute('data-error-code')).toBe('busy')
    // The reloaded tab's first adverts already say paused: B never saw it working in between
    // (read before the resume below, which makes it working).
    const shown = await b.page.evaluate(() => (window as unknown as { pausedShown: string[] }).pausedShown)
    expect(shown, 'what B showed for A across its reload').not.toContain('no')
    expect(shown.at(-1)).toBe('yes')

    await a.page.locator('[data-testid=banner-resume]').click()
    await a.page.locator('[data-testid=paused-banner]').waitFor({ state: 'detached' })
    expect(await a.page.title()).toBe('P2P AI Agents')
    await waitPaused(b.page, a.peerId, 'no')
  })

  it('"only while visible" pauses a hidden tab with the reason shown, and is kept across reloads', async () => {
    await a.page.bringToFront()
    await a.page.locator('[data-testid=volunteer-visible-only]').check()
    await setVisibility(a.page, 'hidden')
    await a.page.locator('[data-testid=paused-banner][data-reasons="this tab is hidden"]').waitFor()
    expect(await a.page.title()).toMatch(/^⏸ Paused \(this tab is hidden\)/)
    await waitPaused(b.page, a.peerId, 'yes')
    await setVisibility(a.page, 'visible')
    await a.page.locator('[data-testid=paused-banner]').waitFor({ state: 'detached' })
    await waitPaused(b.page, a.peerId, 'no')

    await a.page.locator('[data-testid=volunteer-slots]').fill('2')
    await a.page.locator('[data-testid=volunteer-slots]').dispatchEvent('change')
    await a.page.locator('[data-testid=volunteer-reload-note]').waitFor()
    await a.page.reload()
    await waitReady(a.page)
    expect(await a.page.locator('[data-testid=volunteer-visible-only]').isChecked()).toBe(true)
    expect(await a.page.locator('[data-testid=volunteer-slots]').inputValue()).toBe('2')
    expect(await a.page.locator('[data-testid=backend]').textContent()).toMatch(/2 tasks at a time/)
    expect(await a.page.locator('[data-testid=volunteer-reload-note]').count()).toBe(0)
    // B holds a direct connection to A's previous page (its task above) and would send the next
    // task down it: as a person would, wait until B sees that connection gone (WebRTC notices in
    // ~8–16 s here) and has the new page's advert, which offers its two slots.
    await waitForPeer(b.page, a.peerId, { connection: 'not connected', timeoutMs: 45_000 })
    await peerRow(b.page, a.peerId).filter({ hasText: '2 slots' }).waitFor()
    // Still works with two inference workers.
    await paintDigit(b.page, digit.pixels)
    const result = await submitDigit(b.page, a.peerId)
    expect(result.status, result.error).toBe('done')
    // A value out of range is refused in words and not stored.
    await a.page.locator('[data-testid=volunteer-slots]').fill('99')
    await a.page.locator('[data-testid=volunteer-slots]').dispatchEvent('change')
    await a.page.locator('[data-testid=volunteer-error]', { hasText: /slots must be a whole number from 1 to \d+/ }).waitFor()
  })

  it('keeps digit results and the work log across a reload', async () => {
    const rows = await a.page.locator('[data-testid=served-row][data-state=done]').count()
    expect(rows).toBeGreaterThan(0)
    // The totals render a moment after the rows (they are the browser-wide ledger's): wait until they count them.
    await a.page.waitForFunction((n) => Number(document.querySelector('[data-testid=work-totals]')?.getAttribute('data-done')) >= n, rows, { polling: 100, timeout: 30_000 })
    const done = Number(await a.page.locator('[data-testid=work-totals]').getAttribute('data-done'))
    const results = await b.page.locator('[data-testid=result]').count()
    await b.page.reload()
    await waitReady(b.page)
    expect(await b.page.locator('[data-testid=result]').count()).toBe(Math.min(results, 5))
    await a.page.reload()
    await waitReady(a.page)
    expect(await a.page.locator('[data-testid=served-row][data-state=done]').count()).toBe(rows)
    expect(Number(await a.page.locator('[data-testid=work-totals]').getAttribute('data-done'))).toBe(done)
  })

  it('"pause on battery" is offered where the browser tells, and pauses while discharging', async () => {
    // The machine running the tests has no battery: the page is given one whose state the test sets.
    const withBattery = await e2e.browser.newContext()
    const without = await e2e.browser.newContext()
    try {
      await withBattery.addInitScript(() => {
        const battery = Object.assign(new EventTarget(), { charging: false })
        Object.defineProperty(navigator, 'getBattery', { value: async () => battery })
        Object.assign(window, { testBattery: battery })
      })
      await without.addInitScript(() => { delete (Navigator.prototype as { getBattery?: unknown }).getBattery })
      const page = (await openTab(withBattery, e2e.server.url)).page
      await page.locator('[data-testid=volunteer-battery]').check()
      await page.locator('[data-testid=paused-banner][data-reasons="on battery"]').waitFor()
      expect(await page.title()).toMatch(/^⏸ Paused \(on battery\)/)
      await page.evaluate(() => {
        const battery = (window as unknown as { testBattery: EventTarget & { charging: boolean } }).testBattery
        battery.charging = true
        battery.dispatchEvent(new Event('chargingchange'))
      })
      await page.locator('[data-testid=paused-banner]').waitFor({ state: 'detached' })

      const bare = await without.newPage()
      await bare.goto(e2e.server.url)
      await bare.locator('[data-testid=volunteer-visible-only]').waitFor()
      expect(await bare.locator('[data-testid=volunteer-battery]').count()).toBe(0)
    } finally {
      await withBattery.close()
      await without.close()
    }
  })

  it('names a wrong ?relay= value and says what a relay address looks like', async () => {
    const context = await e2e.browser.newContext()
    try {
      const page = await context.newPage()
      await page.goto(`${e2e.server.url}?relay=hello`)
      const fatal = page.locator('[data-testid=fatal]')
      await fatal.waitFor()
      expect(await fatal.textContent()).toMatch(/relay address "hello" is not a multiaddr.*a relay address looks like \/ip4\/.*\/ws\/p2p\//)

      // The relay's address with a port nobody listens on: unreachable, said in words, never "(undefined)".
      const wrongPort = e2e.server.relayAddr.replace(/\/tcp\/\d+\//, '/tcp/9/')
      await page.goto(`${e2e.server.url}?relay=${encodeURIComponent(wrongPort)}`)
      const words = page.locator('[data-testid=relay-words][data-state=disconnected]')
      await words.waitFor()
      expect(await words.textContent()).toContain(`relay unreachable, retrying: ${wrongPort}`)
      const error = await page.locator('[data-testid=relay-error]').textContent()
      expect(error).toContain(wrongPort)
      expect(`${error ?? ''} ${await words.textContent() ?? ''}`).not.toMatch(/undefined/)
      // Recognise blames the relay, not a missing tab.
      await paintDigit(page, digit.pixels)
      const result = await submitDigit(page, 'any')
      expect(result.status).toBe('failed')
      expect(result.error).toMatch(/relay unreachable, retrying: /)
      expect(result.error).not.toMatch(/another tab/)
    } finally {
      await context.close()
    }
  })

  it('with the relay gone, Recognise says the relay is unreachable although the peer is still listed', async () => {
    await e2e.server.stop()
    await a.page.locator('[data-testid=relay-words][data-state=disconnected]', { hasText: 'relay unreachable, retrying' }).waitFor()
    await waitForPeer(a.page, b.peerId)
    await paintDigit(a.page, digit.pixels)
    const result = await submitDigit(a.page, 'any')
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(/relay unreachable, retrying: /)
    expect(result.error).not.toMatch(/another tab/)
  })
})

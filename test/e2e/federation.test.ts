/**
 * Two relays linked into one network (`--bootstrap`): a tab on the first relay sees a tab on the
 * second from its advert, which crossed the relay link, and runs a digit on it over a direct
 * WebRTC connection signalled through the second relay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRelay } from '../../src/node/app-server.js'
import { heldOutDigits } from '../../src/node/mnist.js'
import { openTab, paintDigit, peerRow, submitDigit, waitForDirectPeer, waitForPeer, waitForRtt, waitForWorker } from '../../src/node/page-driver.js'
import { argmax } from '../../src/models/digits.js'
import { referenceProbs, startE2E, stopE2E } from './helpers.js'
import type { E2E } from './helpers.js'
import type { RelayProcess } from '../../src/node/app-server.js'
import type { Page } from 'playwright-core'

let e2e: E2E
let second: RelayProcess | undefined

/** The app from the first server, told which relay to use (`?relay=` overrides the served config). */
function appOn (relayAddr: string): string {
  return `${e2e.server.url}?threads=2&relay=${encodeURIComponent(relayAddr)}`
}

describe('two linked relays', () => {
  beforeAll(async () => {
    e2e = await startE2E()
    second = await startRelay({ bootstrap: [e2e.server.relayAddr] })
  })

  afterAll(async () => {
    await second?.stop()
    await stopE2E(e2e)
  })

  it('a tab on one relay finds a tab on the other and runs a digit on it over direct WebRTC', async () => {
    // Two browser profiles, like two devices.
    const a = await openTab(await e2e.browser.newContext(), appOn(e2e.server.relayAddr))
    const b = await openTab(await e2e.browser.newContext(), appOn(second!.relayAddr))
    // Each tab holds the relay it was given (and only lists the other, if at all, as a fallback).
    await expectReadyOn(a.page, e2e.server.relayAddr, e2e.server.peerId)
    await expectReadyOn(b.page, second!.relayAddr, second!.peerId)

    // B's advert went B → relay 2 → relay 1 → A (and A's the other way); nobody dialled anybody.
    await waitForWorker(a.page, b.peerId)
    await waitForWorker(b.page, a.peerId)
    expect(await peerRow(a.page, b.peerId).getAttribute('data-connection')).toBe('not connected')
    // Relays are not listed as peers: once A knows relay 2 (from its advert, as a relay to fall
    // back on), its peer list still leaves it out.
    await a.page.locator(`[data-testid=relay][data-relay-id="${second!.peerId}"]`).waitFor()
    expect(await a.page.locator(`[data-testid=peer-row][data-peer-id="${second!.peerId}"]`).count()).toBe(0)

    const digit = heldOutDigits()[6]
    await paintDigit(a.page, digit.pixels)
    const result = await submitDigit(a.page, b.peerId)
    expect(result.status, result.error).toBe('done')
    expect(result.worker).toBe(b.peerId)
    expect(result.prediction).toBe(argmax(await referenceProbs(digit.pixels)))
    // The result came back over the direct connection the task dialled.
    await waitForDirectPeer(a.page, b.peerId)
    await waitForPeer(b.page, a.peerId, { connection: 'direct WebRTC' })
    expect(await waitForRtt(a.page, b.peerId)).toBeGreaterThan(0)
    await b.page.locator(`[data-testid=served-row][data-requester="${a.peerId}"][data-state=done]`).first().waitFor()
  })
})

/** The page's relay pill says ready, on the relay it was given; per-relay pills (shown once it knows two) agree. */
async function expectReadyOn (page: Page, relayAddr: string, relayId: string): Promise<void> {
  const pill = page.locator('[data-testid=relay-status]')
  await pill.filter({ hasText: 'ready' }).waitFor()
  expect(await pill.getAttribute('title')).toBe(relayAddr)
  const states = await page.locator('[data-testid=relay]').evaluateAll(els => Object.fromEntries(els.map(e => [e.getAttribute('data-relay-id') ?? '', e.getAttribute('data-state') ?? ''])))
  if (Object.keys(states).length > 0) expect(states[relayId]).toBe('ready')
}

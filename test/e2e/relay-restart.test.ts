/**
 * The relay is only a bootstrap: a direct connection made for work keeps carrying tasks while the
 * relay is down, and every tab rejoins (same relay key and port) when it is back.
 */
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppServer } from '../../src/node/app-server.js'
import { launchChromium } from '../../src/node/chromium.js'
import { heldOutDigits } from '../../src/node/mnist.js'
import { openTab, paintDigit, submitDigit, waitForDirectPeer, waitForWorker } from '../../src/node/page-driver.js'
import type { AppServer } from '../../src/node/app-server.js'
import type { Browser } from 'playwright-core'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

let browser: Browser
let server: AppServer | undefined

describe('relay restart', () => {
  beforeAll(async () => { browser = await launchChromium() })
  afterAll(async () => {
    await browser?.close().catch(() => {})
    await server?.stop()
  })

  it('keeps direct work going while the relay is down, and every tab rejoins when it returns', async () => {
    const options = { keyFile: join(tmpdir(), `p2p-ai-agents-restart-${process.pid}.key`), wsPort: await freePort(), httpPort: await freePort() }
    server = await startAppServer(options)
    const context = await browser.newContext()
    const a = await openTab(context, server.url)
    const b = await openTab(context, server.url)
    await waitForWorker(a.page, b.peerId)

    // A first task dials tab B directly.
    const digit = heldOutDigits()[4]
    await paintDigit(a.page, digit.pixels)
    const before = await submitDigit(a.page, b.peerId)
    expect(before.status, before.error).toBe('done')
    await waitForDirectPeer(a.page, b.peerId)

    await server.stop()
    server = undefined
    for (const tab of [a, b]) await tab.page.locator('[data-testid=relay-status]', { hasText: 'disconnected' }).waitFor()

    // No relay: the direct WebRTC connection still carries tasks.
    const during = await submitDigit(a.page, b.peerId)
    expect(during.status, during.error).toBe('done')
    expect(during.worker).toBe(b.peerId)
    expect(during.prediction).toBe(before.prediction)

    server = await startAppServer(options)
    for (const tab of [a, b]) await tab.page.locator('[data-testid=relay-status]', { hasText: 'ready' }).waitFor({ timeout: 30_000 })

    // A tab that arrives after the restart learns of both from their adverts and dials one for work.
    const c = await openTab(context, server.url)
    await waitForWorker(c.page, a.peerId)
    await waitForWorker(c.page, b.peerId)
    await paintDigit(c.page, digit.pixels)
    const after = await submitDigit(c.page, a.peerId)
    expect(after.status, after.error).toBe('done')
    expect(after.worker).toBe(a.peerId)
    expect(after.prediction).toBe(during.prediction)
    await waitForDirectPeer(c.page, a.peerId)
  })
})

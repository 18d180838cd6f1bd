/**
 * The network view (#/network) in real Chromium: three tabs and a Node worker on one relay. Tab A's
 * dashboard lists the other two tabs and the Node worker by name, kind and connection, the relay
 * as healthy, and once tasks ran, charts their rate (this tab's round trips, and the network's
 * from the workers' advertised totals).
 */
import '../../src/node/polyfill.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { heldOutDigits } from '../../src/node/mnist.js'
import { openTab } from '../../src/node/page-driver.js'
import { startNodePeer } from '../../src/node/node-peer.js'
import { MemoryModelStore } from '../../src/core/model-store.js'
import { peerName } from '../../src/core/peer-name.js'
import { startE2E, stopE2E } from './helpers.js'
import type { E2E } from './helpers.js'
import type { Page } from 'playwright-core'
import type { NodePeer } from '../../src/node/node-peer.js'
import type { TabHandle } from '../../src/node/page-driver.js'

let e2e: E2E
let worker: NodePeer | undefined
let a: TabHandle
let b: TabHandle
let c: TabHandle

function row (page: Page, peerId: string): ReturnType<Page['locator']> {
  return page.locator(`[data-testid=dash-peer][data-peer-id="${peerId}"]`)
}

/** Waits until a chart's data-* attribute reads a number above `min`; returns it. */
async function waitAbove (page: Page, chart: string, attr: string, min: number): Promise<number> {
  const handle = await page.waitForFunction(([testid, name, floor]) => {
    const v = Number(document.querySelector(`[data-testid=${testid}]`)?.getAttribute(name) ?? '')
    return Number.isFinite(v) && v > floor ? v : false
  }, [chart, attr, min] as const, { timeout: 40_000, polling: 250 })
  return await handle.jsonValue() as number
}

describe('network dashboard', () => {
  beforeAll(async () => {
    e2e = await startE2E()
    const context = await e2e.browser.newContext({ viewport: { width: 1280, height: 900 } })
    // Three tabs and a Node worker start at once: on a loaded machine a tab can take longer than the usual 30 s.
    ;[a, b, c, worker] = await Promise.all([
      openTab(context, e2e.server.url, 75_000),
      openTab(context, e2e.server.url, 75_000),
      openTab(context, e2e.server.url, 75_000),
      startNodePeer({ relays: [e2e.server.relayAddr], modelStore: new MemoryModelStore() })
    ])
  })

  afterAll(async () => {
    await worker?.stop()
    await stopE2E(e2e)
  })

  it('lists the other tabs and the Node worker with names, kinds and connection, and the relay as healthy', async () => {
    const nodeId = worker!.node.peerId.toString()
    await a.page.locator('[data-testid=nav-network]').click()
    await a.page.locator('[data-testid=dashboard]').waitFor()
    for (const [id, kind] of [[b.peerId, 'tab'], [c.peerId, 'tab'], [nodeId, 'node']] as const) {
      const r = row(a.page, id)
      await a.page.locator(`[data-testid=dash-peer][data-peer-id="${id}"][data-worker=yes]`).waitFor({ timeout: 30_000 })
      expect(await r.getAttribute('data-kind')).toBe(kind)
      expect(await r.getAttribute('data-name')).toBe(peerName(id))
      const text = await r.textContent()
      expect(text).toContain(peerName(id))
      expect(text).toContain(kind === 'tab' ? 'CPU (WASM)' : 'CPU (Node)')
      expect(text).toContain(kind === 'tab' ? 'tab' : 'Node worker')
      // Nobody sent it work yet: known from its advert only.
      expect(await r.getAttribute('data-connection')).toBe('not connected')
    }
    expect(await a.page.locator('[data-testid=dash-peer][data-self=yes]').getAttribute('data-peer-id')).toBe(a.peerId)
    // Healthy: it holds this tab's reservation and answers pings over the tab's connection.
    await a.page.locator(`[data-testid=dash-relay][data-peer-id="${e2e.server.peerId}"][data-healthy=yes]:not([data-rtt-ms=""])`).waitFor()
    // The relay that served the page shows its /metrics.
    await a.page.locator(`[data-testid=dash-relay][data-peer-id="${e2e.server.peerId}"]`, { hasText: 'peers known' }).waitFor()
  })

  it('charts the tasks it sent and the network\'s served tasks, and shows the direct connections they opened', async () => {
    const nodeId = worker!.node.peerId.toString()
    const pixels = Array.from(heldOutDigits()[0].pixels)
    const runs = await a.page.evaluate(async ([px, targets]) => {
      const api = window.p2pAgents
      const all = await Promise.all(targets.map(async peerId => await api.runDigits(px, 10, { kind: 'peer', peerId })))
      return all.flat().length
    }, [pixels, [b.peerId, nodeId]] as const)
    expect(runs).toBe(20)
    expect(await waitAbove(a.page, 'chart-tasks', 'data-sent-peak', 0)).toBeGreaterThan(0)
    const latency = a.page.locator('[data-testid=chart-latency]')
    await a.page.locator('[data-testid=chart-latency][data-sent-p50]:not([data-sent-p50=""])').waitFor()
    expect(Number(await latency.getAttribute('data-sent-p95'))).toBeGreaterThanOrEqual(Number(await latency.getAttribute('data-sent-p50')))
    // Both workers' adverts carry their grown totals (the first task's speed is a material change).
    expect(await waitAbove(a.page, 'chart-tasks', 'data-network-peak', 0)).toBeGreaterThan(0)
    for (const id of [b.peerId, nodeId]) {
      // The dashboard renders once a second: wait for the render after the last task.
      await a.page.locator(`[data-testid=dash-peer][data-peer-id="${id}"][data-connection="direct WebRTC"]`, { hasText: /digits .*round trip from here \(10 tasks\)/ }).waitFor()
    }
    // Tab C did no work: still only known from its advert.
    expect(await row(a.page, c.peerId).getAttribute('data-connection')).toBe('not connected')
  })
})

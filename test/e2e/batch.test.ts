/** Batch jobs across real tabs: workers closing mid-job, and a requester reloading mid-job. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { batchContributions, batchProgress, exportBatchJson, exportBatchProofs, openTab, paintDigit, startBatch, submitDigit, waitBatchDone, waitBatchSummary, waitForWorker, waitReady } from '../../src/node/page-driver.js'
import { heldOutDigits } from '../../src/node/mnist.js'
import { loadDigitDataset } from '../../src/node/datasets.js'
import { MODELS_DIR } from '../../src/node/node-peer.js'
import { argmax, DIGITS_INPUT, DIGITS_OUTPUT_PROBS } from '../../src/models/digits.js'
import { startE2E, stopE2E } from './helpers.js'
import type { E2E } from './helpers.js'
import type { BrowserContext } from 'playwright-core'
import type { TabHandle } from '../../src/node/page-driver.js'

let e2e: E2E

/** onnxruntime-node's predictions for the first n dataset images: what any correct run must give. */
async function referencePredictions (n: number): Promise<number[]> {
  const dataset = await loadDigitDataset('mnist-test')
  const session = await ort.InferenceSession.create(MODELS_DIR + 'digits.onnx')
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const r = await session.run({ [DIGITS_INPUT]: new ort.Tensor('float32', dataset.pixels(i), [1, 1, 28, 28]) })
    out.push(argmax(r[DIGITS_OUTPUT_PROBS].data as Float32Array))
  }
  return out
}

/** Three tabs in one browser; tab A sees B and C as workers (their adverts reached it). */
async function threeTabs (): Promise<{ context: BrowserContext, a: TabHandle, b: TabHandle, c: TabHandle }> {
  const context = await e2e.browser.newContext()
  const a = await openTab(context, e2e.server.url)
  const b = await openTab(context, e2e.server.url)
  const c = await openTab(context, e2e.server.url)
  await waitForWorker(a.page, b.peerId)
  await waitForWorker(a.page, c.peerId)
  return { context, a, b, c }
}

function expectExactlyOnce (results: Array<{ index: number }>, n: number): void {
  expect(results.map(r => r.index)).toEqual(Array.from({ length: n }, (_, i) => i))
}

describe('batch jobs in the browser', () => {
  beforeAll(async () => { e2e = await startE2E() })
  afterAll(async () => { await stopE2E(e2e) })

  it('completes with every task exactly once when a worker tab closes mid-job', async () => {
    const N = 3000
    const { context, a, b, c } = await threeTabs()
    // Connections are on demand: a task to each first, so a slow WebRTC handshake on a loaded
    // machine cannot let the job run on one worker before the other is dialled.
    // (The pad refuses to send an empty drawing: paint one first.)
    await paintDigit(a.page, heldOutDigits()[0].pixels)
    for (const w of [b, c]) {
      const warm = await submitDigit(a.page, w.peerId)
      expect(warm.status, warm.error).toBe('done')
    }
    await startBatch(a.page, { replicas: 1, limit: N })
    // Close C once both B and C are contributing.
    const share = async (tab: TabHandle): Promise<number> => (await batchContributions(a.page))[tab.peerId.slice(-8)] ?? 0
    await expect.poll(async () => Math.min(await share(b), await share(c)), { timeout: 60_000, message: 'both worker tabs contribute to the batch' }).toBeGreaterThan(0)
    await c.page.close()
    const bAtClose = await share(b)
    const summary = await waitBatchSummary(a.page)
    expect(summary.state).toBe('done')
    expect(summary.count).toBe(N)
    const exported = await exportBatchJson(a.page)
    expectExactlyOnce(exported.results, N)
    const reference = await referencePredictions(N)
    expect(exported.results.map(r => r.prediction)).toEqual(reference)
    // Tab C's share stopped when it closed; the others took its tasks.
    const workers = new Set(exported.results.flatMap(r => r.agreedBy))
    const seen = await a.page.locator(`[data-testid=peer-row][data-peer-id="${b.peerId}"]`).textContent()
    expect(workers.has(b.peerId), `tab B did none of the work; tab A lists it as: ${seen}`).toBe(true)
    expect(workers.has(c.peerId)).toBe(true)
    // …and took over from C: its share grew after C closed.
    expect(await share(b), 'tab B went on working after C closed').toBeGreaterThan(bAtClose)
    await context.close()
  })

  it('resumes after the requester reloads, without recomputing finished tasks', async () => {
    const N = 3000
    const context = await e2e.browser.newContext()
    const a = await openTab(context, e2e.server.url)
    const b = await openTab(context, e2e.server.url)
    await waitForWorker(a.page, b.peerId)
    await startBatch(a.page, { replicas: 2, limit: N })
    await waitBatchDone(a.page, 800)
    const before = await batchProgress(a.page)
    await a.page.reload()
    await waitReady(a.page)
    await a.page.locator('[data-testid=batch-progress]').waitFor()
    const summary = await waitBatchSummary(a.page)
    const after = await batchProgress(a.page)
    expect(after.jobId).toBe(before.jobId)
    expect(summary.state).toBe('done')
    expect(summary.count).toBe(N)
    // Results decided before the reload came back from IndexedDB (all but the last moments' unflushed ones)…
    expect(after.restored).toBeGreaterThan(0)
    expect(after.restored).toBeLessThanOrEqual(N)
    // …and only the rest was computed again: with 2 replicas at most 2 results per remaining task (plus a few speculative copies).
    expect(after.computed).toBeLessThanOrEqual(2 * (N - after.restored) + 50)
    const exported = await exportBatchJson(a.page)
    expectExactlyOnce(exported.results, N)
    expect(exported.results.map(r => r.prediction)).toEqual(await referencePredictions(N))
    expect(summary.crossChecked).toBe(N)
    expect(summary.disagreements).toBe(0)

    // The proofs export (results with receipts, the audit log across the reload) checks out offline.
    const proofs = await exportBatchProofs(a.page)
    const lines = proofs.trim().split('\n').map(l => JSON.parse(l) as { kind: string })
    expect(lines.filter(l => l.kind === 'result').length, 'results with a worker receipt').toBeGreaterThan(0)
    expect(lines.filter(l => l.kind === 'audit').length).toBeGreaterThan(N)
    const dir = await mkdtemp(join(tmpdir(), 'p2p-proofs-'))
    try {
      await writeFile(join(dir, 'proofs.jsonl'), proofs)
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/node/verify.ts', join(dir, 'proofs.jsonl')])
      expect(stdout).toMatch(/checks out/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    await context.close()
  })

  it('a paused volunteer finishes nothing new; the job runs on the others', async () => {
    const N = 2000
    const { context, a, b, c } = await threeTabs()
    // Connections are on demand: a task to C first, so a slow WebRTC handshake on a loaded machine
    // cannot leave the job with no working volunteer dialled (as in the first test).
    await paintDigit(a.page, heldOutDigits()[0].pixels)
    const warm = await submitDigit(a.page, c.peerId)
    expect(warm.status, warm.error).toBe('done')
    await b.page.locator('[data-testid=pause-toggle]').click()
    await expect.poll(async () => await b.page.locator('[data-testid=pause-toggle]').getAttribute('aria-pressed')).toBe('true')
    // Tab A learns it from B's advert.
    await a.page.locator(`[data-testid=peer-row][data-peer-id="${b.peerId}"][data-paused=yes]`).waitFor()
    await startBatch(a.page, { replicas: 1, limit: N })
    const summary = await waitBatchSummary(a.page)
    expect(summary.state).toBe('done')
    const exported = await exportBatchJson(a.page)
    expectExactlyOnce(exported.results, N)
    const workers = new Set(exported.results.flatMap(r => r.agreedBy))
    expect(workers.has(b.peerId)).toBe(false)
    expect(workers.has(c.peerId)).toBe(true)
    await context.close()
  })
})

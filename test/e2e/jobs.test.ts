/**
 * The jobs page (#/jobs) in real Chromium: cancel, pause across a reload, a job that cannot
 * progress saying why, and a batch over an uploaded model and JSONL dataset, with what the
 * worker tab gave shown on its side.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openTab, startBatch, waitBatchDone, waitForWorker, waitReady } from '../../src/node/page-driver.js'
import { startE2E, stopE2E } from './helpers.js'
import type { E2E } from './helpers.js'
import type { BrowserContext, Locator, Page } from 'playwright-core'
import type { TabHandle } from '../../src/node/page-driver.js'

let e2e: E2E
/** One requester tab for every test (its jobs are told apart by id): opening tabs is what costs time here. */
let context: BrowserContext
let a: TabHandle

async function download (page: Page, button: Locator): Promise<string> {
  const file = page.waitForEvent('download')
  await button.click()
  const chunks: Buffer[] = []
  for await (const c of await (await file).createReadStream()) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

async function jobRow (page: Page, jobId: string): Promise<Locator> {
  await page.locator('[data-testid=nav-jobs]').click()
  const row = page.locator(`[data-testid=job-row][data-job-id="${jobId}"]`)
  await row.waitFor()
  return row
}

async function currentJobId (page: Page): Promise<string> {
  return (await page.locator('[data-testid=batch-progress]').getAttribute('data-job-id'))!
}

describe('the jobs page', () => {
  beforeAll(async () => {
    e2e = await startE2E()
    context = await e2e.browser.newContext()
    a = await openTab(context, e2e.server.url)
  })
  afterAll(async () => {
    await context?.close().catch(() => {})
    await stopE2E(e2e)
  })

  /** Back to the work view, where the digits batch panel is. */
  async function workView (): Promise<Page> {
    await a.page.bringToFront()
    await a.page.locator('[data-testid=nav-work]').click()
    return a.page
  }

  it('says in words why a job cannot progress; another tab of the browser neither resumes it nor offers Resume; it can be cancelled', async () => {
    const page = await workView()
    // Three independent results per task, and this tab is the only worker.
    await startBatch(page, { replicas: 3, limit: 100 })
    const blocked = page.locator('[data-testid=batch-blocked]')
    await blocked.waitFor()
    expect(await blocked.getAttribute('data-code')).toBe('too-few-workers')
    expect(await blocked.textContent()).toMatch(/needs 3 different workers, 1 available/)
    // No ETA for a job that cannot progress.
    expect(await page.locator('[data-testid=batch-eta]').count()).toBe(0)
    const jobId = await currentJobId(page)
    const row = await jobRow(page, jobId)
    await expect.poll(async () => await row.locator('[data-testid=job-blocked]').textContent()).toMatch(/needs 3 different workers, 1 available \(for \d+ s\)/)
    // A second tab shares the jobs (IndexedDB) but not the run: this tab holds the job's lock, so the
    // other lists it as running elsewhere, does not resume it on opening and offers no Pause or Resume.
    const b = await openTab(context, e2e.server.url)
    try {
      const other = await jobRow(b.page, jobId)
      await expect.poll(async () => await other.getAttribute('data-running-in')).toBe('another tab')
      expect(await other.getAttribute('data-state')).toBe('running in another tab')
      expect(await other.locator('[data-testid=job-pause], [data-testid=job-resume]').count()).toBe(0)
      await a.page.bringToFront()
      await row.locator('[data-testid=job-cancel]').click()
      await expect.poll(async () => await row.getAttribute('data-state')).toBe('cancelled')
      // The run let go of its lock: the other tab reads the job again and sees it cancelled.
      await expect.poll(async () => await other.getAttribute('data-state')).toBe('cancelled')
    } finally {
      await b.page.close()
    }
  })

  it('cancels a job: it says cancelled, stays so after a reload, and its decided results download', async () => {
    const page = await workView()
    await startBatch(page, { replicas: 1, limit: 10_000 })
    await waitBatchDone(page, 50)
    const jobId = await currentJobId(page)
    await page.locator('[data-testid=batch-cancel]').click()
    await page.locator('[data-testid=batch-summary][data-state=cancelled]').waitFor()
    await page.reload()
    await waitReady(page)
    const row = await jobRow(page, jobId)
    await expect.poll(async () => await row.getAttribute('data-state')).toBe('cancelled')
    // Not resumed by the reload: no controls but the downloads.
    expect(await row.locator('[data-testid=job-pause], [data-testid=job-resume], [data-testid=job-cancel]').count()).toBe(0)
    const csv = (await download(page, row.locator('[data-testid=job-download-csv]'))).trim().split('\n')
    const decided = csv.length - 1
    expect(decided).toBeGreaterThanOrEqual(50)
    expect(decided).toBeLessThan(10_000)
    expect(Number(await row.getAttribute('data-done'))).toBe(decided)
  })

  it('keeps a paused job paused across a reload, and resumes it to the end', async () => {
    // Far more tasks than a fast machine runs between the 30th result and the Pause click.
    const N = 2000
    const page = await workView()
    await startBatch(page, { replicas: 1, limit: N })
    await waitBatchDone(page, 30)
    const jobId = await currentJobId(page)
    await page.locator('[data-testid=batch-pause]').click()
    await page.locator('[data-testid=batch-paused]').waitFor()
    let row = await jobRow(page, jobId)
    await expect.poll(async () => await row.getAttribute('data-state')).toBe('paused')
    const before = Number(await row.getAttribute('data-done'))
    await page.reload()
    await waitReady(page)
    row = await jobRow(page, jobId)
    // The page has read its jobs and would have resumed a running one by now: this one stays paused.
    await row.locator('[data-testid=job-resume]').waitFor()
    expect(await row.getAttribute('data-state')).toBe('paused')
    expect(Number(await row.getAttribute('data-done'))).toBe(before)
    expect(before).toBeLessThan(N)
    await row.locator('[data-testid=job-resume]').click()
    await expect.poll(async () => await row.getAttribute('data-state'), { timeout: 120_000 }).toBe('done')
    const exported = JSON.parse(await download(page, row.locator('[data-testid=job-download-json]'))) as { results: Array<{ index: number }> }
    expect(exported.results.map(r => r.index)).toEqual(Array.from({ length: N }, (_, i) => i))
    const cost = row.locator('[data-testid=job-cost]')
    expect(Number(await cost.getAttribute('data-inference-ms'))).toBeGreaterThan(0)
    expect(Number(await cost.getAttribute('data-usd'))).toBeGreaterThan(0)
    expect(await cost.textContent()).toMatch(/GB-s at \$0\.0000166667 per GB-second with 2 GB/)
  })

  it('runs a batch over an uploaded model and JSONL dataset; the worker tab shows what it gave', async () => {
    const N = 40
    const dir = await mkdtemp(join(tmpdir(), 'p2p-jobs-'))
    try {
      const lines = Array.from({ length: N }, (_, i) => ({ a: [[i, 2, 3], [4, 5, 6]], b: [[0.5, -2, i / 10], [0.25, 0, -1]] }))
      const jsonl = join(dir, 'inputs.jsonl')
      await writeFile(jsonl, lines.map(l => JSON.stringify(l)).join('\n') + '\n')
      const modelFile = 'public/samples/models/add-mul.onnx'
      const session = await ort.InferenceSession.create(modelFile)
      const reference = await Promise.all(lines.map(async l => {
        const out = await session.run({ a: new ort.Tensor('float32', Float32Array.from(l.a.flat()), [2, 3]), b: new ort.Tensor('float32', Float32Array.from(l.b.flat()), [2, 3]) })
        return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data as ArrayLike<number | bigint>)]))
      }))

      const b = await openTab(context, e2e.server.url)
      await workView()
      await waitForWorker(a.page, b.peerId)
      await a.page.locator('[data-testid=nav-jobs]').click()
      await a.page.locator('[data-testid=custom-model]').setInputFiles(modelFile)
      await a.page.locator('[data-testid=custom-model-info]').waitFor()
      await a.page.locator('[data-testid=custom-jsonl]').setInputFiles(jsonl)
      await a.page.locator(`[data-testid=custom-dataset][data-tasks="${N}"]`).waitFor()
      // Two agreeing results per task from different workers: this tab and B, so B works on every task.
      await a.page.locator('[data-testid=custom-replicas]').selectOption('2')
      await a.page.locator('[data-testid=custom-run]').click()
      const row = a.page.locator('[data-testid=job-row][data-kind=custom]').first()
      await expect.poll(async () => await row.getAttribute('data-state'), { timeout: 120_000 }).toBe('done')
      const results = (await download(a.page, row.locator('[data-testid=job-download-jsonl]'))).trim().split('\n')
        .map(l => JSON.parse(l) as { index: number, outputs: Array<{ name: string, data: number[] }>, agreedBy: string[] })
      expect(results.map(r => r.index)).toEqual(Array.from({ length: N }, (_, i) => i))
      for (const r of results) {
        for (const o of r.outputs) {
          const want = reference[r.index][o.name]
          // 64-bit integers come as strings in JSON (and as BigInt from onnxruntime-node).
          o.data.forEach((v, k) => { expect(Number(v)).toBeCloseTo(Number(want[k]), 4) })
        }
      }
      expect(await row.locator('[data-testid=job-workers]').textContent()).toMatch(/this tab/)

      // Tab B's own account of what it gave, per requester, since install.
      await b.page.bringToFront()
      await b.page.locator('[data-testid=nav-jobs]').click()
      const given = b.page.locator(`[data-testid=contribution-row][data-peer="${a.peerId}"]`)
      // The ledger is written after each result is sent, so the last few can land after A has decided the job: wait for them.
      await expect.poll(async () => Number((await given.locator('td').nth(1).textContent())?.trim()), { timeout: 30_000 }).toBeGreaterThanOrEqual(N)
      await b.page.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

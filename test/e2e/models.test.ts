/**
 * Real models across real Chromium tabs (real relay, WebRTC, onnxruntime-web in Web Workers):
 * - OCR from the page: a sample image read by the other tab's worker gives the text it was rendered from;
 * - a model the user drops in tab A runs in tab B, which fetches it from A over WebRTC, verifies
 *   it, caches it in Cache Storage and never fetches it again (not even after a reload);
 * - generated models covering every dtype and dynamic shapes give onnxruntime-node's exact outputs;
 * - each tab measures its backends on a model's first use and keeps the fastest.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PNG } from 'pngjs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openTab, waitForWorker, waitReady } from '../../src/node/page-driver.js'
import { sha256Hex } from '../../src/core/hash.js'
import { DTYPES, fromTypedArray } from '../../src/core/tensor.js'
import { dynamicAddMul, identityAllDtypes } from '../../src/models/test-models.js'
import { writeNpy } from '../../src/models/npy.js'
import { heldOutDigits } from '../../src/node/mnist.js'
import { argmax } from '../../src/models/digits.js'
import { builtinModel } from '../../src/models/catalog.js'
import { startE2E, stopE2E } from './helpers.js'
import { WORKER_REPLACED_MARK } from '../../src/runtime/worker-executor.js'
import { expectSameOutputs, referenceRun } from '../helpers/onnx-reference.js'
import type { E2E } from './helpers.js'
import type { BrowserContext, Page } from 'playwright-core'
import type { TabHandle } from '../../src/node/page-driver.js'
import type { PlainTensor } from '../../src/browser/scripting.js'
import type { DTypeName, WireTensor } from '../../src/core/tensor.js'

const PUBLIC = fileURLToPath(new URL('../../public/', import.meta.url))
const OCR_MS = 120_000

let e2e: E2E
let a: TabHandle
let b: TabHandle

const plain = (t: WireTensor): PlainTensor => ({ name: t.name, dtype: t.dtype, dims: t.dims, bytes: Array.from(t.data) })
const wire = (t: PlainTensor): WireTensor => ({ name: t.name, dtype: t.dtype, dims: t.dims, data: Uint8Array.from(t.bytes) })

/** Rows of tab `page`'s "models fetched from peers" log for a model. */
async function fetchRows (page: Page, sha256: string): Promise<string[]> {
  return await page.locator(`[data-testid=model-fetch][data-sha256="${sha256}"]`).evaluateAll(rows => rows.map(r => r.getAttribute('data-state') ?? ''))
}

async function cachedModels (page: Page): Promise<string[]> {
  return await page.evaluate(async () => (await (await caches.open('p2p-models-v1')).keys()).map(r => new URL(r.url).pathname.split('/').pop() ?? ''))
}

describe('real models across tabs', () => {
  beforeAll(async () => {
    e2e = await startE2E()
    // Two browser profiles, like two devices: tabs of one profile share Cache Storage, so one
    // would find the other's model without any transfer.
    const profile = async (): Promise<BrowserContext> => await e2e.browser.newContext({ viewport: { width: 1280, height: 1000 } })
    // Two WASM threads whatever the machine's core count: every tab then has two backends to measure.
    a = await openTab(await profile(), `${e2e.server.url}?threads=2`)
    b = await openTab(await profile(), `${e2e.server.url}?threads=2`)
    await waitForWorker(a.page, b.peerId)
    await waitForWorker(b.page, a.peerId)
  })

  afterAll(async () => { await stopE2E(e2e) })

  it('reads a sample image in tab A with tab B doing the work: the recognised text is the text it was rendered from', async () => {
    const samples = JSON.parse(await readFile(PUBLIC + 'samples/ocr/samples.json', 'utf8')) as Array<{ file: string, lines: string[] }>
    const receipt = samples.find(s => s.file === 'receipt.png')!
    // Tab A pauses contributing, so detection and recognition both run in tab B's Web Worker.
    await a.page.bringToFront()
    await a.page.locator('[data-testid=pause-toggle]').click()
    await a.page.locator('[data-testid=ocr-sample][data-file="receipt.png"]').click()
    await a.page.locator('[data-testid=ocr-page][data-name="receipt.png"][data-state=new]').waitFor()
    await a.page.locator('[data-testid=ocr-run]').click()
    await a.page.locator('[data-testid=ocr-page][data-name="receipt.png"][data-state=read]').waitFor({ timeout: OCR_MS })
    const text = await a.page.locator('[data-testid=ocr-page][data-name="receipt.png"] [data-testid=ocr-text]').textContent()
    expect(text?.split('\n')).toEqual(receipt.lines)
    // Boxes are drawn over the image, one per detected piece of text.
    expect(await a.page.locator('[data-testid=ocr-page][data-name="receipt.png"] polygon').count()).toBeGreaterThanOrEqual(receipt.lines.length)
    // Tab B ran the OCR models for tab A.
    await b.page.locator(`[data-testid=served-row][data-requester="${a.peerId}"][data-state=done]`, { hasText: 'ocr-det' }).first().waitFor()
    await b.page.locator(`[data-testid=served-row][data-requester="${a.peerId}"][data-state=done]`, { hasText: 'ocr-rec' }).first().waitFor()
    // Tab B (a fresh profile) got each OCR model once: one download, hashed once, its bytes handed
    // once to each of its two backends' workers (counted once both backends were measured).
    const ocr = [builtinModel('ocr-det'), builtinModel('ocr-rec')]
    await b.page.waitForFunction((shas) => shas.every(sha => window.p2pAgents.backendChoices()[sha] != null), ocr.map(m => m.sha256))
    const loads = await b.page.evaluate(([files, shas, replacedMark]) => {
      const marks = (name: string, sha: string): Array<{ sha256: string, worker: string }> =>
        (performance.getEntriesByName(name) as PerformanceMark[]).map(m => m.detail as { sha256: string, worker: string }).filter(d => d.sha256 === sha)
      return {
        downloads: files.map(f => performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname === `/models/${f}`).length),
        hashes: shas.map(sha => marks('p2p-builtin-verify', sha).length),
        handoffs: shas.map(sha => marks('p2p-model-handoff', sha).map(d => d.worker).sort()),
        replaced: (performance.getEntriesByName(replacedMark) as PerformanceMark[]).map(m => (m.detail as { worker: string }).worker)
      }
    }, [ocr.map(m => m.file), ocr.map(m => m.sha256), WORKER_REPLACED_MARK] as const)
    expect(loads.downloads).toEqual([1, 1])
    expect(loads.hashes).toEqual([1, 1])
    // Once to each worker; again only to a worker replaced since (a backend measurement that ran
    // past its limit on a loaded machine ends its worker like any deadline).
    for (const handed of loads.handoffs) {
      for (const worker of ['p2p-inference-wasm-1', 'p2p-inference-wasm-2']) {
        const times = handed.filter(w => w === worker).length
        expect(times).toBeGreaterThanOrEqual(1)
        expect(times).toBeLessThanOrEqual(1 + loads.replaced.filter(w => w === worker).length)
      }
      expect(handed.every(w => w === 'p2p-inference-wasm-1' || w === 'p2p-inference-wasm-2')).toBe(true)
    }
    if (process.env.UPDATE_SCREENSHOT === '1') {
      await a.page.locator('[data-testid=ocr-page][data-name="receipt.png"]').scrollIntoViewIfNeeded()
      await a.page.screenshot({ path: 'docs/screenshot-ocr.png' })
    }
    // Export gives the same text.
    const download = a.page.waitForEvent('download')
    await a.page.locator('[data-testid=ocr-export-json]').click()
    const exported = JSON.parse(await readFile(await (await download).path(), 'utf8')) as Array<{ page: string, text: string }>
    expect(exported.find(p => p.page === 'receipt.png')?.text.split('\n')).toEqual(receipt.lines)
    await a.page.locator('[data-testid=pause-toggle]').click()
  })

  it('runs a model dropped in tab A on tab B, which fetches it from A, verifies it, caches it and never fetches it again', async () => {
    const modelFile = PUBLIC + 'samples/models/add-mul.onnx'
    const bytes = new Uint8Array(await readFile(modelFile))
    const sha256 = await sha256Hex(bytes)
    await a.page.bringToFront()
    await a.page.locator('[data-testid=model-file]').setInputFiles(modelFile)
    await a.page.locator('[data-testid=model-info][data-name="add-mul.onnx"]').waitFor()
    // What the page read from the file: input names, types and (dynamic) shapes.
    expect(await a.page.locator('[data-testid=model-input]').evaluateAll(rows => rows.map(r => [...r.querySelectorAll('td')].slice(0, 3).map(td => td.textContent?.trim()))))
      .toEqual([['a', 'tensor(float)', '[batch, n]'], ['b', 'tensor(float)', '[batch, n]']])
    await a.page.locator('[data-testid=model-input][data-name=a] [data-testid=model-input-json]').fill('[[1, 2, 3], [4, 5, 6]]')
    await a.page.locator('[data-testid=model-input][data-name=b] [data-testid=model-input-json]').fill('[[0.5, -2, 10], [0.25, 0, -1]]')
    await a.page.locator('[data-testid=model-target]').selectOption(b.peerId)

    let lastTask: string | null = null
    const run = async (): Promise<Record<string, { dims: number[], data: unknown[] }>> => {
      await a.page.locator('[data-testid=model-run]:not([disabled])').click()
      // A new result (another task id) or an error.
      const result = a.page.locator(lastTask == null ? '[data-testid=model-result]' : `[data-testid=model-result]:not([data-task-id="${lastTask}"])`)
      await result.or(a.page.locator('[data-testid=model-error]')).waitFor({ timeout: 60_000 })
      const errors = await a.page.locator('[data-testid=model-error]').allTextContents()
      expect(errors).toEqual([])
      lastTask = await result.getAttribute('data-task-id')
      expect(await result.getAttribute('data-worker')).toBe(b.peerId)
      const download = a.page.waitForEvent('download')
      await a.page.locator('[data-testid=model-export-json]').click()
      const json = JSON.parse(await readFile(await (await download).path(), 'utf8')) as { outputs: Array<{ name: string, dims: number[], data: unknown[] }> }
      return Object.fromEntries(json.outputs.map(o => [o.name, o]))
    }
    const first = await run()
    expect(first.sum).toMatchObject({ dims: [2, 3], data: [1.5, 0, 13, 4.25, 5, 5] })
    expect(first.product).toMatchObject({ dims: [2, 3], data: [0.5, -4, 30, 1, 0, -6] })
    expect(first.shape).toMatchObject({ dims: [2], data: ['2', '3'] })

    // Tab B fetched it once from tab A, verified and cached it in Cache Storage.
    await b.page.locator(`[data-testid=model-fetch][data-sha256="${sha256}"][data-state=cached]`).waitFor()
    expect(await fetchRows(b.page, sha256)).toEqual(['cached'])
    expect(await b.page.locator(`[data-testid=model-fetch][data-sha256="${sha256}"]`).getAttribute('data-from')).toBe(a.peerId)
    expect(await cachedModels(b.page)).toContain(sha256)
    // …and now advertises it: tab A's peer list knows B has the model.
    await a.page.waitForFunction(([peer, sha]) => {
      const row = document.querySelector(`[data-testid=peer-row][data-peer-id="${peer}"]`)
      return row?.getAttribute('data-models')?.split(' ').includes(sha) === true
    }, [b.peerId, sha256])

    // A second run: no second transfer.
    await run()
    expect(await fetchRows(b.page, sha256)).toEqual(['cached'])

    // Even after a reload, tab B runs it from its cache.
    const measured = (await b.page.evaluate(() => window.p2pAgents.backendChoices()))[sha256]
    expect(measured).toBeDefined()
    await b.page.reload()
    await waitReady(b.page)
    // …and keeps the backend it measured for it: no second measurement after the reload.
    expect((await b.page.evaluate(() => window.p2pAgents.backendChoices()))[sha256]).toEqual(measured)
    await waitForWorker(a.page, b.peerId)
    await a.page.bringToFront()
    await a.page.locator('[data-testid=model-target]').selectOption(b.peerId)
    expect((await run()).sum.data).toEqual([1.5, 0, 13, 4.25, 5, 5])
    expect(await fetchRows(b.page, sha256)).toEqual([])

    // An input from a NumPy .npy file instead of JSON.
    const dir = await mkdtemp(join(tmpdir(), 'p2p-npy-'))
    await writeFile(join(dir, 'a.npy'), writeNpy(fromTypedArray('a', 'float32', [2, 3], Float32Array.from([10, 20, 30, 40, 50, 60]))))
    await a.page.locator('[data-testid=model-input][data-name=a] [data-testid=model-input-file]').setInputFiles(join(dir, 'a.npy'))
    await a.page.locator('[data-testid=model-input][data-name=a]', { hasText: 'float32 [2, 3]' }).waitFor()
    expect((await run()).sum.data).toEqual([10.5, 18, 40, 40.25, 50, 59])
  })

  it('takes an image for an image-shaped input: a digit photo classified by a peer as onnxruntime-node does', async () => {
    // The digit CNN as a dropped file: its input [1, 1, 28, 28] float32 is image-shaped.
    const modelFile = PUBLIC + 'models/digits.onnx'
    const digit = heldOutDigits().find(d => d.label === 7)!
    const png = new PNG({ width: 28, height: 28 })
    digit.pixels.forEach((v, i) => { png.data.set([Math.round(v * 255), Math.round(v * 255), Math.round(v * 255), 255], i * 4) })
    const dir = await mkdtemp(join(tmpdir(), 'p2p-img-'))
    await writeFile(join(dir, 'seven.png'), PNG.sync.write(png))
    await a.page.bringToFront()
    await a.page.locator('[data-testid=model-file]').setInputFiles(modelFile)
    await a.page.locator('[data-testid=model-info][data-name="digits.onnx"]').waitFor()
    await a.page.locator('[data-testid=model-input] [data-testid=model-input-file]').setInputFiles(join(dir, 'seven.png'))
    await a.page.locator('[data-testid=model-input]', { hasText: 'float32 [1, 1, 28, 28]' }).waitFor()
    await a.page.locator('[data-testid=model-target]').selectOption(b.peerId)
    await a.page.locator('[data-testid=model-run]:not([disabled])').click()
    await a.page.locator('[data-testid=model-result]').or(a.page.locator('[data-testid=model-error]')).waitFor({ timeout: 60_000 })
    expect(await a.page.locator('[data-testid=model-error]').allTextContents()).toEqual([])
    // The same tensor (value / 255 of the 8-bit pixels) through onnxruntime-node.
    const pixels = Float32Array.from(digit.pixels, v => Math.round(v * 255) / 255)
    const ref = await referenceRun(modelFile, [fromTypedArray('input', 'float32', [1, 1, 28, 28], pixels)])
    const expected = argmax(Array.from(Object.values(ref).at(-1)!.data as Float32Array))
    const shown = a.page.locator('[data-testid=model-output]').last()
    expect(await shown.textContent()).toContain(`argmax ${expected}`)
    expect(expected).toBe(7)
  })

  it('gives exactly onnxruntime-node\'s outputs for every dtype and for dynamic shapes, in tab B\'s worker', async () => {
    const edge: Record<DTypeName, number[] | bigint[]> = {
      float32: [0, -1.5, 3.4e38, Number.NaN], float64: [Math.PI, -0, Number.MAX_VALUE, 5e-324], float16: [0x3c00, 0x7bff, 0xfc00, 0x0001],
      int8: [-128, 127, 0, -1], int16: [-32768, 32767, 1, 2], int32: [-(2 ** 31), 2 ** 31 - 1, 7, 0],
      int64: [-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, 0n], uint8: [0, 255, 128, 1], uint16: [0, 65535, 4096, 1],
      uint32: [0, 2 ** 32 - 1, 12345, 1], uint64: [0n, 2n ** 64n - 1n, 2n ** 53n + 1n, 1n], bool: [1, 0, 0, 1]
    }
    const arrays: Record<DTypeName, (v: number[] | bigint[]) => ArrayBufferView> = {
      float32: v => Float32Array.from(v as number[]), float64: v => Float64Array.from(v as number[]), float16: v => Uint16Array.from(v as number[]),
      int8: v => Int8Array.from(v as number[]), int16: v => Int16Array.from(v as number[]), int32: v => Int32Array.from(v as number[]),
      int64: v => BigInt64Array.from(v as bigint[]), uint8: v => Uint8Array.from(v as number[]), uint16: v => Uint16Array.from(v as number[]),
      uint32: v => Uint32Array.from(v as number[]), uint64: v => BigUint64Array.from(v as bigint[]), bool: v => Uint8Array.from(v as number[])
    }
    const cases: Array<{ name: string, bytes: Uint8Array, inputs: WireTensor[] }> = [
      { name: 'identity-all-dtypes.onnx', bytes: identityAllDtypes(), inputs: DTYPES.map(d => fromTypedArray(`in_${d}`, d, [2, 2], arrays[d](edge[d]) as never)) },
      ...[[1, 5], [3, 2]].map(([batch, n]) => ({
        name: 'add-mul-generated.onnx',
        bytes: dynamicAddMul(),
        inputs: [
          fromTypedArray('a', 'float32', [batch, n], Float32Array.from({ length: batch * n }, (_, i) => i / 3)),
          fromTypedArray('b', 'float32', [batch, n], Float32Array.from({ length: batch * n }, (_, i) => 1 - i * 0.7))
        ]
      }))
    ]
    for (const c of cases) {
      const { runs, outputs } = await a.page.evaluate(async ([bytes, name, inputs, peerId]) =>
        await window.p2pAgents.runModel({ bytes, name }, inputs, 1, { kind: 'peer', peerId }), [Array.from(c.bytes), c.name, c.inputs.map(plain), b.peerId] as const)
      expect(runs[0].worker).toBe(b.peerId)
      expectSameOutputs(outputs.map(wire), await referenceRun(c.bytes, c.inputs))
    }
  })

  it('measures its backends on a model\'s first use and keeps the fastest, and says so', async () => {
    const identitySha = await sha256Hex(identityAllDtypes())
    // The first task was answered before the other backend was measured: wait for the choice.
    await b.page.waitForFunction((sha) => window.p2pAgents.backendChoices()[sha] != null, identitySha)
    const choices = await b.page.evaluate(() => window.p2pAgents.backendChoices())
    const choice = choices[identitySha]
    expect(choice).toBeDefined()
    // The tabs are cross-origin isolated with ?threads=2: WASM at 1 thread and at 2 threads both ran it.
    expect(Object.keys(choice.medians).sort()).toEqual(['wasm simd 1 thread', 'wasm simd 2 threads'])
    expect(choice.medians[choice.backend]).toBe(Math.min(...Object.values(choice.medians)))
    await b.page.locator(`[data-testid=backend-choice][data-sha256="${identitySha}"][data-backend="${choice.backend}"]`).waitFor()
  })
})

/**
 * The built-in OCR models through the network (relay on 127.0.0.1, Node workers over direct
 * WebRTC, onnxruntime-node):
 * - detection and recognition outputs equal onnxruntime-node's in this process within 1e-4;
 * - a whole page read through the network gives the text the sample image was rendered from;
 * - batch OCR over several pages runs through the batch machinery (two jobs: detect, recognise)
 *   on two workers, with progress, and reads every page.
 */
import '../../src/node/polyfill.js'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { Reputation } from '../../src/core/reputation.js'
import { toTypedArray } from '../../src/core/tensor.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { detInput } from '../../src/ocr/detect.js'
import { detectLines, ocrPage, readRecOutput, recognizeBatches } from '../../src/ocr/pipeline.js'
import { parseDictionary, REC_INDICES, REC_OUTPUTS, REC_SCORES, REC_SOFTMAX } from '../../src/ocr/recognize.js'
import { runOcrBatch } from '../../src/net/ocr-job.js'
import { decodePng } from '../../src/node/png.js'
import { MODELS_DIR } from '../../src/node/node-peer.js'
import { referenceRun } from '../helpers/onnx-reference.js'
import { Cleanup, REPO_ROOT, startPeer, startRelay, waitForAdvert, waitForDirect, withTimeout } from './helpers.js'
import type { OcrBatchProgress } from '../../src/net/ocr-job.js'
import type { RgbaImage } from '../../src/ocr/image.js'
import type { TaskRequest } from '../../src/core/task-types.js'
import type { WireTensor } from '../../src/core/tensor.js'
import type { NodePeer } from '../../src/node/node-peer.js'

const SAMPLES_DIR = fileURLToPath(new URL('../../public/samples/ocr/', import.meta.url))
const OCR_MS = 120_000
const DET = builtinModel('ocr-det')
const REC = builtinModel('ocr-rec')

interface Sample { file: string, title: string, lines: string[] }

const cleanup = new Cleanup()
let requester: NodePeer
let workers: NodePeer[]
let samples: Array<Sample & { image: RgbaImage }>
let dict: string[]
let relayAddr: string

beforeAll(async () => {
  const relay = await startRelay(cleanup)
  relayAddr = relay.addr
  requester = await startPeer(cleanup, relay.addr, { work: false })
  workers = [await startPeer(cleanup, relay.addr), await startPeer(cleanup, relay.addr)]
  for (const w of workers) {
    await waitForDirect(requester.node, w.node)
    await waitForAdvert(requester, w.node.peerId.toString(), a => a.worker && a.models.includes(DET.sha256), 'an OCR-capable worker advert')
  }
  const list = JSON.parse(await readFile(SAMPLES_DIR + 'samples.json', 'utf8')) as Sample[]
  samples = await Promise.all(list.map(async s => ({ ...s, image: decodePng(new Uint8Array(await readFile(SAMPLES_DIR + s.file))) })))
  dict = parseDictionary(await readFile(MODELS_DIR + 'ocr-keys.txt', 'utf8'))
})

afterAll(async () => { await cleanup.run() })

let n = 0
async function runRemote (worker: NodePeer, model: typeof DET, inputs: WireTensor[], outputNames: string[] = []): Promise<WireTensor[]> {
  const request: TaskRequest = { taskId: `ocr-${++n}`, jobId: 'ocr', model: modelRef(model), inputs, timeoutMs: 0, outputNames }
  return (await withTimeout(requester.tasks.run(worker.node.peerId, request), OCR_MS, `OCR task ${request.taskId}`)).result.outputs
}

async function runLocal (model: typeof DET, inputs: WireTensor[], output: string): Promise<ort.Tensor> {
  return (await referenceRun(MODELS_DIR + model.file, inputs))[output]
}

function maxAbsDiff (remote: WireTensor, local: ort.Tensor): number {
  expect(remote.dims).toEqual([...local.dims])
  const a = toTypedArray(remote) as Float32Array
  const b = local.data as Float32Array
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]))
  return max
}

describe('OCR models over WebRTC', () => {
  it('gives detection and recognition outputs equal to onnxruntime-node\'s within 1e-4', async () => {
    const page = samples.find(s => s.file === 'receipt.png')!
    const det = detInput(page.image)
    const [detOut] = await runRemote(workers[0], DET, [det.tensor])
    expect(maxAbsDiff(detOut, await runLocal(DET, [det.tensor], detOut.name))).toBeLessThanOrEqual(1e-4)

    const lines = detectLines(page.image, det, detOut)
    // A receipt row is two boxes (item and price) on one line of text.
    expect(lines.length).toBeGreaterThanOrEqual(page.lines.length)
    const [batch] = recognizeBatches(lines.map(l => l.crop), 6)
    // Every output, the CTC head's included: the softmax within 1e-4, the per-step classes exactly.
    const recOut = await runRemote(workers[1], REC, [batch.tensor])
    expect(recOut.map(o => o.name).sort()).toEqual([REC_INDICES, REC_SCORES, REC_SOFTMAX].sort())
    for (const name of [REC_SOFTMAX, REC_SCORES]) {
      expect(maxAbsDiff(recOut.find(o => o.name === name)!, await runLocal(REC, [batch.tensor], name)), name).toBeLessThanOrEqual(1e-4)
    }
    expect(toTypedArray(recOut.find(o => o.name === REC_INDICES)!)).toEqual((await runLocal(REC, [batch.tensor], REC_INDICES)).data)
    // What a requester asks for in practice: the head only, a few KB instead of the softmax's MBs.
    const head = await runRemote(workers[1], REC, [batch.tensor], REC_OUTPUTS)
    expect(head.map(o => o.name)).toEqual(REC_OUTPUTS)
    expect(head.reduce((sum, o) => sum + o.data.byteLength, 0)).toBeLessThan(recOut.find(o => o.name === REC_SOFTMAX)!.data.byteLength / 1000)
    expect(readRecOutput(head, dict).map(r => r.text)).toEqual(readRecOutput([recOut.find(o => o.name === REC_SOFTMAX)!], dict).map(r => r.text))
  })

  it('reads a page through the network: the text the image was rendered from', async () => {
    const page = samples.find(s => s.file === 'document.png')!
    let next = 0
    const result = await ocrPage(page.image, async (model, inputs, outputNames) => await runRemote(workers[next++ % 2], model === 'det' ? DET : REC, inputs, outputNames), dict)
    expect(result.text.split('\n')).toEqual(page.lines)
  })

  it('runs batch OCR over every sample through two jobs on two workers, with progress', async () => {
    const progress: OcrBatchProgress[] = []
    const results = await withTimeout(runOcrBatch(samples.map(s => s.image), dict, {
      tasks: requester.tasks,
      adverts: requester.discovery.table,
      reputation: new Reputation(),
      onProgress: p => progress.push(p)
    }), OCR_MS * 2, 'the OCR batch')
    results.forEach((r, i) => {
      expect(r.error).toBeUndefined()
      expect(r.text.split('\n'), samples[i].file).toEqual(samples[i].lines)
    })
    const phases = [...new Set(progress.map(p => p.phase))]
    expect(phases).toEqual(['detect', 'recognize', 'done'])
    const textLines = samples.reduce((sum, s) => sum + s.lines.length, 0)
    expect(progress.at(-1)).toMatchObject({ phase: 'done', pages: samples.length })
    expect(progress.at(-1)!.lines).toBeGreaterThanOrEqual(textLines)
    // Both workers took part.
    const perPeer = progress.filter(p => p.phase !== 'done').reduce<Record<string, number>>((acc, p) => ({ ...acc, ...p.job.perPeer }), {})
    expect(Object.keys(perPeer).sort()).toEqual(workers.map(w => w.node.peerId.toString()).sort())
  })

  it('reads pages from the command line (`npm run ocr`), text on stdout', async () => {
    const files = ['note.png', 'settings.png'].map(f => SAMPLES_DIR + f)
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/node/ocr.ts', '--relay', relayAddr, '--workers', '2', ...files], { cwd: REPO_ROOT, timeout: OCR_MS })
    expect(stderr).toMatch(/2 page\(s\) in [\d.]+ s/)
    const expected = ['note.png', 'settings.png'].map(f => `# ${SAMPLES_DIR + f}\n${samples.find(s => s.file === f)!.lines.join('\n')}`).join('\n')
    expect(stdout.trim()).toBe(expected)
  })
})

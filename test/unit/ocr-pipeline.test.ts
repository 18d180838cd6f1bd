/** The whole OCR pipeline with the real PP-OCRv4 models (onnxruntime-node) on every shipped sample image. */
import { readFile } from 'node:fs/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import type { DTypeName, WireTensor } from '../../src/core/tensor.js'
import { ensureOcrModels } from '../../src/node/ocr-assets.js'
import { decodePng } from '../../src/node/png.js'
import { ocrPage } from '../../src/ocr/pipeline.js'
import type { OcrModel, RunModel } from '../../src/ocr/pipeline.js'
import { parseDictionary } from '../../src/ocr/recognize.js'
import samples from '../../public/samples/ocr/samples.json'

const SAMPLES_DIR = new URL('../../public/samples/ocr/', import.meta.url)

let sessions: Record<OcrModel, ort.InferenceSession>
let dict: string[]
const calls: Array<{ model: OcrModel, dims: number[] }> = []

const run: RunModel = async (model, inputs, outputNames) => {
  const session = sessions[model]
  const feeds: Record<string, ort.Tensor> = {}
  for (const t of inputs) feeds[t.name] = new ort.Tensor('float32', toTypedArray(t) as Float32Array, t.dims)
  calls.push({ model, dims: inputs[0].dims })
  const names = outputNames.length > 0 ? outputNames : session.outputNames
  const out = await session.run(feeds, names)
  return names.map((name): WireTensor => fromTypedArray(name, out[name].type as DTypeName, [...out[name].dims], out[name].data as never))
}

beforeAll(async () => {
  const assets = ensureOcrModels()
  const options = { intraOpNumThreads: 1 }
  sessions = {
    det: await ort.InferenceSession.create(assets.det.path, options),
    rec: await ort.InferenceSession.create(assets.rec.path, options)
  }
  dict = parseDictionary(await readFile(assets.keys.path, 'utf8'))
}, 60_000)

describe('ocrPage with PP-OCRv4', () => {
  it('ships a few samples', () => {
    expect(samples.length).toBeGreaterThanOrEqual(3)
  })

  it.each(samples.map(s => [s.file, s] as const))('reads %s exactly', async (_, sample) => {
    const img = decodePng(await readFile(new URL(sample.file, SAMPLES_DIR)))
    calls.length = 0
    const result = await ocrPage(img, run, dict, { batchSize: 3 })
    expect(result.text.split('\n').map(l => l.trim())).toEqual(sample.lines.map(l => l.trim()))
    // One det task, then rec tasks of at most 3 lines each.
    expect(calls[0].model).toBe('det')
    expect(calls.filter(c => c.model === 'det')).toHaveLength(1)
    expect(calls.slice(1).every(c => c.model === 'rec' && c.dims[0] <= 3)).toBe(true)
    for (const line of result.lines) {
      expect(line.score).toBeGreaterThan(0.8)
      for (const p of line.box) {
        expect(p.x).toBeGreaterThanOrEqual(0)
        expect(p.x).toBeLessThanOrEqual(img.width - 1)
        expect(p.y).toBeGreaterThanOrEqual(0)
        expect(p.y).toBeLessThanOrEqual(img.height - 1)
      }
    }
  })
})

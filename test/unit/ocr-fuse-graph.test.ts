/** The OCR models' build-time graph rewrite (fuseForWasm): fewer ops, the same outputs as the package's model (onnxruntime-node). */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import { ensureOcrModels, packageAssetsDir } from '../../src/node/ocr-assets.js'
import { decodePng } from '../../src/node/png.js'
import { detInput } from '../../src/ocr/detect.js'
import { fuseForWasm, OnnxRewriteError } from '../../src/ocr/fuse-graph.js'
import { detectLines, recognizeBatches } from '../../src/ocr/pipeline.js'
import { addCtcHead } from '../../src/ocr/recognize.js'

const SAMPLE = new URL('../../public/samples/ocr/document.png', import.meta.url)

let original: Uint8Array
let built: Uint8Array

beforeAll(() => {
  original = new Uint8Array(readFileSync(join(packageAssetsDir(), 'ch_PP-OCRv4_det_infer.onnx')))
  built = new Uint8Array(readFileSync(ensureOcrModels().det.path))
})

/** Output of a model on the sample page's det input, on onnxruntime-node at one thread. */
async function probabilityMap (model: Uint8Array): Promise<Float32Array> {
  const input = detInput(decodePng(new Uint8Array(readFileSync(SAMPLE))))
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 })
  try {
    const out = await session.run({ x: new ort.Tensor('float32', toTypedArray(input.tensor) as Float32Array, input.tensor.dims) })
    return out[session.outputNames[0]].data as Float32Array
  } finally {
    await session.release()
  }
}

describe('fuseForWasm on PP-OCRv4', () => {
  it('the det model the build writes is the rewritten one: no four-op hardswish or constant-first Mul/Add is left', () => {
    const again = fuseForWasm(built).report
    expect(again).toEqual({ swapped: 0, hardSwish: 0, scalarised: 0, broadcastBias: 0, constantsDropped: 0 })
    expect(built.byteLength).not.toBe(original.byteLength)
  })

  it('rewrites every hardswish and every affine step after a convolution, deterministically', () => {
    const a = fuseForWasm(original)
    expect(a.report.hardSwish).toBe(24)
    expect(a.report.broadcastBias).toBe(28)
    expect(a.report.swapped).toBeGreaterThanOrEqual(28)
    expect(Buffer.from(fuseForWasm(original).bytes).equals(Buffer.from(a.bytes))).toBe(true)
    expect(Buffer.from(a.bytes).equals(Buffer.from(built))).toBe(true)
  })

  it('computes the same probability map as the package model (max |Δ| ≤ 1e-4)', async () => {
    const [before, after] = [await probabilityMap(original), await probabilityMap(built)]
    expect(after.length).toBe(before.length)
    let worst = 0
    for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs(before[i] - after[i]))
    expect(worst).toBeLessThanOrEqual(1e-4)
  })

  it('the rec model the build writes reads the same characters with the same scores as the package model plus the CTC head', async () => {
    const pkg = addCtcHead(new Uint8Array(readFileSync(join(packageAssetsDir(), 'ch_PP-OCRv4_rec_infer.onnx'))))
    const rec = new Uint8Array(readFileSync(ensureOcrModels().rec.path))
    expect(fuseForWasm(rec).report.hardSwish).toBe(0)
    // A real batch: the first 4 lines the det model finds on the sample page.
    const img = decodePng(new Uint8Array(readFileSync(SAMPLE)))
    const det = detInput(img)
    const map = await probabilityMap(built)
    const lines = detectLines(img, det, fromTypedArray('map', 'float32', [1, 1, det.height, det.width], map))
    const batch = recognizeBatches(lines.map(l => l.crop), 4)[0]
    const outputs = async (model: Uint8Array): Promise<{ indices: BigInt64Array, scores: Float32Array }> => {
      const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 })
      try {
        const out = await session.run({ x: new ort.Tensor('float32', toTypedArray(batch.tensor) as Float32Array, batch.tensor.dims) }, ['ctc_indices', 'ctc_scores'])
        return { indices: out.ctc_indices.data as BigInt64Array, scores: out.ctc_scores.data as Float32Array }
      } finally {
        await session.release()
      }
    }
    const [before, after] = [await outputs(pkg), await outputs(rec)]
    expect([...after.indices]).toEqual([...before.indices])
    let worst = 0
    for (let i = 0; i < before.scores.length; i++) worst = Math.max(worst, Math.abs(before.scores[i] - after.scores[i]))
    expect(worst).toBeLessThanOrEqual(1e-4)
  })

  it('refuses bytes that are not a model', () => {
    expect(() => fuseForWasm(Uint8Array.from([0x3a, 0x05, 0x01]))).toThrow(OnnxRewriteError)
  })
})

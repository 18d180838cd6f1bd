/**
 * A page of OCR from its building blocks, independent of where the models run: detection once,
 * then recognition of the line crops in small batches. A scheduler that dispatches rec tasks
 * itself uses detectLines, recognizeBatches and readRecOutput directly.
 */
import { toTypedArray } from '../core/tensor.js'
import type { WireTensor } from '../core/tensor.js'
import type { RgbaImage } from './image.js'
import type { Quad } from './geometry.js'
import { detBoxes, detInput } from './detect.js'
import type { DetBoxOptions, DetInput } from './detect.js'
import { ctcDecode, ctcDecodeBest, cropBox, recInput, REC_INDICES, REC_OUTPUTS, REC_SCORES, REC_SOFTMAX } from './recognize.js'
import type { RecInputOptions, Recognized } from './recognize.js'
import { readingOrder } from './layout.js'

export type OcrModel = 'det' | 'rec'

/** Runs one of the two models on its inputs and returns the outputs named (all when none are). */
export type RunModel = (model: OcrModel, inputs: WireTensor[], outputNames: string[]) => Promise<WireTensor[]>

export interface DetectedLine {
  box: Quad
  /** Detection confidence. */
  score: number
  crop: RgbaImage
}

export interface OcrLine {
  box: Quad
  text: string
  /** Recognition confidence. */
  score: number
}

export interface OcrResult {
  lines: OcrLine[]
  /** Rows joined by newlines, boxes in one row by a space. */
  text: string
}

export interface OcrOptions {
  maxSide?: number
  det?: Omit<DetBoxOptions, 'scaleX' | 'scaleY'>
  rec?: RecInputOptions
  /**
   * Lines per rec task. Batching saves tasks, not compute: on onnxruntime's CPU backend a batch of
   * 6 lines took ~1.5× as long as the same lines one by one (padding, and no batch speed-up), 4 ~1.15×.
   */
  batchSize?: number
  /** Lines recognised with less confidence are dropped (PaddleOCR's drop_score). */
  minScore?: number
}

function first (outputs: WireTensor[], model: OcrModel): WireTensor {
  if (outputs.length === 0) throw new Error(`${model} model returned no output`)
  return outputs[0]
}

function floats (t: WireTensor, model: OcrModel): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`${model} model returned ${t.dtype}, expected float32`)
  return toTypedArray(t) as Float32Array
}

/** Boxes and upright crops, in reading order, from the det model's output for `det`. */
export function detectLines (img: RgbaImage, det: DetInput, output: WireTensor, opts: OcrOptions['det'] = {}): DetectedLine[] {
  const dims = output.dims
  if (dims.length !== 4 || dims[0] !== 1 || dims[1] !== 1 || dims[2] !== det.height || dims[3] !== det.width) {
    throw new Error(`det output [${dims.join(', ')}] does not match its input ${det.width}x${det.height}`)
  }
  return detBoxes(floats(output, 'det'), det.width, det.height, { ...opts, scaleX: det.scaleX, scaleY: det.scaleY })
    .map(b => ({ box: b.points, score: b.score, crop: cropBox(img, b.points) }))
}

export interface RecBatch {
  /** Positions of this batch's crops in the list given to recognizeBatches. */
  indices: number[]
  tensor: WireTensor
}

/**
 * Rec inputs for crops in batches of at most batchSize. Crops are grouped by aspect ratio (as
 * PaddleOCR does) so that short lines are not padded out to the width of long ones.
 */
export function recognizeBatches (crops: readonly RgbaImage[], batchSize: number, opts: RecInputOptions = {}): RecBatch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size ${batchSize} is not a positive integer`)
  const order = crops.map((_, i) => i).sort((a, b) => crops[a].width / crops[a].height - crops[b].width / crops[b].height)
  const batches: RecBatch[] = []
  for (let i = 0; i < order.length; i += batchSize) {
    const indices = order.slice(i, i + batchSize)
    batches.push({ indices, tensor: recInput(indices.map(j => crops[j]), opts) })
  }
  return batches
}

/**
 * Texts from the rec model's outputs, one per crop of its batch: from the CTC head's
 * ctc_indices/ctc_scores when present (what REC_OUTPUTS asks for), else from the softmax.
 */
export function readRecOutput (outputs: readonly WireTensor[], dict: readonly string[]): Recognized[] {
  const indices = outputs.find(o => o.name === REC_INDICES)
  const scores = outputs.find(o => o.name === REC_SCORES)
  if (indices != null && scores != null) {
    if (indices.dtype !== 'int64') throw new Error(`${REC_INDICES} is ${indices.dtype}, expected int64`)
    if (indices.dims.join() !== scores.dims.join()) throw new Error(`${REC_INDICES} [${indices.dims.join(', ')}] and ${REC_SCORES} [${scores.dims.join(', ')}] differ`)
    return ctcDecodeBest(toTypedArray(indices) as BigInt64Array, floats(scores, 'rec'), indices.dims, dict)
  }
  const softmax = outputs.find(o => o.name === REC_SOFTMAX) ?? first([...outputs], 'rec')
  return ctcDecode(floats(softmax, 'rec'), softmax.dims, dict)
}

/** The page's text: rows top to bottom, each row's boxes left to right. */
export function assembleText (lines: readonly OcrLine[]): string {
  return readingOrder(lines, l => l.box).map(row => row.map(l => l.text.trim()).join(' ')).join('\n')
}

/** OCR of one page: det once, then the rec batches all at once (a network may run them in parallel). */
export async function ocrPage (img: RgbaImage, run: RunModel, dict: readonly string[], opts: OcrOptions = {}): Promise<OcrResult> {
  const { maxSide, batchSize = 4, minScore = 0.5 } = opts
  const det = detInput(img, { maxSide })
  const detected = detectLines(img, det, first(await run('det', [det.tensor], []), 'det'), opts.det)
  const texts: Recognized[] = new Array(detected.length)
  const batches = recognizeBatches(detected.map(d => d.crop), batchSize, opts.rec)
  await Promise.all(batches.map(async batch => {
    const results = readRecOutput(await run('rec', [batch.tensor], REC_OUTPUTS), dict)
    if (results.length !== batch.indices.length) throw new Error(`rec returned ${results.length} texts for ${batch.indices.length} lines`)
    batch.indices.forEach((at, k) => { texts[at] = results[k] })
  }))
  return pageResult(detected, texts, minScore)
}

/** A page's lines and text from its detected lines and their texts (same order); unread or doubtful lines are dropped. */
export function pageResult (detected: readonly DetectedLine[], texts: ReadonlyArray<Recognized | undefined>, minScore: number): OcrResult {
  const lines: OcrLine[] = []
  detected.forEach((d, i) => {
    const t = texts[i]
    const text = t?.text.trim() ?? ''
    if (t != null && t.score >= minScore && text !== '') lines.push({ box: d.box, text, score: t.score })
  })
  return { lines, text: assembleText(lines) }
}

/**
 * PP-OCR text recognition around the model: upright line crops, the rec input batch
 * (PaddleOCR's resize_norm_img) and greedy CTC decoding of its per-step class probabilities.
 */
import { fromTypedArray } from '../core/tensor.js'
import type { WireTensor } from '../core/tensor.js'
import { checkImage, resizeToPlanarBgr, sample } from './image.js'
import type { RgbaImage } from './image.js'
import { quadSize } from './geometry.js'
import type { Quad } from './geometry.js'
import { appendToGraph } from '../models/onnx-edit.js'

/**
 * The box's pixels as an upright image, sampled bilinearly along the box's own axes (a rotated
 * box comes out level). A crop at least 1.5× taller than wide is turned 90° counter-clockwise,
 * as PaddleOCR does, since the rec model only reads horizontal lines.
 */
export function cropBox (img: RgbaImage, box: Quad): RgbaImage {
  checkImage(img)
  const size = quadSize(box)
  const width = Math.max(1, Math.round(size.width))
  const height = Math.max(1, Math.round(size.height))
  const [p0, p1, p2, p3] = box
  const data = new Uint8ClampedArray(width * height * 4)
  for (let v = 0; v < height; v++) {
    const t = (v + 0.5) / height
    for (let u = 0; u < width; u++) {
      const s = (u + 0.5) / width
      // Bilinear blend of the corners: exact for rectangles, a fair warp for other quads.
      const x = (1 - t) * ((1 - s) * p0.x + s * p1.x) + t * ((1 - s) * p3.x + s * p2.x)
      const y = (1 - t) * ((1 - s) * p0.y + s * p1.y) + t * ((1 - s) * p3.y + s * p2.y)
      const at = (v * width + u) * 4
      for (let c = 0; c < 3; c++) data[at + c] = sample(img, x, y, c)
      data[at + 3] = 255
    }
  }
  const crop = { width, height, data }
  return height >= 1.5 * width ? rotateCounterClockwise(crop) : crop
}

function rotateCounterClockwise (img: RgbaImage): RgbaImage {
  const { width, height, data } = img
  const out = new Uint8ClampedArray(data.length)
  for (let y = 0; y < width; y++) {
    for (let x = 0; x < height; x++) {
      const from = (x * width + (width - 1 - y)) * 4
      out.set(data.subarray(from, from + 4), (y * height + x) * 4)
    }
  }
  return { width: height, height: width, data: out }
}

export interface RecInputOptions {
  /** The model's fixed input height. */
  height?: number
  /** Cap on the batch width; wider lines are squeezed. */
  maxWidth?: number
}

/** Width steps: the rec network downsamples width by 8, so each 8 px is one CTC step. */
const WIDTH_STEP = 8

/**
 * The rec model's input for a batch of crops: each resized to the model height keeping its
 * aspect ratio, scaled to [-1, 1], and right-padded with zeros to the widest in the batch
 * (at least one height wide, rounded up to whole CTC steps, at most maxWidth).
 */
export function recInput (crops: readonly RgbaImage[], { height = 48, maxWidth = 3200 }: RecInputOptions = {}): WireTensor {
  if (crops.length === 0) throw new Error('recInput needs at least one crop')
  const widths = crops.map(c => {
    checkImage(c)
    return Math.ceil(height * c.width / c.height)
  })
  const cap = Math.max(height, Math.floor(maxWidth / WIDTH_STEP) * WIDTH_STEP)
  const width = Math.min(cap, Math.max(height, Math.ceil(Math.max(...widths) / WIDTH_STEP) * WIDTH_STEP))
  const plane = width * height
  const data = new Float32Array(crops.length * 3 * plane)
  crops.forEach((crop, i) => {
    resizeToPlanarBgr(crop, Math.min(width, widths[i]), height, data, i * 3 * plane, width, v => v / 127.5 - 1)
  })
  return fromTypedArray('x', 'float32', [crops.length, 3, height, width], data)
}

/**
 * The rec model's classes from PaddleOCR's key file (one character a line): class 0 is the CTC
 * blank (''), then the file's lines in order, then ' ' (the models are trained with use_space_char).
 */
export function parseDictionary (text: string): string[] {
  const lines = text.split(/\r?\n/)
  if (lines[lines.length - 1] === '') lines.pop()
  return ['', ...lines, ' ']
}

export interface Recognized {
  text: string
  score: number
}

/**
 * Greedy CTC decoding of [n, T, C] probabilities: the most likely class per step, repeats
 * collapsed, blanks dropped. The score is the mean probability of the kept steps (0 for no text).
 */
export function ctcDecode (probs: Float32Array, dims: readonly number[], dict: readonly string[]): Recognized[] {
  if (dims.length !== 3) throw new Error(`rec output must be [n, T, C], got [${dims.join(', ')}]`)
  const [n, steps, classes] = dims
  if (classes !== dict.length) throw new Error(`rec output has ${classes} classes, the dictionary ${dict.length}`)
  if (probs.length !== n * steps * classes) throw new Error(`rec output has ${probs.length} values, [${dims.join(', ')}] needs ${n * steps * classes}`)
  const argmax = (i: number, t: number): number => {
    const base = (i * steps + t) * classes
    let best = 0
    for (let c = 1; c < classes; c++) if (probs[base + c] > probs[base + best]) best = c
    return best
  }
  return collapse(n, steps, argmax, (i, t, best) => probs[(i * steps + t) * classes + best], dict)
}

/**
 * The same decoding from the per-step arg-max and its probability ([n, T] each), as the rec
 * model's CTC head (addCtcHead) computes them on the worker: ~1/3000 of the bytes of the softmax.
 */
export function ctcDecodeBest (indices: BigInt64Array, scores: Float32Array, dims: readonly number[], dict: readonly string[]): Recognized[] {
  if (dims.length !== 2) throw new Error(`CTC head output must be [n, T], got [${dims.join(', ')}]`)
  const [n, steps] = dims
  if (indices.length !== n * steps || scores.length !== n * steps) throw new Error(`CTC head outputs do not match [${dims.join(', ')}]`)
  const best = (i: number, t: number): number => {
    const c = Number(indices[i * steps + t])
    if (!(c >= 0 && c < dict.length)) throw new Error(`CTC head class ${c} is outside the ${dict.length}-entry dictionary`)
    return c
  }
  return collapse(n, steps, best, (i, t) => scores[i * steps + t], dict)
}

/** Greedy CTC: repeats collapsed, blanks (class 0) dropped; score = mean probability of the kept steps. */
function collapse (n: number, steps: number, best: (i: number, t: number) => number, prob: (i: number, t: number, best: number) => number, dict: readonly string[]): Recognized[] {
  const results: Recognized[] = []
  for (let i = 0; i < n; i++) {
    let text = ''
    let sum = 0
    let kept = 0
    let prev = -1
    for (let t = 0; t < steps; t++) {
      const c = best(i, t)
      if (c !== 0 && c !== prev) {
        text += dict[c]
        sum += prob(i, t, c)
        kept++
      }
      prev = c
    }
    results.push({ text, score: kept === 0 ? 0 : sum / kept })
  }
  return results
}

/** The rec model's softmax output, and the two outputs of the CTC head added to it. */
export const REC_SOFTMAX = 'softmax_11.tmp_0'
export const REC_INDICES = 'ctc_indices'
export const REC_SCORES = 'ctc_scores'
/** What a requester asks a worker for: the head's outputs, not the [n, T, 6625] softmax. */
export const REC_OUTPUTS = [REC_INDICES, REC_SCORES]

/**
 * The rec model with a greedy-CTC head: ArgMax and ReduceMax over the classes of its softmax
 * (opset 9 forms). Greedy decoding needs nothing else, so a worker returns 12 bytes per step
 * instead of 26 KB; the softmax stays an output for anyone who wants it.
 */
export function addCtcHead (model: Uint8Array): Uint8Array {
  return appendToGraph(model, [
    { opType: 'ArgMax', inputs: [REC_SOFTMAX], outputs: [REC_INDICES], attributes: { axis: 2, keepdims: 0 } },
    { opType: 'ReduceMax', inputs: [REC_SOFTMAX], outputs: [REC_SCORES], attributes: { axes: [2], keepdims: 0 } }
  ], [
    { name: REC_INDICES, dtype: 'int64', dims: ['batch', 'steps'] },
    { name: REC_SCORES, dtype: 'float32', dims: ['batch', 'steps'] }
  ])
}

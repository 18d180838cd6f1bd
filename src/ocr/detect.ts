/**
 * PP-OCR text detection around the model: the input tensor (PaddleOCR's DetResizeForTest +
 * NormalizeImage) and DB post-processing of the probability map into text boxes (DBPostProcess).
 */
import { fromTypedArray } from '../core/tensor.js'
import type { WireTensor } from '../core/tensor.js'
import { checkImage, resizeToPlanarBgr } from './image.js'
import type { Point, RgbaImage } from './image.js'
import { expandRect, forEachPixelIn, minAreaRect, quadSize, rectCorners } from './geometry.js'
import type { Quad } from './geometry.js'
import { readingOrder } from './layout.js'

export interface DetInput {
  tensor: WireTensor
  /** Size of the tensor (and of the probability map the model returns). */
  width: number
  height: number
  /** Original image pixels per tensor pixel. */
  scaleX: number
  scaleY: number
}

// ImageNet's R, G, B statistics, which PaddleOCR applies to the B, G, R planes OpenCV loads:
// the model was trained that way, so they go to tensor channels 0, 1, 2 as they are.
const MEAN = [0.485, 0.456, 0.406]
const STD = [0.229, 0.224, 0.225]

/**
 * The det model's input: scaled down (never up) so the longest side fits maxSide, both sides
 * rounded to multiples of 32 (the network's stride), at least 32.
 */
export function detInput (img: RgbaImage, { maxSide = 960 }: { maxSide?: number } = {}): DetInput {
  checkImage(img)
  if (!(maxSide >= 32)) throw new Error(`maxSide ${maxSide} is below 32`)
  const ratio = Math.min(1, maxSide / Math.max(img.width, img.height))
  const snap = (side: number): number => Math.max(32, Math.min(Math.floor(maxSide / 32), Math.round(side * ratio / 32)) * 32)
  const width = snap(img.width)
  const height = snap(img.height)
  const data = new Float32Array(3 * width * height)
  resizeToPlanarBgr(img, width, height, data, 0, width, (v, c) => (v / 255 - MEAN[c]) / STD[c])
  return {
    tensor: fromTypedArray('x', 'float32', [1, 3, height, width], data),
    width,
    height,
    scaleX: img.width / width,
    scaleY: img.height / height
  }
}

export interface DetBoxOptions {
  /** Original image pixels per map pixel (DetInput.scaleX/Y); boxes come back in original coordinates. */
  scaleX?: number
  scaleY?: number
  /** Pixels with probability above this are text. */
  thresh?: number
  /** Minimum mean probability inside a box. */
  boxThresh?: number
  /**
   * The model predicts text shrunk by DB's shrink ratio; boxes grow by area · unclipRatio / perimeter.
   * PaddleOCR's 1.5 clips ascenders and descenders, and the rec model then drops most spaces
   * between words: on rendered test pages (fonts 18–32 px) 1.5 read 20–30 % of lines exactly,
   * 2.0–2.6 with dilation 96–100 %.
   */
  unclipRatio?: number
  /** Grow the text mask by one pixel right and down first (PaddleOCR's use_dilation, 2×2 kernel). */
  dilate?: boolean
  /** Boxes whose short side (in map pixels) is below this are noise. */
  minSize?: number
  /** At most this many connected regions are considered: bounds the work on noisy maps. */
  maxCandidates?: number
}

export interface TextBox {
  points: Quad
  score: number
}

/** The largest probability map accepted (16 Mpx; the post-processing keeps ~6 bytes per pixel). */
const MAX_MAP_PIXELS = 4096 * 4096

/** Text boxes from the det model's probability map ([H, W] row-major), in reading order. */
export function detBoxes (prob: Float32Array, width: number, height: number, opts: DetBoxOptions = {}): TextBox[] {
  const { scaleX = 1, scaleY = 1, thresh = 0.3, boxThresh = 0.6, unclipRatio = 2.2, dilate = true, minSize = 3, maxCandidates = 1000 } = opts
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new Error(`bad map size ${width}x${height}`)
  if (width * height > MAX_MAP_PIXELS) throw new Error(`probability map ${width}x${height} is larger than ${MAX_MAP_PIXELS} pixels`)
  if (prob.length !== width * height) throw new Error(`probability map has ${prob.length} values, ${width}x${height} needs ${width * height}`)
  const outW = Math.round(width * scaleX)
  const outH = Math.round(height * scaleY)
  const boxes: TextBox[] = []
  for (const region of regions(textMask(prob, width, height, thresh, dilate), width, height, maxCandidates)) {
    const rect = minAreaRect(region)
    if (Math.min(rect.width, rect.height) < minSize) continue
    const score = meanInside(prob, width, height, rectCorners(rect))
    if (score < boxThresh) continue
    const grown = expandRect(rect, rect.width * rect.height * unclipRatio / (2 * (rect.width + rect.height)))
    if (Math.min(grown.width, grown.height) < minSize + 2) continue
    const points = rectCorners(grown).map(p => ({
      x: clamp(p.x * scaleX, 0, outW - 1),
      y: clamp(p.y * scaleY, 0, outH - 1)
    })) as Quad
    const size = quadSize(points)
    if (size.width <= 3 || size.height <= 3) continue
    boxes.push({ points, score })
  }
  return readingOrder(boxes, b => b.points).flat()
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi)

/** 1 where the probability is above thresh (optionally dilated by a 2×2 kernel), else 0. */
function textMask (prob: Float32Array, width: number, height: number, thresh: number, dilate: boolean): Uint8Array {
  const mask = new Uint8Array(width * height)
  for (let i = 0; i < mask.length; i++) mask[i] = prob[i] > thresh ? 1 : 0
  if (!dilate) return mask
  const out = new Uint8Array(mask)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x
      if (x > 0) out[i] |= mask[i - 1]
      if (y > 0) out[i] |= mask[i - width] | (x > 0 ? mask[i - width - 1] : 0)
    }
  }
  return out
}

/**
 * 8-connected regions of the mask, in raster order of their first pixel, each given as the
 * outline points its min-area rectangle needs: the leftmost and rightmost pixel of every row
 * (their convex hull is the whole region's). Clears the mask as it goes.
 */
function * regions (mask: Uint8Array, width: number, height: number, max: number): Generator<Point[]> {
  const stack = new Int32Array(width * height)
  let found = 0
  for (let start = 0; start < mask.length && found < max; start++) {
    if (mask[start] === 0) continue
    found++
    const rowMin = new Map<number, number>()
    const rowMax = new Map<number, number>()
    let top = 0
    stack[top++] = start
    mask[start] = 0
    while (top > 0) {
      const i = stack[--top]
      const x = i % width
      const y = (i - x) / width
      const lo = rowMin.get(y)
      if (lo === undefined || x < lo) rowMin.set(y, x)
      const hi = rowMax.get(y)
      if (hi === undefined || x > hi) rowMax.set(y, x)
      for (let ny = Math.max(0, y - 1); ny <= Math.min(height - 1, y + 1); ny++) {
        for (let nx = Math.max(0, x - 1); nx <= Math.min(width - 1, x + 1); nx++) {
          const j = ny * width + nx
          if (mask[j] !== 0) {
            mask[j] = 0
            stack[top++] = j
          }
        }
      }
    }
    const outline: Point[] = []
    for (const [y, x] of rowMin) outline.push({ x, y }, { x: rowMax.get(y) as number, y })
    yield outline
  }
}

/** Mean probability over the map pixels inside a quad (PaddleOCR's "fast" box score). */
function meanInside (prob: Float32Array, width: number, height: number, quad: Quad): number {
  let sum = 0
  let n = 0
  forEachPixelIn(quad, width, height, (x, y) => {
    sum += prob[y * width + x]
    n++
  })
  return n === 0 ? 0 : sum / n
}

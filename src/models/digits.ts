// Pre/post-processing for the MNIST digits model (public/models/digits.onnx).
// Pure and DOM-free so the browser page, Node scripts and tests share it.

/** Input tensor: float32 [batch, 1, 28, 28], white digit on black, pixels in [0, 1]. */
export const DIGITS_INPUT = 'input';
/** Output tensor: float32 [batch, 10] raw class scores. */
export const DIGITS_OUTPUT_LOGITS = 'logits';
/** Output tensor: float32 [batch, 10] softmax of the logits. */
export const DIGITS_OUTPUT_PROBS = 'probs';
export const DIGITS_OUTPUTS = [DIGITS_OUTPUT_LOGITS, DIGITS_OUTPUT_PROBS] as const;
export const DIGITS_SIZE = 28;

/** MNIST fits each digit's bounding box into 20×20 and centres it by mass in 28×28. */
const FIT = 20;
/** Pixels fainter than this do not count towards the bounding box (antialiasing haze, specks). */
const INK_THRESHOLD = 0.1;

/**
 * Turn an RGBA drawing (white strokes on a black or transparent canvas) into a
 * 28×28 MNIST-style input: ink = luminance × alpha, the ink's bounding box is
 * scaled to fit 20×20 (aspect preserved, area-averaged) and placed so that its
 * centre of mass lands on the centre (14, 14) of the 28×28 image.
 * Returns all zeros when nothing is drawn.
 */
export function preprocessDrawing(rgba: Uint8ClampedArray, width: number, height: number): Float32Array {
  const size = DIGITS_SIZE;
  const out = new Float32Array(size * size);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) return out;
  if (rgba.length < width * height * 4) {
    throw new RangeError(`rgba has ${rgba.length} bytes, expected ${width * height * 4}`);
  }

  const ink = new Float32Array(width * height);
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0, p = 0; y < height; y++) {
    for (let x = 0; x < width; x++, p++) {
      const q = p * 4;
      const v = ((0.299 * rgba[q]! + 0.587 * rgba[q + 1]! + 0.114 * rgba[q + 2]!) / 255) * (rgba[q + 3]! / 255);
      ink[p] = v;
      if (v > INK_THRESHOLD) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return out;

  // Centre of mass inside the bounding box, in continuous coordinates (pixel i spans [i, i+1)).
  let mass = 0, mx = 0, my = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const v = ink[y * width + x]!;
      mass += v;
      mx += (x + 0.5) * v;
      my += (y + 0.5) * v;
    }
  }
  const cx = mx / mass, cy = my / mass;
  const scale = FIT / Math.max(x1 - x0 + 1, y1 - y0 + 1); // output pixels per source pixel

  // Output pixel u covers source [c + (u - 14) / scale, c + (u + 1 - 14) / scale); its value is the
  // average of the source over that span. Doing the placement and the resampling in one step keeps
  // the sub-pixel centre of mass instead of rounding it to a whole-pixel shift.
  const xw = spanWeights(cx, scale, x0, x1);
  const yw = spanWeights(cy, scale, y0, y1);
  const rows = new Float64Array((y1 - y0 + 1) * size); // horizontal pass: bbox rows × 28 columns
  for (let y = y0; y <= y1; y++) {
    const src = y * width;
    const dst = (y - y0) * size;
    for (let u = 0; u < size; u++) {
      const { idx, w } = xw[u]!;
      let s = 0;
      for (let k = 0; k < idx.length; k++) s += w[k]! * ink[src + idx[k]!]!;
      rows[dst + u] = s;
    }
  }
  let max = 0;
  for (let v = 0; v < size; v++) {
    const { idx, w } = yw[v]!;
    for (let u = 0; u < size; u++) {
      let s = 0;
      for (let k = 0; k < idx.length; k++) s += w[k]! * rows[(idx[k]! - y0) * size + u]!;
      out[v * size + u] = s;
      if (s > max) max = s;
    }
  }
  // Thin strokes on a big canvas average out to grey; MNIST strokes peak near 1, so stretch to that.
  if (max > 0) for (let i = 0; i < out.length; i++) out[i] = Math.min(1, out[i]! / max);
  return out;
}

/** For each of the 28 output pixels along one axis: the source pixels it covers and their weights. */
function spanWeights(centre: number, scale: number, lo: number, hi: number): { idx: number[]; w: number[] }[] {
  const res: { idx: number[]; w: number[] }[] = [];
  const half = DIGITS_SIZE / 2;
  for (let u = 0; u < DIGITS_SIZE; u++) {
    const a = centre + (u - half) / scale;
    const b = centre + (u + 1 - half) / scale;
    const idx: number[] = [];
    const w: number[] = [];
    for (let i = Math.max(Math.floor(a), lo); i <= Math.min(Math.ceil(b) - 1, hi); i++) {
      const overlap = Math.min(b, i + 1) - Math.max(a, i);
      if (overlap > 0) {
        idx.push(i);
        w.push(overlap * scale);
      }
    }
    res.push({ idx, w });
  }
  return res;
}

/** Numerically stable softmax. */
export function softmax(logits: Float32Array): Float32Array {
  const out = new Float32Array(logits.length);
  if (logits.length === 0) return out;
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  const e = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) sum += e[i] = Math.exp(logits[i]! - max);
  for (let i = 0; i < logits.length; i++) out[i] = e[i]! / sum;
  return out;
}

/** Index of the largest value (first one on ties); -1 for an empty input. */
export function argmax(v: ArrayLike<number>): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < v.length; i++) {
    if (best < 0 || v[i]! > bestValue) {
      best = i;
      bestValue = v[i]!;
    }
  }
  return best;
}

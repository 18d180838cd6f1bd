/** Plain RGBA images and the sampling the OCR pre-processing needs: no DOM, no Node APIs. */

/** RGBA, 4 bytes per pixel, row-major (the layout of ImageData and of pngjs). */
export interface RgbaImage {
  width: number
  height: number
  data: Uint8ClampedArray | Uint8Array
}

export interface Point {
  x: number
  y: number
}

/** Throws unless the image's buffer holds exactly width × height RGBA pixels. */
export function checkImage (img: RgbaImage): void {
  const { width, height, data } = img
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`image size ${width}x${height} is not a positive integer size`)
  }
  if (data.length !== width * height * 4) {
    throw new Error(`image ${width}x${height} needs ${width * height * 4} RGBA bytes, got ${data.length}`)
  }
}

/**
 * Bilinear sample of channel c at (x, y), pixel centres at integer coordinates; coordinates
 * outside the image are clamped (edge pixels repeat, like OpenCV's BORDER_REPLICATE).
 */
export function sample (img: RgbaImage, x: number, y: number, c: number): number {
  const { width, height, data } = img
  const fx = Math.min(Math.max(x, 0), width - 1)
  const fy = Math.min(Math.max(y, 0), height - 1)
  const x0 = Math.floor(fx)
  const y0 = Math.floor(fy)
  const x1 = Math.min(x0 + 1, width - 1)
  const y1 = Math.min(y0 + 1, height - 1)
  const ax = fx - x0
  const ay = fy - y0
  const top = data[(y0 * width + x0) * 4 + c] * (1 - ax) + data[(y0 * width + x1) * 4 + c] * ax
  const bottom = data[(y1 * width + x0) * 4 + c] * (1 - ax) + data[(y1 * width + x1) * 4 + c] * ax
  return top * (1 - ay) + bottom * ay
}

/**
 * Resizes to width × height (bilinear) and writes R, G, B, after `map`, into planar float32
 * channels in B, G, R order: the order PaddleOCR's models were trained on (OpenCV loads BGR).
 * Channel c of the output starts at offset + c · rowStride · height. Source coordinates follow
 * OpenCV's INTER_LINEAR convention, (dst + 0.5) · scale − 0.5, clamped at the edges.
 */
export function resizeToPlanarBgr (
  img: RgbaImage, width: number, height: number,
  out: Float32Array, offset: number, rowStride: number,
  map: (value: number, channel: number) => number
): void {
  const { data } = img
  const xs = axisTaps(img.width, width)
  const ys = axisTaps(img.height, height)
  const plane = rowStride * height
  for (let y = 0; y < height; y++) {
    const row0 = ys.i0[y] * img.width
    const row1 = ys.i1[y] * img.width
    const ay = ys.a[y]
    for (let x = 0; x < width; x++) {
      const p00 = (row0 + xs.i0[x]) * 4
      const p01 = (row0 + xs.i1[x]) * 4
      const p10 = (row1 + xs.i0[x]) * 4
      const p11 = (row1 + xs.i1[x]) * 4
      const ax = xs.a[x]
      const at = offset + y * rowStride + x
      for (let c = 0; c < 3; c++) {
        const rgb = 2 - c
        const top = data[p00 + rgb] + (data[p01 + rgb] - data[p00 + rgb]) * ax
        const bottom = data[p10 + rgb] + (data[p11 + rgb] - data[p10 + rgb]) * ax
        out[at + c * plane] = map(top + (bottom - top) * ay, c)
      }
    }
  }
}

/**
 * Bilinear taps along one axis (pixel centres aligned, edges clamped): per destination index,
 * the two source indices and the weight of the second.
 */
export function axisTaps (src: number, dst: number): { i0: Int32Array, i1: Int32Array, a: Float32Array } {
  const i0 = new Int32Array(dst)
  const i1 = new Int32Array(dst)
  const a = new Float32Array(dst)
  const scale = src / dst
  for (let d = 0; d < dst; d++) {
    const s = Math.min(Math.max((d + 0.5) * scale - 0.5, 0), src - 1)
    i0[d] = Math.floor(s)
    i1[d] = Math.min(i0[d] + 1, src - 1)
    a[d] = s - i0[d]
  }
  return { i0, i1, a }
}

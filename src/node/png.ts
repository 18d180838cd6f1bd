/** PNG files as RGBA images for the OCR pipeline in Node (the browser decodes with its own image APIs). */
import { PNG } from 'pngjs'
import { RequesterError } from './requester-errors.js'
import type { RgbaImage } from '../ocr/image.js'

/** Pixels of one page, read from its PNG header before it is decoded (25 MP is 100 MB of RGBA). */
export const MAX_IMAGE_PIXELS = 25_000_000
/** Pixels of all the pages of one OCR call together (they are decoded together). */
export const MAX_TOTAL_PIXELS = 100_000_000

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

/** Width and height from a PNG's first chunk (IHDR), without decoding it; undefined when it is no PNG. */
export function pngSize (bytes: Uint8Array): { width: number, height: number } | undefined {
  if (bytes.byteLength < 24 || !PNG_SIGNATURE.every((b, i) => bytes[i] === b) || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return { width: view.getUint32(16), height: view.getUint32(20) }
}

/**
 * Checks pages by their headers before any is decoded: RequesterError 'bad-image' for one that is
 * no PNG, 'too-large' past MAX_IMAGE_PIXELS for one or MAX_TOTAL_PIXELS for all, naming the page.
 */
export function checkPngPages (pages: ReadonlyArray<{ name: string, bytes: Uint8Array }>): void {
  let total = 0
  for (const { name, bytes } of pages) {
    const size = pngSize(bytes)
    if (size == null) throw new RequesterError('bad-image', `${name} is not a PNG image (OCR takes PNG files)`)
    const pixels = size.width * size.height
    if (pixels > MAX_IMAGE_PIXELS) throw new RequesterError('too-large', `${name} is ${size.width}×${size.height} pixels, at most ${MAX_IMAGE_PIXELS / 1e6} megapixels per image are accepted`)
    total += pixels
    if (total > MAX_TOTAL_PIXELS) throw new RequesterError('too-large', `the images add up to more than ${MAX_TOTAL_PIXELS / 1e6} megapixels; send fewer per call`)
  }
}

/** Any PNG (palette, grey, 16-bit, with or without alpha) as 8-bit RGBA. */
export function decodePng (bytes: Uint8Array): RgbaImage {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) }
}

/** PNG files as RGBA images for the OCR pipeline in Node (the browser decodes with its own image APIs). */
import { PNG } from 'pngjs'
import type { RgbaImage } from '../ocr/image.js'

/** Any PNG (palette, grey, 16-bit, with or without alpha) as 8-bit RGBA. */
export function decodePng (bytes: Uint8Array): RgbaImage {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) }
}

/** Images a user drops, as RGBA pixels for pre-processing (decoded by the browser, never by a peer). */
import type { RgbaImage } from '../ocr/image.js'

/** Larger images are scaled down to this longest side: detection works at ≤ 960 px anyway, and a 50 MP photo would take 200 MB. */
export const MAX_IMAGE_SIDE = 4096

export async function decodeImage (blob: Blob, maxSide = MAX_IMAGE_SIDE): Promise<RgbaImage> {
  let bitmap: ImageBitmap
  try {
    bitmap = await createImageBitmap(blob)
  } catch {
    throw new Error(`${(blob as File).name ?? 'this file'} is not an image this browser can decode`)
  }
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height))
  const width = Math.max(1, Math.round(bitmap.width * scale))
  const height = Math.max(1, Math.round(bitmap.height * scale))
  const canvas = new OffscreenCanvas(width, height)
  const ctx = canvas.getContext('2d', { willReadFrequently: true })
  if (ctx == null) throw new Error('no 2D canvas to decode the image')
  ctx.drawImage(bitmap, 0, 0, width, height)
  bitmap.close()
  const { data } = ctx.getImageData(0, 0, width, height)
  return { width, height, data }
}

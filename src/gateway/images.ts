/**
 * Page images for POST /v1/ocr: base64 PNGs whose size is read from the PNG header before anything
 * is decoded, so a small file that would decode to gigabytes of pixels is refused, not loaded.
 */
import { RequesterError } from '../index.js'
import { MAX_IMAGE_PIXELS, MAX_TOTAL_PIXELS } from './limits.js'

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** Width and height from the IHDR chunk, which a PNG must start with. */
function pngSize (bytes: Buffer, i: number): { width: number, height: number } {
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE) || bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw new RequesterError('bad-image', `image ${i}: not a PNG (base64 of a .png file)`)
  }
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) }
}

/** The PNG bytes of each image; RequesterError 'bad-image' or 'too-large' naming the image. */
export function pngImages (images: readonly string[]): Uint8Array[] {
  let total = 0
  return images.map((text, i) => {
    const bytes = Buffer.from(text.replace(/^data:image\/png;base64,/, ''), 'base64')
    const { width, height } = pngSize(bytes, i)
    const pixels = width * height
    if (pixels > MAX_IMAGE_PIXELS) throw new RequesterError('too-large', `image ${i}: ${width}×${height} pixels, at most ${MAX_IMAGE_PIXELS / 1e6} MP per image`)
    total += pixels
    if (total > MAX_TOTAL_PIXELS) throw new RequesterError('too-large', `the images add up to more than ${MAX_TOTAL_PIXELS / 1e6} MP; send fewer per call`)
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  })
}

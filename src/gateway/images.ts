/**
 * Page images for POST /v1/ocr: base64 PNGs sized from their headers (the library's checkPngPages)
 * before the call is queued, so a small body that would decode to gigabytes is refused at once.
 */
import { checkPngPages } from '../node/png.js'

/** The PNG bytes of each image; RequesterError 'bad-image' or 'too-large' naming the image. */
export function pngImages (images: readonly string[]): Uint8Array[] {
  const pages = images.map((text, i) => {
    const bytes = Buffer.from(text.replace(/^data:image\/png;base64,/, ''), 'base64')
    return { name: `image ${i}`, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) }
  })
  checkPngPages(pages)
  return pages.map(p => p.bytes)
}

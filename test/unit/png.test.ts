/** PNG pages are sized from their headers before anything is decoded (src/node/png.ts, readImages). */
import { describe, expect, it } from 'vitest'
import { PNG } from 'pngjs'
import { checkPngPages, pngSize } from '../../src/node/png.js'
import { readImages } from '../../src/node/requester.js'

/** A real 3×2 PNG, and the same bytes with the header's width and height rewritten (a "bomb": tiny file, huge claim). */
function png (width = 3, height = 2): Uint8Array {
  const image = new PNG({ width, height })
  return new Uint8Array(PNG.sync.write(image))
}
function claiming (width: number, height: number): Uint8Array {
  const bytes = png().slice()
  const view = new DataView(bytes.buffer)
  view.setUint32(16, width)
  view.setUint32(20, height)
  return bytes
}

describe('PNG pages', () => {
  it('reads the size from the header', () => {
    expect(pngSize(png(3, 2))).toEqual({ width: 3, height: 2 })
    expect(pngSize(new TextEncoder().encode('not a png at all, really not'))).toBeUndefined()
    expect(pngSize(png().subarray(0, 20))).toBeUndefined()
  })

  it('refuses a page that is no PNG, one that claims too many pixels, and pages too many together', () => {
    expect(() => { checkPngPages([{ name: 'a.txt', bytes: new TextEncoder().encode('hello') }]) }).toThrow(expect.objectContaining({ code: 'bad-image', message: 'a.txt is not a PNG image (OCR takes PNG files)' }))
    expect(() => { checkPngPages([{ name: 'bomb.png', bytes: claiming(20000, 20000) }]) }).toThrow(expect.objectContaining({ code: 'too-large', message: expect.stringContaining('bomb.png is 20000×20000 pixels') }))
    const big = { name: 'big.png', bytes: claiming(5000, 5000) }
    expect(() => { checkPngPages([big, big, big, big]) }).not.toThrow()
    expect(() => { checkPngPages([big, big, big, big, big]) }).toThrow(expect.objectContaining({ code: 'too-large', message: expect.stringContaining('add up to more than 100 megapixels') }))
  })

  it('readImages refuses a bomb before decoding anything, and decodes real pages', async () => {
    await expect(readImages([png(), claiming(100000, 100000)])).rejects.toMatchObject({ code: 'too-large', message: expect.stringContaining('image 1 is 100000×100000') })
    const [page] = await readImages([png(3, 2)])
    expect(page).toMatchObject({ width: 3, height: 2 })
    expect(page!.data.byteLength).toBe(3 * 2 * 4)
    await expect(readImages(['/nonexistent/page.png'])).rejects.toMatchObject({ code: 'bad-image', message: 'cannot read /nonexistent/page.png: ENOENT' })
  })
})

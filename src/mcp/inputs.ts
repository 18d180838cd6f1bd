/**
 * Files an agent names: a JSONL file of batch inputs and PNG pages. Each is checked (size, line
 * count, image dimensions from the PNG header) before it is read whole or decoded, so a path to a
 * huge file or a small PNG that decodes to gigabytes is refused with a code, not loaded.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { RequesterError } from '../index.js'
import { MAX_FILE_BYTES, MAX_FILE_INPUTS, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_TOTAL_PIXELS } from './limits.js'
import type { RequesterErrorCode } from '../index.js'

const MiB = 1024 * 1024

/** The file's size after checking it is a readable file of at most `maxBytes`. */
async function fileSize (path: string, maxBytes: number, unreadable: RequesterErrorCode): Promise<number> {
  let size: number
  try {
    const s = await stat(path)
    if (!s.isFile()) throw new RequesterError(unreadable, `${path} is not a file`)
    size = s.size
  } catch (err) {
    if (err instanceof RequesterError) throw err
    throw new RequesterError(unreadable, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (size > maxBytes) throw new RequesterError('too-large', `${path} is ${(size / MiB).toFixed(1)} MiB, at most ${maxBytes / MiB} MiB are accepted`)
  return size
}

/**
 * The non-blank lines of a JSONL inputs file, each one task's inputs as JSON text (the library
 * parses and checks them); RequesterError 'too-large' past MAX_FILE_INPUTS lines or MAX_FILE_BYTES.
 */
export async function jsonlInputs (path: string): Promise<AsyncGenerator<string>> {
  await fileSize(path, MAX_FILE_BYTES, 'bad-input')
  return (async function * () {
    // Bounded again while reading: the file may have grown since it was checked.
    const stream = createReadStream(path, { end: MAX_FILE_BYTES - 1 })
    const lines = createInterface({ input: stream, crlfDelay: Infinity })
    let count = 0
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue
        if (++count > MAX_FILE_INPUTS) throw new RequesterError('too-large', `${path} has more than ${MAX_FILE_INPUTS} inputs; split it into several batches`)
        yield line
      }
    } catch (err) {
      if (err instanceof RequesterError) throw err
      throw new RequesterError('bad-input', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    } finally {
      lines.close()
      stream.destroy()
    }
  })()
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

/** Width and height from a PNG's header (its first chunk, IHDR), without decoding it; RequesterError 'bad-image' when it is no PNG. */
function pngDimensions (bytes: Uint8Array, name: string): { width: number, height: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const isPng = bytes.byteLength >= 24 && PNG_SIGNATURE.every((b, i) => bytes[i] === b) &&
    String.fromCharCode(...bytes.subarray(12, 16)) === 'IHDR'
  if (!isPng) throw new RequesterError('bad-image', `${name} is not a PNG image (read_text_from_images takes PNG files)`)
  return { width: view.getUint32(16), height: view.getUint32(20) }
}

/** The bytes of every PNG page, checked against the file size and pixel limits, one page and all together. */
export async function readPages (paths: readonly string[]): Promise<Uint8Array[]> {
  const pages: Uint8Array[] = []
  let total = 0
  for (const path of paths) {
    await fileSize(path, MAX_IMAGE_BYTES, 'bad-image')
    const bytes = new Uint8Array(await readFile(path).catch((err: NodeJS.ErrnoException) => {
      throw new RequesterError('bad-image', `cannot read ${path}: ${err.code ?? err.message}`)
    }))
    const { width, height } = pngDimensions(bytes, path)
    const pixels = width * height
    if (pixels > MAX_IMAGE_PIXELS) throw new RequesterError('too-large', `${path} is ${width}×${height} pixels, at most ${MAX_IMAGE_PIXELS / 1e6} megapixels per image are accepted`)
    total += pixels
    if (total > MAX_TOTAL_PIXELS) throw new RequesterError('too-large', `these images have more than ${MAX_TOTAL_PIXELS / 1e6} megapixels together; send fewer per call`)
    pages.push(bytes)
  }
  return pages
}

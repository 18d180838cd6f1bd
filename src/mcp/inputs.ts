/**
 * Files an agent names: a JSONL file of batch inputs and PNG pages. Each is checked (size, line
 * count, image dimensions from the PNG header) before it is read whole or decoded, so a path to a
 * huge file or a small PNG that decodes to gigabytes is refused with a code, not loaded.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { RequesterError } from '../index.js'
import { checkPngPages } from '../node/png.js'
import { MAX_FILE_BYTES, MAX_FILE_INPUTS, MAX_IMAGE_BYTES } from './limits.js'
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

/** The bytes of every PNG page, checked against the file size and pixel limits, one page and all together. */
export async function readPages (paths: readonly string[]): Promise<Uint8Array[]> {
  const pages: Array<{ name: string, bytes: Uint8Array }> = []
  for (const path of paths) {
    await fileSize(path, MAX_IMAGE_BYTES, 'bad-image')
    const bytes = new Uint8Array(await readFile(path).catch((err: NodeJS.ErrnoException) => {
      throw new RequesterError('bad-image', `cannot read ${path}: ${err.code ?? err.message}`)
    }))
    pages.push({ name: path, bytes })
    // Each page is sized (and the running total) before the next file is read.
    checkPngPages(pages)
  }
  return pages.map(p => p.bytes)
}

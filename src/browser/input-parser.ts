/**
 * The page's side of the input parser: JSON text, JSON/JSONL/.npy/image files → wire tensors,
 * parsed in a Web Worker (input-parser-worker.ts) so the main thread only posts a File handle and
 * receives the tensors' buffers, transferred. One worker for the page, started on first use.
 *
 *   parseTensorText(spec, text)  one input from JSON text (at most MAX_PASTE_CHARS)
 *   parseTensorFile(spec, file)  one input from a .json, .npy or image file
 *   parseInputFile(file, specs)  a dataset: rows of every input, from JSONL (one object keyed by
 *                                input name per line), JSON (one such object or a list of them),
 *                                .npy (samples along axis 0) or an image, for one-input models
 * Each rejects with a TaskError ('bad-request') whose message names the input, line or element.
 */
import * as Comlink from 'comlink'
import { TaskError } from '../core/errors.js'
import { fileTooLarge, pastedTooLarge } from './input-parser-files.js'
import type { ParseReply } from './input-parser-files.js'
import type { InputParserApi } from './input-parser-worker.js'
import type { InputSpec } from '../models/tensor-input.js'
import type { WireTensor } from '../core/tensor.js'

export { MAX_DATASET_ROWS, MAX_INPUT_FILE_BYTES, MAX_PASTE_CHARS, fileKind, fileTooLarge, pastedTooLarge } from './input-parser-files.js'

interface Parser {
  remote: Comlink.Remote<InputParserApi>
  /** Rejects when the worker dies (an uncaught error, out of memory): comlink alone would leave its calls pending for ever. */
  died: Promise<never>
}

let current: Parser | undefined

function parser (): Parser {
  if (current != null) return current
  const worker = new Worker(new URL('./input-parser-worker.ts', import.meta.url), { type: 'module', name: 'p2p-input-parser' })
  const p: Parser = {
    remote: Comlink.wrap<InputParserApi>(worker),
    died: new Promise<never>((_resolve, reject) => {
      worker.addEventListener('error', (evt) => {
        // The next call starts a fresh worker.
        if (current === p) current = undefined
        worker.terminate()
        const why = (evt as ErrorEvent).message
        reject(new TaskError('bad-request', `the input parser stopped${typeof why === 'string' && why !== '' ? ` (${why})` : ''}; a smaller file may fit`))
      }, { once: true })
    })
  }
  p.died.catch(() => {}) // observed by the calls pending when it happens, if any
  current = p
  return p
}

async function call<T> (request: (remote: Comlink.Remote<InputParserApi>) => Promise<ParseReply<T>>): Promise<T> {
  const p = parser()
  return unwrap(await Promise.race([request(p.remote), p.died]))
}

/** A plain copy: specs held in Svelte state are proxies, which cannot be posted to a worker. */
const plain = (spec: InputSpec): InputSpec => ({ name: spec.name, dtype: spec.dtype, dims: [...spec.dims], rankKnown: spec.rankKnown })

function unwrap<T> (reply: ParseReply<T>): T {
  if ('error' in reply) throw new TaskError(reply.error.code, reply.error.message)
  return reply.value
}

export async function parseTensorText (spec: InputSpec, text: string): Promise<WireTensor> {
  const large = pastedTooLarge(text.length)
  if (large != null) throw new TaskError('bad-request', large)
  return await call(async r => await r.parseText(plain(spec), text))
}

export async function parseTensorFile (spec: InputSpec, file: File): Promise<WireTensor> {
  const large = fileTooLarge(file)
  if (large != null) throw new TaskError('bad-request', large)
  return await call(async r => await r.parseFile(plain(spec), file))
}

export async function parseInputFile (file: File, specs: readonly InputSpec[]): Promise<WireTensor[][]> {
  const large = fileTooLarge(file)
  if (large != null) throw new TaskError('bad-request', large)
  return await call(async r => await r.parseRows(file, specs.map(plain)))
}

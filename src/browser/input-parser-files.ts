/**
 * What the input parser accepts and its limits, shared by the page and the parser's Web Worker.
 * Text pasted into the page stays small: a textarea holding megabytes costs layout on every change
 * anywhere in the page (a batch on that tab ran at 30 tasks/s instead of 500); larger inputs come
 * as files, which are read and parsed in the worker (the parsing itself is here, so it runs in
 * Node tests too).
 */
import { inputsFromJson, tensorFromImage, tensorFromJson, tensorFromNpy } from '../models/tensor-input.js'
import { parseNpy, writeNpy } from '../models/npy.js'
import { TaskError, toTaskError } from '../core/errors.js'
import { decodeImage } from './images.js'
import type { InputSpec } from '../models/tensor-input.js'
import type { WireTensor } from '../core/tensor.js'
import type { TaskErrorCode } from '../core/errors.js'

/** Most characters a pasted or typed input may have (about 256 KB of JSON). */
export const MAX_PASTE_CHARS = 256 * 1024
/** Largest input file read (JSON, JSONL, .npy or image). */
export const MAX_INPUT_FILE_BYTES = 64 * 1024 * 1024
/** Most rows one dataset file may give (each becomes a task). */
export const MAX_DATASET_ROWS = 100_000

export type FileKind = 'json' | 'jsonl' | 'npy' | 'image'

/** What the worker answers: errors as data (comlink drops an Error's code). */
export type ParseReply<T> = { value: T } | { error: { code: TaskErrorCode, message: string } }

/** What a file holds, by its name (then its type, for images). */
export function fileKind (file: { name: string, type: string }): FileKind | undefined {
  const name = file.name.toLowerCase()
  if (name.endsWith('.npy')) return 'npy'
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson')) return 'jsonl'
  if (name.endsWith('.json')) return 'json'
  if (file.type.startsWith('image/') || /\.(png|jpe?g|gif|webp|bmp|avif)$/.test(name)) return 'image'
  return undefined
}

const mb = (bytes: number): string => { const v = bytes / 1024 / 1024; return `${Number.isInteger(v) ? v : v.toFixed(1)} MB` }
const kb = (n: number): string => n >= 1024 * 1024 ? mb(n) : `${Math.ceil(n / 1024)} KB`

/** The message for pasted text over MAX_PASTE_CHARS, or undefined when it fits. */
export function pastedTooLarge (chars: number): string | undefined {
  if (chars <= MAX_PASTE_CHARS) return undefined
  return `The pasted text is ${kb(chars)}; this box takes up to ${kb(MAX_PASTE_CHARS)}. Save it as a .json file (or use .npy or an image) and choose it with the file button: files up to ${mb(MAX_INPUT_FILE_BYTES)} are read without freezing the page.`
}

/** The message for a file over MAX_INPUT_FILE_BYTES, or undefined when it fits. */
export function fileTooLarge (file: { name: string, size: number }): string | undefined {
  if (file.size <= MAX_INPUT_FILE_BYTES) return undefined
  return `${file.name} is ${mb(file.size)}; input files can be up to ${mb(MAX_INPUT_FILE_BYTES)}.`
}

function kindOf (file: File): FileKind {
  const large = fileTooLarge(file)
  if (large != null) throw new TaskError('bad-request', large)
  const kind = fileKind(file)
  if (kind == null) throw new TaskError('bad-request', `${file.name}: not a file this page reads (JSON, JSONL, .npy or an image)`)
  return kind
}

/** One input from a .json, .npy or image file. */
export async function tensorFromFile (spec: InputSpec, file: File): Promise<WireTensor> {
  switch (kindOf(file)) {
    case 'npy': return tensorFromNpy(spec, new Uint8Array(await file.arrayBuffer()))
    case 'image': return tensorFromImage(spec, await decodeImage(file))
    default: return tensorFromJson(spec, await file.text())
  }
}

/** A .npy of shape [N, ...] as N rows: [1, ...] when the input keeps the batch axis, [...] when it has one axis fewer. */
function npyRows (spec: InputSpec, bytes: Uint8Array, name: string): WireTensor[][] {
  const all = parseNpy(bytes, name)
  if (all.dims.length === 0) throw new TaskError('bad-request', `${name}: a dataset .npy needs a first axis of samples`)
  const [n, ...rest] = all.dims as [number, ...number[]]
  // Before the loop: the header alone may claim a million rows of a few bytes each.
  if (n > MAX_DATASET_ROWS) throw new TaskError('bad-request', `${name}: ${n} samples, at most ${MAX_DATASET_ROWS}`)
  const dims = spec.rankKnown !== false && spec.dims.length === all.dims.length - 1 ? rest : [1, ...rest]
  const step = all.data.byteLength / Math.max(1, n)
  const rows: WireTensor[][] = []
  for (let i = 0; i < n; i++) {
    const row = { name: spec.name, dtype: all.dtype, dims, data: all.data.subarray(i * step, (i + 1) * step) }
    // Through the .npy reader once more: the same dtype and shape checks as a single .npy input.
    rows.push([tensorFromNpy(spec, writeNpy(row))])
  }
  return rows
}

function rowsFromJsonValue (specs: readonly InputSpec[], value: unknown, name: string): WireTensor[][] {
  const list = Array.isArray(value) ? value : [value]
  if (list.length > MAX_DATASET_ROWS) throw new TaskError('bad-request', `${name}: ${list.length} rows, at most ${MAX_DATASET_ROWS}`)
  return list.map((row, i) => {
    try {
      return inputsFromJson(specs, row)
    } catch (err) {
      throw new TaskError('bad-request', `${name}, row ${i + 1}: ${toTaskError(err).message}`)
    }
  })
}

/** A dataset file as rows of every input (see input-parser.ts). */
export async function rowsFromFile (file: File, specs: readonly InputSpec[]): Promise<WireTensor[][]> {
  const kind = kindOf(file)
  if (kind === 'jsonl') {
    const lines = (await file.text()).split('\n')
    const rows: WireTensor[][] = []
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim()
      if (line === '') continue
      if (rows.length === MAX_DATASET_ROWS) throw new TaskError('bad-request', `${file.name}: more than ${MAX_DATASET_ROWS} rows`)
      try {
        rows.push(inputsFromJson(specs, line))
      } catch (err) {
        throw new TaskError('bad-request', `${file.name}, line ${i + 1}: ${toTaskError(err).message}`)
      }
    }
    return rows
  }
  if (kind === 'json') {
    let value: unknown
    try {
      value = JSON.parse(await file.text())
    } catch (err) {
      throw new TaskError('bad-request', `${file.name}: not valid JSON (${(err as Error).message})`)
    }
    return rowsFromJsonValue(specs, value, file.name)
  }
  if (specs.length !== 1) throw new TaskError('bad-request', `${file.name}: a ${kind === 'npy' ? '.npy' : 'image'} file fills one input, this model has ${specs.length}`)
  if (kind === 'npy') return npyRows(specs[0]!, new Uint8Array(await file.arrayBuffer()), file.name)
  return [[tensorFromImage(specs[0]!, await decodeImage(file))]]
}

/**
 * Web Worker entry: turns what a user gives a model (JSON text, a JSON/JSONL/.npy/image file) into
 * wire tensors off the page's main thread, so a large input never freezes the page (a frozen tab
 * also misses its network timers: direct connections fall back to relayed, adverts expire).
 * Exposed with comlink; tensors go back with their buffers transferred, errors as data. The page
 * side is input-parser.ts.
 */
import * as Comlink from 'comlink'
import { tensorFromJson } from '../models/tensor-input.js'
import { toTaskError } from '../core/errors.js'
import { rowsFromFile, tensorFromFile } from './input-parser-files.js'
import type { ParseReply } from './input-parser-files.js'
import type { InputSpec } from '../models/tensor-input.js'
import type { WireTensor } from '../core/tensor.js'

/** Errors as data, values with their tensors' buffers transferred back. */
async function answer<T> (work: () => Promise<T>, tensors: (value: T) => WireTensor[]): Promise<ParseReply<T>> {
  try {
    const value = await work()
    return Comlink.transfer({ value }, tensors(value).map(t => t.data.buffer as ArrayBuffer))
  } catch (err) {
    const e = toTaskError(err, 'bad-request')
    return { error: { code: e.code, message: e.message } }
  }
}

/** A buffer may back several tensors: the transfer list names each once. */
function distinct (tensors: WireTensor[]): WireTensor[] {
  const seen = new Set<ArrayBufferLike>()
  return tensors.filter(t => {
    if (seen.has(t.data.buffer)) return false
    seen.add(t.data.buffer)
    return true
  })
}

const api = {
  parseText: async (spec: InputSpec, text: string) => await answer(async () => tensorFromJson(spec, text), t => [t]),
  parseFile: async (spec: InputSpec, file: File) => await answer(async () => await tensorFromFile(spec, file), t => [t]),
  parseRows: async (file: File, specs: InputSpec[]) => await answer(async () => await rowsFromFile(file, specs), rows => distinct(rows.flat()))
}

export type InputParserApi = typeof api

Comlink.expose(api)

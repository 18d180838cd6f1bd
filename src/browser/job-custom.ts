/**
 * Batches over the user's own model and dataset in the page: the model's declared inputs and
 * outputs from a dropped .onnx, the tasks' inputs from a JSONL file (one JSON object per line
 * keyed by input name: the format of `npm run infer` and the gateway), a folder of images (for a
 * model with one image-shaped input) or .npy files (one per task, for a model with one input), and
 * the results as JSONL in input order.
 *
 * Files are parsed off the main thread by the input parser's Web Worker (src/browser/input-parser.ts,
 * passed in as a function so this module runs in Node tests); the limits on the task count and
 * the bytes a job holds are checked as the tensors come back, before the job is stored.
 */
import { readModelInfo } from '../models/onnx-info.js'
import { imageLayout } from '../models/tensor-input.js'
import { tensorToJson } from '../models/tensor-output.js'
import { DEFAULT_MAX_MODEL_BYTES } from '../core/model-transfer/codec.js'
import type { InputSpec } from '../models/tensor-input.js'
import type { DeclaredModel } from '../core/output-check.js'
import type { DTypeName, WireTensor } from '../core/tensor.js'
import type { StoredResult } from '../core/job-store.js'

/** Most tasks in one job from the page. */
export const MAX_CUSTOM_TASKS = 100_000
/** Most input bytes one job holds (they stay in memory while it runs, and in IndexedDB). */
export const MAX_CUSTOM_INPUT_BYTES = 256 * 1024 * 1024

/** A dataset or model the page refuses, with the reason in words. */
export class CustomJobError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'CustomJobError'
  }
}

export interface CustomModel {
  name: string
  bytes: Uint8Array
  inputs: InputSpec[]
  outputs: InputSpec[]
  declared: DeclaredModel
}

/** Reads a dropped .onnx: its inputs and outputs must be tensors the network carries. */
export function customModel (name: string, bytes: Uint8Array): CustomModel {
  if (bytes.byteLength > DEFAULT_MAX_MODEL_BYTES) throw new CustomJobError(`${name} is ${(bytes.byteLength / 1024 / 1024).toFixed(0)} MB; peers fetch models up to ${DEFAULT_MAX_MODEL_BYTES / 1024 / 1024} MB`)
  let info
  try {
    info = readModelInfo(bytes)
  } catch (err) {
    throw new CustomJobError(`${name} is not a readable ONNX model (${(err as Error).message})`)
  }
  if (info.externalData) throw new CustomJobError(`${name} keeps its weights in a separate file; save the model as one .onnx`)
  const unsupported = [...info.inputs, ...info.outputs].filter(io => !io.supported)
  if (unsupported.length > 0) throw new CustomJobError(`${name}: ${unsupported.map(io => `'${io.name}' (${io.type})`).join(', ')} has a type the network cannot carry`)
  const specs = (list: typeof info.inputs): InputSpec[] => list.map(i => ({ name: i.name, dtype: i.dtype as DTypeName, dims: [...i.dims], rankKnown: i.rankKnown }))
  const inputs = specs(info.inputs)
  const outputs = specs(info.outputs)
  return { name, bytes, inputs, outputs, declared: { inputs, outputs } }
}

/** Whether the model takes one image (a folder of images can feed it). */
export function imageInput (model: CustomModel): InputSpec | undefined {
  return model.inputs.length === 1 && imageLayout(model.inputs[0]) != null ? model.inputs[0] : undefined
}

/** Parses one file into one input's tensor (the page passes the input parser's Web Worker: src/browser/input-parser.ts). */
export type ParseFile = (spec: InputSpec, file: File) => Promise<WireTensor>

export interface ReadProgress {
  tasks: number
  /** Bytes of the source read so far, and in all. */
  read: number
  total: number
}

export interface Dataset {
  tasks: WireTensor[][]
  /** Where they came from, in words. */
  source: string
  bytes: number
}

class Budget {
  tasks = 0
  bytes = 0

  add (inputs: WireTensor[], where: string): void {
    if (this.tasks + 1 > MAX_CUSTOM_TASKS) throw new CustomJobError(`${where}: more than ${MAX_CUSTOM_TASKS.toLocaleString('en')} tasks; split the dataset into several jobs`)
    const bytes = inputs.reduce((n, t) => n + t.data.byteLength, 0)
    if (this.bytes + bytes > MAX_CUSTOM_INPUT_BYTES) throw new CustomJobError(`${where}: the inputs pass ${MAX_CUSTOM_INPUT_BYTES / 1024 / 1024} MB; split the dataset into several jobs`)
    this.tasks++
    this.bytes += bytes
  }
}

/** A dataset from rows already parsed (JSONL through the input parser's Web Worker), within the limits. */
export function datasetFromRows (rows: readonly WireTensor[][], source: string): Dataset {
  if (rows.length === 0) throw new CustomJobError(`${source} has no inputs`)
  const budget = new Budget()
  rows.forEach((inputs, i) => { budget.add(inputs, `${source}, row ${i + 1}`) })
  return { tasks: [...rows], source: `${source}, ${rows.length} row${rows.length === 1 ? '' : 's'}`, bytes: budget.bytes }
}

/** Files in a stable order: by their path in the folder, then name. */
function byPath (files: readonly File[]): File[] {
  const key = (f: File): string => (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name
  return [...files].sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)
}

/** A folder of images for a model with one image-shaped input: one task per image, in path order. */
export async function readImages (files: readonly File[], model: CustomModel, parse: ParseFile, onProgress?: (p: ReadProgress) => void): Promise<Dataset> {
  const spec = imageInput(model)
  if (spec == null) throw new CustomJobError(`${model.name} does not take one image ([1,1|3,H,W] or [1,H,W,1|3]): use a JSONL file`)
  const images = byPath(files).filter(f => f.type.startsWith('image/') || /\.(png|jpe?g|webp|gif|bmp)$/i.test(f.name))
  if (images.length === 0) throw new CustomJobError('no image files in that folder')
  const { tasks, bytes } = await oneTaskPerFile(images, spec, parse, onProgress, false)
  return { tasks, source: `${images.length} image${images.length === 1 ? '' : 's'}`, bytes }
}

/** .npy files for a model with one input: one task per file, in name order. */
export async function readNpyFiles (files: readonly File[], model: CustomModel, parse: ParseFile, onProgress?: (p: ReadProgress) => void): Promise<Dataset> {
  if (model.inputs.length !== 1) throw new CustomJobError(`${model.name} takes ${model.inputs.length} inputs: .npy files feed a model with one; use a JSONL file`)
  const spec = model.inputs[0]
  const npys = byPath(files).filter(f => f.name.toLowerCase().endsWith('.npy'))
  if (npys.length === 0) throw new CustomJobError('no .npy files chosen')
  const { tasks, bytes } = await oneTaskPerFile(npys, spec, parse, onProgress, true)
  return { tasks, source: `${npys.length} .npy file${npys.length === 1 ? '' : 's'}`, bytes }
}

/**
 * Each file one task of the model's single input, in the order given, within the job's input
 * budget. `tensorIsFile`: the tensor is as large as the file (.npy), so the budget is checked before
 * the file is read; an image becomes a tensor of the model's size, whatever the file's.
 */
async function oneTaskPerFile (files: readonly File[], spec: CustomModel['inputs'][number], parse: ParseFile, onProgress: ((p: ReadProgress) => void) | undefined, tensorIsFile: boolean): Promise<{ tasks: WireTensor[][], bytes: number }> {
  const budget = new Budget()
  const tasks: WireTensor[][] = []
  const total = files.reduce((n, f) => n + f.size, 0)
  let read = 0
  for (const f of files) {
    if (tensorIsFile && budget.bytes + f.size > MAX_CUSTOM_INPUT_BYTES + 1024 * 1024) throw new CustomJobError(`${f.name}: the inputs pass ${MAX_CUSTOM_INPUT_BYTES / 1024 / 1024} MB; split the dataset into several jobs`)
    let tensor: WireTensor
    try {
      tensor = await parse(spec, f)
    } catch (err) {
      throw new CustomJobError(`${f.name}: ${(err as Error).message}`)
    }
    budget.add([tensor], f.name)
    tasks.push([tensor])
    read += f.size
    onProgress?.({ tasks: tasks.length, read, total })
  }
  return { tasks, bytes: budget.bytes }
}

/** Results as JSONL in input order, one line per decided task: { index, outputs, agreedBy } as `npm run infer` writes them. */
export function resultsJsonl (results: readonly StoredResult[]): string {
  const lines = [...results].sort((a, b) => a.index - b.index).map(r => JSON.stringify({ index: r.index, outputs: r.outputs.map(tensorToJson), agreedBy: r.agreedBy }))
  return lines.length === 0 ? '' : lines.join('\n') + '\n'
}

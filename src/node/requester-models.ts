/**
 * The models a requester can run: built-ins by name, and models given by path, bytes or sha256.
 * Each is read once (its declared inputs and outputs), refused with a clear error when this
 * network cannot run it, and added to the peer's model store so workers can fetch it by sha256.
 */
import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { BUILTIN_MODELS, builtinBySha } from '../models/catalog.js'
import { readModelInfo } from '../models/onnx-info.js'
import { DEFAULT_MAX_MODEL_BYTES } from '../core/model-transfer/codec.js'
import { RequesterError } from './requester-errors.js'
import type { CatalogModel } from '../models/catalog.js'
import type { ModelProvider } from '../core/model-store.js'
import type { DTypeName } from '../core/tensor.js'

/** A model: a built-in name ('digits'), a sha256 this requester knows, a path to an .onnx file, or its bytes. */
export type ModelInput = string | Uint8Array | { path: string } | { bytes: Uint8Array, name?: string }

/** A declared input or output: fixed sizes are numbers, symbolic ones names. */
export interface TensorInfo {
  name: string
  dtype: DTypeName
  dims: Array<number | string>
  /** false when the model leaves the rank open (any shape is accepted). */
  rankKnown: boolean
}

export interface ModelHandle {
  sha256: string
  name: string
  size: number
  /** The built-in model's id ('digits', 'ocr-det', 'ocr-rec'), when it is one. */
  builtin?: string
  inputs: TensorInfo[]
  outputs: TensorInfo[]
}

const SHA256 = /^[0-9a-f]{64}$/

function fromCatalog (m: CatalogModel): ModelHandle {
  const io = (specs: CatalogModel['inputs']): TensorInfo[] => specs.map(s => ({ name: s.name, dtype: s.dtype, dims: [...s.dims], rankKnown: true }))
  return { sha256: m.sha256, name: m.id, size: m.size, builtin: m.id, inputs: io(m.inputs), outputs: io(m.outputs) }
}

export const BUILTIN_HANDLES: readonly ModelHandle[] = BUILTIN_MODELS.map(fromCatalog)

/** What a model declares, read from its bytes; RequesterError 'bad-model' when this network cannot run it. */
export function describeModel (bytes: Uint8Array, name: string, sha256: string): ModelHandle {
  let info
  try {
    info = readModelInfo(bytes)
  } catch (err) {
    throw new RequesterError('bad-model', `${name}: not a readable ONNX model (${(err as Error).message})`)
  }
  if (info.externalData) throw new RequesterError('bad-model', `${name}: its weights live in a separate file; save the model as one .onnx`)
  const unsupported = [...info.inputs, ...info.outputs].filter(io => !io.supported)
  if (unsupported.length > 0) throw new RequesterError('bad-model', `${name}: ${unsupported.map(io => `'${io.name}' (${io.type})`).join(', ')} has a type the network cannot carry`)
  const io = (list: typeof info.inputs): TensorInfo[] => list.map(i => ({ name: i.name, dtype: i.dtype as DTypeName, dims: [...i.dims], rankKnown: i.rankKnown }))
  return { sha256, name, size: bytes.byteLength, inputs: io(info.inputs), outputs: io(info.outputs) }
}

export class ModelRegistry {
  private readonly known = new Map<string, ModelHandle>()

  constructor (private readonly provider: ModelProvider, private readonly maxBytes = DEFAULT_MAX_MODEL_BYTES) {}

  /** Resolves a model, adding it to the store when it is new; RequesterError 'unknown-model', 'bad-model' or 'too-large'. */
  async resolve (model: ModelInput): Promise<ModelHandle> {
    if (model instanceof Uint8Array) return await this.add(model)
    if (typeof model === 'object' && 'bytes' in model) return await this.add(model.bytes, model.name)
    if (typeof model === 'object') return await this.addFile(model.path)
    const builtin = BUILTIN_HANDLES.find(m => m.builtin === model)
    if (builtin != null) return builtin
    if (SHA256.test(model)) {
      const found = await this.bySha(model)
      if (found == null) throw new RequesterError('unknown-model', `no model with sha256 ${model} here: upload it first`)
      return found
    }
    if (model.endsWith('.onnx') || model.includes('/')) return await this.addFile(model)
    throw new RequesterError('unknown-model', `unknown model "${model}" (built-in: ${BUILTIN_HANDLES.map(m => m.builtin).join(', ')}; or a path to an .onnx file, or the sha256 of one added before)`)
  }

  /** A model by sha256: built-in, added in this process, or in the store from before. */
  async bySha (sha256: string): Promise<ModelHandle | undefined> {
    const builtin = builtinBySha(sha256)
    if (builtin != null) return fromCatalog(builtin)
    const known = this.known.get(sha256)
    if (known != null) return known
    const bytes = await this.provider.local(sha256)
    if (bytes == null) return undefined
    const handle = describeModel(bytes, sha256.slice(0, 12), sha256)
    this.known.set(sha256, handle)
    return handle
  }

  /** Built-ins, then every model added (in this process or kept in the store), newest first. */
  async list (): Promise<ModelHandle[]> {
    const added: ModelHandle[] = []
    for (const sha of this.provider.cached) {
      const m = await this.bySha(sha).catch(() => undefined)
      if (m != null) added.push(m)
    }
    return [...BUILTIN_HANDLES, ...added]
  }

  async add (bytes: Uint8Array, name = 'model.onnx'): Promise<ModelHandle> {
    if (bytes.byteLength > this.maxBytes) throw new RequesterError('too-large', `${name}: ${bytes.byteLength} bytes, models of at most ${this.maxBytes} bytes travel between peers`)
    // Read before storing: a file that is not a model never reaches the store.
    const probe = describeModel(bytes, name, '')
    const sha256 = await this.provider.add(bytes)
    const builtin = builtinBySha(sha256)
    if (builtin != null) return fromCatalog(builtin)
    const handle = { ...probe, sha256 }
    this.known.set(sha256, handle)
    return handle
  }

  private async addFile (path: string): Promise<ModelHandle> {
    let bytes: Uint8Array
    try {
      // The size first: a path to a huge file is refused without reading it.
      const { size } = await stat(path)
      if (size > this.maxBytes) throw new RequesterError('too-large', `${basename(path)}: ${size} bytes, models of at most ${this.maxBytes} bytes travel between peers`)
      bytes = new Uint8Array(await readFile(path))
    } catch (err) {
      if (err instanceof RequesterError) throw err
      throw new RequesterError('unknown-model', `cannot read model file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    return await this.add(bytes, basename(path))
  }
}

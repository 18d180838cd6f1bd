/**
 * The custom model a tab loaded, kept across reloads: which model (its bytes stay in the tab's model
 * cache in Cache Storage, keyed by sha256, where TabPeer.addModel put them), the inputs the user
 * gave (JSON text up to the paste limit, tensors up to MAX_SAVED_INPUT_BYTES in all) and the last
 * run's outputs (up to MAX_SAVED_OUTPUT_BYTES). A record that fails its checks, or whose model
 * bytes are gone from the cache or no longer hash to its sha256, is dropped.
 */
import { sha256Hex } from '../core/hash.js'
import { storedResultProblem } from '../core/job-store.js'
import { MAX_PASTE_CHARS } from './input-parser-files.js'
import { deleteSaved, loadSaved, saveSaved } from './saved-store.js'
import { tabModelStore } from './cache-model-store.js'
import type { WireTensor } from '../core/tensor.js'

const KEY = 'custom-model'
/**
 * Input tensors kept in all (from files); larger ones are not kept and the file must be chosen
 * again. Small: IndexedDB serialises a value on the main thread (~100 ms for 2.4 MB on a busy
 * machine), which is the stall the input parser's worker exists to avoid.
 */
export const MAX_SAVED_INPUT_BYTES = 1024 * 1024
/** Outputs of the last run kept; larger ones are not kept. */
export const MAX_SAVED_OUTPUT_BYTES = 8 * 1024 * 1024
const MAX_INPUTS = 256
const MAX_NAME = 1024

export interface SavedInput {
  name: string
  json?: string
  file?: string
  tensor?: WireTensor
}

export interface SavedRun {
  taskId: string
  worker: string
  backend: string
  timings: { loadMs: number, inferenceMs: number, roundTripMs: number }
  outputs: WireTensor[]
}

export interface SavedModel {
  sha256: string
  name: string
  size: number
  inputs: SavedInput[]
  run?: SavedRun
}

const tensorBytes = (ts: readonly WireTensor[]): number => ts.reduce((n, t) => n + t.data.byteLength, 0)
const isName = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_NAME
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const tensorsProblem = (ts: unknown): string | undefined => storedResultProblem({ index: 0, outputs: ts, agreedBy: [], crossChecked: false })

/** Why a stored value is not a SavedModel, or undefined when it is one. */
export function savedModelProblem (value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object'
  const v = value as Record<string, unknown>
  if (typeof v.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(v.sha256)) return 'sha256 is not 64 hex digits'
  if (!isName(v.name) || !Number.isSafeInteger(v.size) || (v.size as number) < 0) return 'name or size is invalid'
  if (!Array.isArray(v.inputs) || v.inputs.length > MAX_INPUTS) return 'inputs is not a list'
  const tensors: WireTensor[] = []
  for (const i of v.inputs as unknown[]) {
    if (typeof i !== 'object' || i === null) return 'an input is not an object'
    const input = i as Record<string, unknown>
    if (!isName(input.name)) return 'an input name is invalid'
    if (input.json !== undefined && (typeof input.json !== 'string' || input.json.length > MAX_PASTE_CHARS)) return `input ${input.name}: json is invalid`
    if (input.file !== undefined && !isName(input.file)) return `input ${input.name}: file name is invalid`
    if (input.tensor !== undefined) tensors.push(input.tensor as WireTensor)
  }
  const inputProblem = tensorsProblem(tensors)
  if (inputProblem != null) return `inputs: ${inputProblem}`
  if (tensorBytes(tensors) > MAX_SAVED_INPUT_BYTES) return 'inputs are over the size kept'
  if (v.run !== undefined) {
    const r = v.run as Record<string, unknown>
    if (typeof r !== 'object' || r === null || !isName(r.taskId) || !isName(r.worker) || !isName(r.backend)) return 'run is invalid'
    const t = r.timings as Record<string, unknown> | undefined
    if (t == null || !isFiniteNumber(t.loadMs) || !isFiniteNumber(t.inferenceMs) || !isFiniteNumber(t.roundTripMs)) return 'run timings are invalid'
    const outputProblem = tensorsProblem(r.outputs)
    if (outputProblem != null) return `run: ${outputProblem}`
    if (tensorBytes(r.outputs as WireTensor[]) > MAX_SAVED_OUTPUT_BYTES) return 'run outputs are over the size kept'
  }
  return undefined
}

/** The record as kept: inputs' tensors over the budget and outputs over theirs are left out. */
export function boundedSavedModel (m: SavedModel): SavedModel {
  let budget = MAX_SAVED_INPUT_BYTES
  const inputs = m.inputs.map(i => {
    const json = i.json !== undefined && i.json.length <= MAX_PASTE_CHARS ? i.json : undefined
    const fits = i.tensor !== undefined && i.tensor.data.byteLength <= budget
    if (fits) budget -= i.tensor!.data.byteLength
    // Tensors are copied into tight buffers: a view never drags a larger buffer into the database.
    return { name: i.name, ...(json !== undefined ? { json } : {}), ...(i.file !== undefined ? { file: i.file } : {}), ...(fits ? { tensor: { ...i.tensor!, data: i.tensor!.data.slice() } } : {}) }
  })
  const run = m.run !== undefined && tensorBytes(m.run.outputs) <= MAX_SAVED_OUTPUT_BYTES
    ? { ...m.run, timings: { loadMs: m.run.timings.loadMs, inferenceMs: m.run.timings.inferenceMs, roundTripMs: m.run.timings.roundTripMs }, outputs: m.run.outputs.map(t => ({ ...t, data: t.data.slice() })) }
    : undefined
  return { sha256: m.sha256, name: m.name, size: m.size, inputs, ...(run !== undefined ? { run } : {}) }
}

export async function saveModelState (m: SavedModel): Promise<boolean> {
  return await saveSaved(KEY, boundedSavedModel(m))
}

export async function forgetModelState (): Promise<void> {
  await deleteSaved(KEY)
}

/** The saved model with its bytes from the tab's model cache, or undefined (nothing valid kept). */
export async function loadModelState (): Promise<{ saved: SavedModel, bytes: Uint8Array } | undefined> {
  const value = await loadSaved(KEY)
  if (value === undefined) return undefined
  if (savedModelProblem(value) !== undefined) {
    await forgetModelState()
    return undefined
  }
  const saved = value as SavedModel
  const bytes = await tabModelStore().get(saved.sha256).catch(() => undefined)
  if (bytes === undefined || await sha256Hex(bytes) !== saved.sha256) {
    await forgetModelState()
    return undefined
  }
  return { saved, bytes }
}

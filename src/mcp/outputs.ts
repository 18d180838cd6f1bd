/**
 * Model outputs as an agent gets them: each tensor as { name, dtype, dims, data } (the format
 * `npm run infer` writes), or, past MAX_TENSOR_VALUES values, a summary of it, so that one large
 * output (a detection map, an embedding matrix) cannot flood the agent's context.
 */
import { MAX_TENSOR_VALUES } from './limits.js'
import type { TaskOutput, TensorJson } from '../index.js'

const PREVIEW = 20

export interface TensorSummaryJson {
  name: string
  dtype: string
  dims: number[]
  truncated: true
  count: number
  /** The first values, as they would appear in data. */
  first: Array<number | string | boolean>
  min?: number
  max?: number
  /** Position of the largest value in the flattened tensor. */
  argmax?: number
}

export type OutputJson = TensorJson | TensorSummaryJson

/** One task's outcome for an agent: its outputs and the workers whose results agreed, or why it has none. */
export interface ResultJson {
  index: number
  outputs?: OutputJson[]
  agreed_by?: string[]
  error?: string
}

export function outputJson (t: TensorJson): OutputJson {
  if (t.data.length <= MAX_TENSOR_VALUES) return t
  const summary: TensorSummaryJson = { name: t.name, dtype: t.dtype, dims: t.dims, truncated: true, count: t.data.length, first: t.data.slice(0, PREVIEW) }
  let best = -Infinity
  for (const [i, raw] of t.data.entries()) {
    // 64-bit integers and non-finite floats are strings in TensorJson ("nan", "inf", "-12345678901234").
    const v = Number(raw === 'inf' ? Infinity : raw === '-inf' ? -Infinity : raw)
    if (Number.isNaN(v)) continue
    summary.min = Math.min(summary.min ?? v, v)
    summary.max = Math.max(summary.max ?? v, v)
    if (v > best || summary.argmax === undefined) { best = v; summary.argmax = i }
  }
  return summary
}

export function resultJson (out: TaskOutput): ResultJson {
  if (out.error != null) return { index: out.index, error: out.error }
  return { index: out.index, outputs: (out.outputs ?? []).map(outputJson), agreed_by: out.agreedBy }
}

/** A short line per output for the text an agent reads first: shape, and the argmax of a classifier's row. */
export function describeOutputs (outputs: readonly OutputJson[]): string {
  return outputs.map(o => {
    const shape = `${o.name} ${o.dtype} [${o.dims.join(', ')}]`
    if ('truncated' in o) return `${shape}: ${o.count} values, summarised (min ${o.min}, max ${o.max}, argmax ${o.argmax})`
    const isRow = o.dims.length === 1 || (o.dims.length === 2 && o.dims[0] === 1)
    const values = o.data.length <= 12 ? `[${o.data.join(', ')}]` : `${o.data.length} values`
    if (!isRow || o.data.length < 2) return `${shape}: ${values}`
    const numbers = o.data.map(Number)
    return `${shape}: ${values}, argmax ${numbers.indexOf(Math.max(...numbers))}`
  }).join('\n')
}

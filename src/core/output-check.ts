/**
 * A result is checked against the model's declared outputs before it counts as a vote: a worker
 * that answers with missing, extra or reshaped tensors is lying (or broken), and its result must
 * never reach a comparator or a user as if it were an answer.
 */
import type { WireTensor } from './tensor.js'

/** An input or output as the model declares it (catalog TensorSpec or ONNX ModelIo). */
export interface DeclaredTensor {
  name: string
  /** null: a type the protocol cannot carry (such an output can never be a valid result). */
  dtype: string | null
  /** Fixed sizes are numbers; symbolic or unknown ones strings. */
  dims: ReadonlyArray<number | string>
  /** false: the model does not say the rank (then dims are not checked). Default true. */
  rankKnown?: boolean
}

/** The model's interface, as far as results are checked against it. */
export interface DeclaredModel {
  inputs: readonly DeclaredTensor[]
  outputs: readonly DeclaredTensor[]
}

/**
 * Why `outputs` is not a well-formed answer to a request with `inputs` for `wanted` (all declared
 * outputs when empty), or undefined when it is. A symbolic dim ('batch', 'height') must have one
 * size throughout: the size the inputs gave it, else the same in every output.
 */
export function outputProblem (model: DeclaredModel, inputs: readonly WireTensor[], wanted: readonly string[], outputs: readonly WireTensor[]): string | undefined {
  const declared = model.outputs
  const expected = wanted.length > 0 ? wanted : declared.map(d => d.name)
  if (outputs.length !== expected.length) {
    return `expected ${expected.length} output(s) (${expected.join(', ')}), got ${outputs.length} (${outputs.map(o => o.name).join(', ')})`
  }
  const symbols = inputSymbols(model.inputs, inputs)
  for (const name of expected) {
    const spec = declared.find(d => d.name === name)
    if (spec == null) return `the model declares no output "${name}"`
    const got = outputs.filter(o => o.name === name)
    if (got.length !== 1) return `output "${name}" appears ${got.length} times`
    const t = got[0]
    if (spec.dtype == null || t.dtype !== spec.dtype) return `output "${name}" is ${t.dtype}, the model declares ${spec.dtype ?? 'a type the protocol cannot carry'}`
    if (spec.rankKnown === false) continue
    if (t.dims.length !== spec.dims.length) return `output "${name}" has shape [${t.dims.join(',')}], the model declares [${spec.dims.join(',')}]`
    for (let i = 0; i < t.dims.length; i++) {
      const d = spec.dims[i]
      if (typeof d === 'number' && d > 0 && t.dims[i] !== d) return `output "${name}" has shape [${t.dims.join(',')}], the model declares [${spec.dims.join(',')}]`
      if (typeof d === 'string' && d !== '' && d !== '?') {
        const seen = symbols.get(d)
        if (seen !== undefined && seen !== t.dims[i]) return `output "${name}" gives dim "${d}" size ${t.dims[i]}, another output ${seen}`
        symbols.set(d, t.dims[i])
      }
    }
  }
  return undefined
}

/** Sizes the task's inputs give the model's symbolic dims. */
function inputSymbols (declared: readonly DeclaredTensor[], inputs: readonly WireTensor[]): Map<string, number> {
  const symbols = new Map<string, number>()
  for (const spec of declared) {
    const t = inputs.find(i => i.name === spec.name)
    if (t == null || spec.rankKnown === false || t.dims.length !== spec.dims.length) continue
    spec.dims.forEach((d, i) => {
      if (typeof d === 'string' && d !== '' && d !== '?' && !symbols.has(d)) symbols.set(d, t.dims[i])
    })
  }
  return symbols
}

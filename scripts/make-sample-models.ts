// Writes a tiny "bring your own model" sample, so a user can try a custom model at once:
//
//   npx tsx scripts/make-sample-models.ts
//
// public/samples/models/add-mul.onnx          float32 a, b [batch, n] → sum, product, shape (int64)
// public/samples/models/add-mul.inputs.json   example inputs, keyed by input name (inputsFromJson)
//
// Then runs the model once with onnxruntime-node on those inputs and prints the outputs.
// Deterministic: two runs produce byte-identical files.

import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as ort from 'onnxruntime-node'
import { readModelInfo } from '../src/models/onnx-info.js'
import { inputsFromJson } from '../src/models/tensor-input.js'
import { tensorToJson } from '../src/models/tensor-output.js'
import { dynamicAddMul } from '../src/models/test-models.js'
import { fromTypedArray, toTypedArray } from '../src/core/tensor.js'
import type { DTypeName } from '../src/core/tensor.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const OUT_DIR = join(ROOT, 'public', 'samples', 'models')

const model = dynamicAddMul()
const inputs = {
  a: [[1, 2, 3], [4, 5, 6]],
  b: [[0.5, -2, 10], [0.25, 0, -1]]
}

mkdirSync(OUT_DIR, { recursive: true })
const modelPath = join(OUT_DIR, 'add-mul.onnx')
const inputsPath = join(OUT_DIR, 'add-mul.inputs.json')
writeFileSync(modelPath, model)
// One input per line: small enough to read and edit by hand.
writeFileSync(inputsPath, `{\n${Object.entries(inputs).map(([k, v]) => `  "${k}": ${JSON.stringify(v)}`).join(',\n')}\n}\n`)
console.log(`wrote ${relative(ROOT, modelPath)} (${model.byteLength} bytes) and ${relative(ROOT, inputsPath)}`)

// Check the pair the way the page will use it: inputs read against the model's own specs.
const info = readModelInfo(model)
const specs = info.inputs.map(io => {
  if (!io.supported) throw new Error(`unsupported input ${io.name}`)
  return io
})
const feeds = Object.fromEntries(inputsFromJson(specs, inputs).map(t => [t.name, new ort.Tensor(t.dtype, toTypedArray(t), t.dims)]))
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 })
const results = await session.run(feeds)
for (const io of info.outputs) {
  const out = results[io.name]!
  console.log(JSON.stringify(tensorToJson(fromTypedArray(io.name, out.type as DTypeName, [...out.dims], out.data as ArrayBufferView))))
}
await session.release()

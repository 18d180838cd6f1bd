/**
 * `npm run verify -- <export.jsonl> [--model m.onnx] [--inputs inputs.jsonl]`: checks a job's
 * export offline (README, "Verifying results"): every receipt's Ed25519 signature against the key
 * its worker's peer id embeds, every output digest recomputed from the exported outputs, that
 * every receipt names the exported job, model and requester, and the audit log's hash chain. With
 * `--model`, the model file's sha256; with `--inputs` (the file given to `npm run infer`, line i
 * being task i; needs `--model` for the input types), every task's input digest.
 *
 * Prints one line per check and then what failed. Exit status: 0 when every check passes,
 * 1 on any mismatch, 2 for bad arguments or unreadable files.
 */
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { peerIdFromString } from '@libp2p/peer-id'
import { ExportVerifier } from '../core/job-export.js'
import { tensorsSha256 } from '../core/receipt.js'
import { sha256Hex } from '../core/hash.js'
import { readModelInfo } from '../models/onnx-info.js'
import { inputsFromJson } from '../models/tensor-input.js'
import type { PublicKey } from '@libp2p/interface'
import type { SupportedIo } from '../models/onnx-info.js'

const USAGE = 'usage: verify <export.jsonl> [--model <file.onnx>] [--inputs <inputs.jsonl> (needs --model)]'

function fail (message: string): never {
  console.error(`verify: ${message}`)
  process.exit(2)
}

function args (): ReturnType<typeof parseOptions> {
  try {
    return parseOptions()
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`)
  }
}
function parseOptions () {
  return parseArgs({
    allowPositionals: true,
    options: { model: { type: 'string' }, inputs: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } }
  })
}
const { values, positionals } = args()
if (values.help) { console.log(USAGE); process.exit(0) }
if (positionals.length !== 1) fail(`give exactly one export file\n${USAGE}`)
if (values.inputs != null && values.model == null) fail(`--inputs needs --model: the model says each input's type\n${USAGE}`)

/** Every line of a text file, one at a time (exports can be large). */
function linesOf (path: string): AsyncIterable<string> {
  const stream = createReadStream(path, { encoding: 'utf8' })
  return createInterface({ input: stream, crlfDelay: Infinity })
}

let modelSha256: string | undefined
let specs: SupportedIo[] = []
if (values.model != null) {
  const bytes = new Uint8Array(await readFile(values.model).catch((err: Error) => fail(err.message)))
  modelSha256 = await sha256Hex(bytes)
  if (values.inputs != null) {
    try {
      specs = readModelInfo(bytes).inputs.filter((i): i is SupportedIo => i.supported)
    } catch (err) {
      fail(`${values.model}: ${(err as Error).message}`)
    }
  }
}

let inputs: Map<number, string> | undefined
if (values.inputs != null) {
  inputs = new Map()
  let task = 0
  try {
    for await (const line of linesOf(values.inputs)) {
      if (line.trim() === '') continue
      try {
        inputs.set(task, tensorsSha256(inputsFromJson(specs, line)))
      } catch (err) {
        fail(`${values.inputs}:${task + 1}: ${(err as Error).message}`)
      }
      task++
    }
  } catch (err) {
    fail((err as Error).message)
  }
}

// One key per worker: parsing a peer id is cheap, but an export has many results per worker.
const keys = new Map<string, PublicKey | undefined>()
function keyOf (peerId: string): PublicKey | undefined {
  if (!keys.has(peerId)) {
    let key: PublicKey | undefined
    try {
      key = peerIdFromString(peerId).publicKey
    } catch {
      key = undefined // not a peer id: its receipts fail
    }
    keys.set(peerId, key)
  }
  return keys.get(peerId)
}

const verifier = new ExportVerifier({
  verify: async (peerId, bytes, signature) => await (keyOf(peerId)?.verify(bytes, signature) ?? false),
  modelSha256,
  inputs
})
const exportFile = positionals[0]
try {
  for await (const line of linesOf(exportFile)) {
    if (line !== '') await verifier.push(line)
  }
} catch (err) {
  fail(`${exportFile}: ${(err as Error).message}`)
}
const report = verifier.finish()
for (const c of report.checks) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.summary}`)
for (const e of report.errors) console.log(`  ${e}`)
console.log(report.ok ? `verify: ${exportFile} checks out` : `verify: ${exportFile} does NOT check out`)
process.exit(report.ok ? 0 : 1)

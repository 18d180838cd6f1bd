/**
 * `npm run infer -- --relay <multiaddr> --model my.onnx --inputs inputs.jsonl [--out outputs.jsonl]`:
 * runs your own ONNX model over many inputs on the network's workers, as one batch job. Each line
 * of the inputs file is a JSON object keyed by input name (nested arrays or { dims, data }; 64-bit
 * integers as strings). Workers fetch the model from this process by sha256, verify and cache it.
 * Each output line is { index, outputs: [{ name, dtype, dims, data }], agreedBy }, in input order.
 *
 * Exit status: 0 when every line ran, 1 when some failed or the relay is unreachable, 2 for bad
 * arguments, an unreadable model or a malformed input line.
 */
import './polyfill.js'
import { readFile, writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { parseArgs } from 'node:util'
import { RELAY_OPTION, requiredRelays } from './relay-args.js'
import { randomUUID } from 'node:crypto'
import { startNodePeer } from './node-peer.js'
import { waitForWorkers } from './cli-workers.js'
import { JobRunner } from '../net/job-runner.js'
import { nodeVerification } from './local-inference.js'
import { VERIFICATION_OPTIONS, VERIFICATION_USAGE, verificationArgs } from './verification-args.js'
import { describeVerification } from '../core/verification.js'
import { jobExportLines } from '../core/job-export.js'
import { MemoryJobStore } from '../core/job-store.js'
import { Reputation } from '../core/reputation.js'
import { relativeComparator } from '../core/compare.js'
import { readModelInfo } from '../models/onnx-info.js'
import { inputsFromJson } from '../models/tensor-input.js'
import { tensorToJson } from '../models/tensor-output.js'
import type { ModelInfo, SupportedIo } from '../models/onnx-info.js'
import type { WireTensor } from '../core/tensor.js'

const USAGE = `usage: infer --relay <multiaddr> --model <file.onnx> --inputs <inputs.jsonl> [--out outputs.jsonl] [--export proofs.jsonl]
             [--replicas 1-3] [--workers N] [--tolerance 1e-4] ${VERIFICATION_USAGE}
  env: RELAY_ADDR`

const { values } = parseArgs({
  options: {
    relay: RELAY_OPTION,
    model: { type: 'string' },
    inputs: { type: 'string' },
    out: { type: 'string' },
    export: { type: 'string' },
    replicas: { type: 'string', default: '1' },
    workers: { type: 'string', default: '1' },
    tolerance: { type: 'string', default: '1e-4' },
    ...VERIFICATION_OPTIONS,
    'wait-timeout': { type: 'string', default: '30' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

function fail (message: string, code = 1): never {
  console.error(`infer: ${message}`)
  process.exit(code)
}

if (values.help) { console.log(USAGE); process.exit(0) }
const relays = requiredRelays(values.relay, (message) => fail(`${message}\n${USAGE}`, 2))
if (values.model == null || values.inputs == null) fail(`--model and --inputs are required\n${USAGE}`, 2)
const replicas = Number(values.replicas)
if (![1, 2, 3].includes(replicas)) fail('--replicas must be 1, 2 or 3', 2)
const verification = verificationArgs(values, (message) => fail(`${message}\n${USAGE}`, 2))

const bytes = new Uint8Array(await readFile(values.model).catch((err: Error) => fail(err.message, 2)))
let specs: SupportedIo[]
let info: ModelInfo
try {
  info = readModelInfo(bytes)
  const unsupported = info.inputs.filter(i => !i.supported)
  if (unsupported.length > 0) fail(`input ${unsupported.map(i => `${i.name} (${i.type})`).join(', ')} has a type the network cannot carry`, 2)
  specs = info.inputs.filter((i): i is SupportedIo => i.supported)
} catch (err) {
  fail(`${values.model}: ${(err as Error).message}`, 2)
}
const lines = (await readFile(values.inputs, 'utf8').catch((err: Error) => fail(err.message, 2))).split('\n').filter(l => l.trim() !== '')
if (lines.length === 0) fail(`${values.inputs} has no input lines`, 2)
// Every line is checked before anything is sent: a typo on line 9,000 should not cost a job.
const inputs: WireTensor[][] = lines.map((line, i) => {
  try {
    return inputsFromJson(specs, line)
  } catch (err) {
    fail(`${values.inputs}:${i + 1}: ${(err as Error).message}`, 2)
  }
})

const peer = await startNodePeer({ relays, work: false })
  .catch((err: Error) => fail(`cannot reach the relay ${relays.join(', ')}: ${err.message.split('\n')[0]}`))
const sha256 = await peer.models.add(bytes)
await waitForWorkers(peer, Number(values.workers), Number(values['wait-timeout'])).catch((err: Error) => fail(err.message))

const now = Date.now()
const store = new MemoryJobStore()
const meta = {
  jobId: randomUUID(),
  modelId: basename(values.model),
  model: { sha256, size: bytes.byteLength, name: basename(values.model) },
  datasetId: basename(values.inputs),
  taskCount: inputs.length,
  replicas,
  adaptive: false,
  state: 'queued' as const,
  createdAt: now,
  updatedAt: now
}
await store.putJob(meta)
const runner = new JobRunner({
  meta,
  source: { task: (i) => ({ inputs: inputs[i], outputNames: [] }) },
  tasks: peer.tasks,
  adverts: peer.discovery.table,
  store,
  compare: relativeComparator(Number(values.tolerance)),
  reputation: new Reputation(),
  requester: peer.node.peerId.toString(),
  declared: info,
  ...nodeVerification(peer, verification)
})
console.error(`infer: ${inputs.length} task(s) of ${meta.model.name} (sha256 ${sha256.slice(0, 12)}…), replicas ${replicas}`)
console.error(`infer: verification: ${describeVerification({ replicas, adaptive: false, ...verification })}`)
let last = 0
runner.addEventListener('progress', () => {
  if (Date.now() - last < 1000) return
  last = Date.now()
  const p = runner.progress
  console.error(`infer: ${p.done}/${p.total} done, ${p.inFlight} in flight, ${p.tasksPerSec.toFixed(1)} tasks/s`)
})
const t0 = Date.now()
const final = await runner.run()
const results = await store.getResults(meta.jobId)
const seconds = (Date.now() - t0) / 1000
const { spotChecks, convicted } = runner.progress
console.error(`infer: ${final.state}: ${results.length}/${inputs.length} in ${seconds.toFixed(1)} s; per peer ${JSON.stringify(runner.progress.perPeer)}; ${spotChecks.done} recomputed here, ${spotChecks.mismatches} caught a wrong result${convicted.length > 0 ? `, convicted ${convicted.join(', ')}` : ''}`)

const body = results.map(r => JSON.stringify({ index: r.index, outputs: r.outputs.map(tensorToJson), agreedBy: r.agreedBy })).join('\n') + '\n'
if (values.out != null) await writeFile(values.out, body)
else process.stdout.write(body)
console.error(`infer: audit head ${runner.auditHead ?? '—'}`)
if (values.export != null) {
  await writeFile(values.export, (await jobExportLines(store, final, peer.node.peerId.toString())).join('\n') + '\n')
  console.error(`infer: results, signed receipts and the audit log written to ${values.export} (check with npm run verify -- ${values.export} --model ${values.model} --inputs ${values.inputs})`)
}
await peer.stop()
process.exit(final.state === 'done' && results.length === inputs.length ? 0 : 1)

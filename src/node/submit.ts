/**
 * `npm run submit -- --model digits --dataset mnist-test --replicas 2 [--relay <multiaddr>]`:
 * runs a batch job across the network's workers from the command line, with a progress bar, and
 * prints the same summary as the page. Job state lives in a file store, so `--resume <jobId>`
 * continues an interrupted job; Ctrl-C stops cleanly and keeps what is done.
 */
import './polyfill.js'
import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { RELAY_OPTION, requiredRelays } from './relay-args.js'
import { randomUUID } from 'node:crypto'
import { startNodePeer } from './node-peer.js'
import { waitForWorkers, workerCount } from './cli-workers.js'
import { loadDigitDataset } from './datasets.js'
import { FileJobStore } from './file-job-store.js'
import { loadOrCreateKey } from './key-file.js'
import { JobRunner } from '../net/job-runner.js'
import { nodeVerification } from './local-inference.js'
import { VERIFICATION_OPTIONS, VERIFICATION_USAGE, verificationArgs } from './verification-args.js'
import { describeVerification } from '../core/verification.js'
import { jobExportLines } from '../core/job-export.js'
import { Reputation } from '../core/reputation.js'
import { argmaxComparator } from '../core/compare.js'
import { builtinModel, modelRef } from '../models/catalog.js'
import { digitJobSource, digitPredictions, digitsToCsv, digitsToJson, summarizeDigits } from '../models/digit-job.js'
import { DIGITS_OUTPUT_PROBS } from '../models/digits.js'
import type { JobMeta } from '../core/job-store.js'
import type { JobProgress } from '../net/job-runner.js'

const USAGE = `usage: submit --relay <multiaddr>... [--model digits] [--dataset mnist-test] [--replicas 1-3] [--adaptive]
              ${VERIFICATION_USAGE}
              [--limit N] [--workers N] [--out results.csv|results.json] [--export proofs.jsonl]
              [--resume <jobId>] [--store .data/jobs]
  env: RELAY_ADDR`

const { values } = parseArgs({
  options: {
    relay: RELAY_OPTION,
    model: { type: 'string', default: 'digits' },
    dataset: { type: 'string', default: 'mnist-test' },
    replicas: { type: 'string', default: '1' },
    adaptive: { type: 'boolean', default: false },
    ...VERIFICATION_OPTIONS,
    limit: { type: 'string' },
    workers: { type: 'string', default: '1' },
    'wait-timeout': { type: 'string', default: '30' },
    out: { type: 'string' },
    export: { type: 'string' },
    resume: { type: 'string' },
    store: { type: 'string', default: '.data/jobs' },
    key: { type: 'string', default: '.data/submit.key' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

function fail (message: string, code = 1): never {
  console.error(`submit: ${message}`)
  process.exit(code)
}

if (values.help) { console.log(USAGE); process.exit(0) }
const relays = requiredRelays(values.relay, (message) => fail(`${message}\n${USAGE}`, 2))
if (values.model !== 'digits') fail(`unknown model "${values.model}" (available: digits)`, 2)
const replicas = Number(values.replicas)
if (![1, 2, 3].includes(replicas)) fail('--replicas must be 1, 2 or 3', 2)
const minWorkers = Number(values.workers)
const verification = verificationArgs(values, (message) => fail(`${message}\n${USAGE}`, 2))

const store = new FileJobStore(values.store)
const dataset = await loadDigitDataset(values.dataset).catch((err: Error) => fail(err.message, 2))
const model = builtinModel('digits')
let meta: JobMeta
if (values.resume != null) {
  const found = await store.getJob(values.resume)
  if (found == null) fail(`no job ${values.resume} in ${values.store}`, 2)
  meta = found
  if (meta.state === 'done') console.error(`job ${meta.jobId} is already done; printing its results`)
} else {
  const taskCount = Math.min(dataset.count, values.limit != null ? Number(values.limit) : dataset.count)
  const now = Date.now()
  meta = { jobId: randomUUID(), modelId: model.id, model: modelRef(model), datasetId: dataset.id, taskCount, replicas, adaptive: values.adaptive, state: 'queued', createdAt: now, updatedAt: now }
  await store.putJob(meta)
}

const peer = await startNodePeer({ relays, work: false, privateKey: await loadOrCreateKey(values.key) })
  .catch((err: Error) => fail(`cannot reach the relay ${relays.join(', ')}: ${err.message.split('\n')[0]}`))
console.error(`submit ${peer.node.peerId.toString()} joined; job ${meta.jobId}: ${meta.taskCount} × ${meta.modelId} on ${meta.datasetId}, replicas ${meta.replicas}${meta.adaptive ? ' (adaptive)' : ''}`)
const verificationText = describeVerification({ replicas: meta.replicas, adaptive: meta.adaptive, ...verification })
console.error(`verification: ${verificationText}`)

if (meta.state !== 'done') await waitForWorkers(peer, minWorkers, Number(values['wait-timeout'])).catch((err: Error) => fail(err.message))

const reputation = new Reputation(await store.getReputation())
const runner = new JobRunner({
  meta,
  source: digitJobSource(dataset),
  tasks: peer.tasks,
  adverts: peer.discovery.table,
  store,
  compare: argmaxComparator(DIGITS_OUTPUT_PROBS),
  reputation,
  requester: peer.node.peerId.toString(),
  declared: model,
  ...nodeVerification(peer, verification)
})

const tty = process.stderr.isTTY
let lastLine = 0
function render (force = false): void {
  const now = Date.now()
  if (!force && now - lastLine < (tty ? 100 : 2000)) return
  lastLine = now
  const p: JobProgress = runner.progress
  const width = 30
  const frac = p.total > 0 ? p.done / p.total : 1
  const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░')
  const eta = Number.isFinite(p.etaSeconds) ? `${p.etaSeconds.toFixed(0)} s` : '—'
  const line = `${bar} ${p.done}/${p.total} ${(frac * 100).toFixed(1)}%  ${p.tasksPerSec.toFixed(0)} tasks/s  ETA ${eta}  in flight ${p.inFlight}  workers ${workerCount(peer)}  ${p.state}`
  if (tty) process.stderr.write(`\r${line}\x1b[K`)
  else console.error(line)
}
runner.addEventListener('progress', () => { render() })

let interrupted = false
const onSignal = (): void => {
  if (interrupted) return
  interrupted = true
  if (tty) process.stderr.write('\n')
  console.error(`interrupted: saving; resume with --resume ${meta.jobId}`)
  void runner.stop()
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)

const t0 = Date.now()
const final = meta.state === 'done' ? meta : await runner.run()
const progress = runner.progress
if (meta.state !== 'done') render(true)
if (tty) process.stderr.write('\n')

const rows = digitPredictions(await store.getResults(meta.jobId), dataset)
const summary = summarizeDigits(rows)
const seconds = (Date.now() - t0) / 1000
console.log(`job ${final.jobId}: ${final.state}${final.error != null ? ` (${final.error})` : ''}`)
console.log(`  tasks       ${rows.length}/${final.taskCount} in ${seconds.toFixed(1)} s (${(rows.length / Math.max(seconds, 1e-3)).toFixed(0)} tasks/s this run)`)
console.log(`  accuracy    ${(summary.accuracy * 100).toFixed(2)} % of ${summary.count}; ${(summary.heldOutAccuracy * 100).toFixed(2)} % of the ${summary.heldOutCount} digits never trained on`)
console.log(`  verified    ${summary.crossChecked} cross-checked (replicas ${final.replicas}${final.adaptive ? ', adaptive' : ''}), ${progress.disagreements} disagreement(s)${progress.disagreements > 0 ? ' — see reputation below' : ''}`)
console.log(`  checks      ${progress.spotChecks.done} recomputed here, ${progress.spotChecks.mismatches} caught a wrong result${progress.convicted.length > 0 ? `; convicted (all their votes discarded): ${progress.convicted.map(p => `…${p.slice(-10)}`).join(', ')}` : ''}`)
console.log(`  level       ${verificationText}`)
const total = Object.values(progress.perPeer).reduce((a, b) => a + b, 0)
for (const [peerId, n] of Object.entries(progress.perPeer).sort((a, b) => b[1] - a[1])) {
  const r = reputation.record(peerId)
  console.log(`  peer        …${peerId.slice(-10)} ran ${n} (${(n / Math.max(total, 1) * 100).toFixed(1)} %), reputation ${reputation.score(peerId).toFixed(2)} (✓${r.agreed} ✗${r.disagreed})`)
}
if (values.out != null) {
  await writeFile(values.out, values.out.endsWith('.csv') ? digitsToCsv(rows) : digitsToJson(rows, summary))
  console.log(`  results     written to ${values.out} (input order)`)
}
if (runner.auditHead != null) console.log(`  audit head  ${runner.auditHead} (the hash that pins this job's audit log)`)
if (values.export != null) {
  await writeFile(values.export, (await jobExportLines(store, final, peer.node.peerId.toString())).join('\n') + '\n')
  console.log(`  proofs      results, signed receipts and the audit log written to ${values.export} (check with npm run verify -- ${values.export})`)
}
await peer.stop()
process.exit(interrupted ? 130 : final.state === 'done' ? 0 : 1)

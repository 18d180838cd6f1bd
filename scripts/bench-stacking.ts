/**
 * Where batched inference pays (issue 12, item 1): per-task cost of B tasks run one by one vs B
 * tasks stacked into one run, for batch sizes B, on the digit model and the OCR recognition model
 * (10.8 MB, one 48×320 text line per task).
 *
 *   node --import tsx scripts/bench-stacking.ts [--rounds 5] [--sizes 1,2,4,8,16,32] [--models digits,ocr-rec] [--out FILE]
 *
 * Two paths, each with and without stacking, alternated in every round (the baseline is measured
 * in the same run, under the same load):
 *  - "process": the Node worker's path, an InferencePool child process reached over IPC
 *    (`execute` once per task vs `executeMany` once per batch: one message each way);
 *  - "in-process": OrtRunner in this process (`execute` per task vs `executeMany`), the run alone.
 * Prints ms per task, median over rounds with min–max, and the speed-up of stacking.
 */
import { writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { InferencePool } from '../src/node/inference-pool.js'
import { MODELS_DIR } from '../src/node/node-peer.js'
import { heldOutDigits } from '../src/node/mnist.js'
import { OrtRunner } from '../src/runtime/ort-runner.js'
import { builtinModel, modelRef } from '../src/models/catalog.js'
import { fromTypedArray } from '../src/core/tensor.js'
import { seededRandom } from '../src/core/random.js'
import { summarize } from './stats.js'
import type { BackendCandidate } from '../src/core/backend-picker.js'
import type { ModelRef, TaskRequest } from '../src/core/task-types.js'
import type { BatchOutcome } from '../src/core/work-queue.js'
import type { OrtModule } from '../src/runtime/ort-runner.js'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    sizes: { type: 'string', default: '1,2,4,8,16,32' },
    models: { type: 'string', default: 'digits,ocr-rec' },
    out: { type: 'string' }
  }
})
const ROUNDS = Number(values.rounds)
const SIZES = values.sizes.split(',').map(Number)
const MODELS = values.models.split(',') as Array<'digits' | 'ocr-rec'>
const COMMAND = `node --import tsx scripts/bench-stacking.ts --rounds ${ROUNDS} --sizes ${SIZES.join(',')} --models ${MODELS.join(',')}`

/** `count` different single-row tasks of the model. */
function tasks (id: 'digits' | 'ocr-rec', ref: ModelRef, count: number): TaskRequest[] {
  const random = seededRandom(42)
  const digits = heldOutDigits()
  return Array.from({ length: count }, (_, i) => {
    const input = id === 'digits'
      ? fromTypedArray('input', 'float32', [1, 1, 28, 28], digits[i % digits.length].pixels)
      : fromTypedArray('x', 'float32', [1, 3, 48, 320], Float32Array.from({ length: 3 * 48 * 320 }, () => random() * 2 - 1))
    return { taskId: `t${i}`, jobId: 'bench', model: ref, inputs: [input], timeoutMs: 0, outputNames: [] }
  })
}

interface Path {
  name: string
  one: (r: TaskRequest) => Promise<unknown>
  many: (rs: TaskRequest[]) => Promise<BatchOutcome[]>
}

function check (outcomes: BatchOutcome[]): void {
  const failed = outcomes.find(o => o instanceof Error)
  if (failed != null) throw failed
}

interface Row { model: string, path: string, batch: number, aloneMs: number[], stackedMs: number[] }

async function measure (id: 'digits' | 'ocr-rec', paths: Path[]): Promise<Row[]> {
  const ref = modelRef(builtinModel(id))
  const all = tasks(id, ref, Math.max(...SIZES))
  const rows: Row[] = []
  for (const path of paths) {
    // Warm: session created, first stacked run checked against single runs.
    await path.one(all[0])
    check(await path.many(all.slice(0, Math.max(2, SIZES[0]))))
    check(await path.many(all))
    for (const b of SIZES) rows.push({ model: id, path: path.name, batch: b, aloneMs: [], stackedMs: [] })
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const path of paths) {
      for (const b of SIZES) {
        const row = rows.find(r => r.path === path.name && r.batch === b)!
        const batch = all.slice(0, b)
        // Alternate which variant goes first, so a drift in load hits both alike.
        const variants = [
          async () => { const t = performance.now(); for (const r of batch) await path.one(r); row.aloneMs.push((performance.now() - t) / b) },
          async () => { const t = performance.now(); check(await path.many(batch)); row.stackedMs.push((performance.now() - t) / b) }
        ]
        if (round % 2 === 1) variants.reverse()
        for (const v of variants) await v()
      }
    }
  }
  return rows
}

const spread = (xs: number[]): string => {
  const s = summarize(xs)
  return `${s.p50.toFixed(3)} (${s.min.toFixed(3)}–${s.max.toFixed(3)})`
}

async function main (): Promise<void> {
  console.log(`P2P AI Agents stacking bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n${COMMAND}\n`)
  const bytes = new Map(MODELS.map(id => { const m = builtinModel(id); return [m.sha256, new Uint8Array(readFileSync(MODELS_DIR + m.file))] }))
  const fetchModel = async (ref: ModelRef): Promise<Uint8Array> => bytes.get(ref.sha256)!
  const pool = new InferencePool({ size: 1, threads: [1], fetchModel })
  const stop = (): void => { pool.stop() }
  process.once('SIGINT', () => { stop(); process.exit(130) })
  process.once('SIGTERM', () => { stop(); process.exit(143) })
  const results: Row[] = []
  try {
    await pool.warm()
    const candidate: BackendCandidate = pool.candidates[0]
    const runner = new OrtRunner(ort as unknown as OrtModule, fetchModel, { backend: 'in-process', threads: 1, sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 } })
    const paths: Path[] = [
      { name: 'process', one: async (r) => await candidate.execute(r, 'bench'), many: async (rs) => await candidate.executeMany!(rs, 'bench') },
      { name: 'in-process', one: async (r) => await runner.execute(r), many: async (rs) => await runner.executeMany(rs) }
    ]
    for (const id of MODELS) results.push(...await measure(id, paths))
  } finally {
    stop()
  }
  console.log(`ms per task, median over ${ROUNDS} rounds (min–max); one by one = B runs (B IPC round trips on "process"), stacked = one executeMany\n`)
  console.log('model    path        B   one by one ms/task       stacked ms/task          speed-up')
  for (const r of results) {
    const a = summarize(r.aloneMs).p50
    const s = summarize(r.stackedMs).p50
    console.log(`${r.model.padEnd(8)} ${r.path.padEnd(11)} ${String(r.batch).padStart(2)}   ${spread(r.aloneMs).padEnd(24)} ${spread(r.stackedMs).padEnd(24)} ${(a / s).toFixed(2)}×`)
  }
  if (values.out != null) await writeFile(values.out, JSON.stringify({ command: COMMAND, results }, null, 2))
}

main().then(() => { process.exit(0) }, (err: unknown) => { console.error(err); process.exit(1) })

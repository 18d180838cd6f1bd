/**
 * Batch OCR over many pages through the batch machinery: one job runs text detection on every
 * page, a second recognises every detected line (in batches of lines), each dispatched by the
 * JobRunner over whatever workers advertise, with progress, re-queues and optional replicas.
 * Pre- and post-processing stay here, on the requester; peers only run the two ONNX models.
 * Each decided result is reduced as it is stored (probability map → boxes and crops, rec output
 * → text), so a long batch holds line crops rather than every page's probability map.
 */
import { JobRunner } from './job-runner.js'
import type { JobVerification } from './job-runner.js'
import { MemoryJobStore } from '../core/job-store.js'
import { relativeComparator } from '../core/compare.js'
import { builtinModel, modelRef } from '../models/catalog.js'
import { detInput } from '../ocr/detect.js'
import { detectLines, pageResult, readRecOutput, recognizeBatches } from '../ocr/pipeline.js'
import { REC_OUTPUTS } from '../ocr/recognize.js'
import type { JobMeta, StoredResult } from '../core/job-store.js'
import type { Reputation } from '../core/reputation.js'
import type { AdvertTable } from '../core/discovery/table.js'
import type { TaskProtocol } from './task-service.js'
import type { JobProgress, LocalWorker } from './job-runner.js'
import type { RgbaImage } from '../ocr/image.js'
import type { DetInput } from '../ocr/detect.js'
import type { DetectedLine, OcrOptions, OcrResult } from '../ocr/pipeline.js'
import type { Recognized } from '../ocr/recognize.js'
import type { CatalogModel } from '../models/catalog.js'

export interface OcrBatchOptions {
  tasks: TaskProtocol
  adverts: AdvertTable
  reputation: Reputation
  local?: LocalWorker
  /** Results from distinct workers that must agree per task (1–3). */
  replicas?: number
  /** Spot checks and how workers are told apart, as for any job (see JobRunner). */
  verify?: JobVerification
  ocr?: OcrOptions
  onProgress?: (p: OcrBatchProgress) => void
  /** Stops the batch: the phase running is stopped and the call rejects with the signal's reason (an AbortError). */
  signal?: AbortSignal
}

export interface OcrBatchProgress {
  phase: 'detect' | 'recognize' | 'done'
  pages: number
  /** Lines found so far (all of them once detection finished). */
  lines: number
  job: JobProgress
}

export interface OcrPageResult extends OcrResult {
  /** Set when detection failed on this page (after the scheduler's retries). */
  error?: string
}

/** Runs a phase's job, stopped when `signal` aborts (then rejects with its reason). */
async function runUnlessAborted (runner: JobRunner, signal: AbortSignal | undefined): Promise<void> {
  const stop = (): void => { runner.stop().catch(() => {}) }
  signal?.addEventListener('abort', stop, { once: true })
  try {
    await runner.run()
  } finally {
    signal?.removeEventListener('abort', stop)
  }
  signal?.throwIfAborted()
}

/** A memory store that reduces each decided result with `reduce` and keeps no output tensors. */
class ReducingStore extends MemoryJobStore {
  constructor (private readonly reduce: (r: StoredResult) => void) { super() }

  override async putResults (jobId: string, results: StoredResult[]): Promise<void> {
    for (const r of results) this.reduce(r)
    await super.putResults(jobId, results.map(r => ({ ...r, outputs: [] })))
  }
}

function jobMeta (model: CatalogModel, label: string, taskCount: number, replicas: number): JobMeta {
  const now = Date.now()
  return {
    jobId: `${label}-${now.toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
    modelId: model.id,
    model: modelRef(model),
    datasetId: label,
    taskCount,
    replicas,
    adaptive: false,
    state: 'queued',
    createdAt: now,
    updatedAt: now
  }
}

export async function runOcrBatch (pages: readonly RgbaImage[], dict: readonly string[], o: OcrBatchOptions): Promise<OcrPageResult[]> {
  const replicas = o.replicas ?? 1
  const maxSide = o.ocr?.maxSide
  const batchSize = o.ocr?.batchSize ?? 4
  const minScore = o.ocr?.minScore ?? 0.5
  // Detection and recognition outputs are floats from possibly different backends: compare within 1e-3.
  const compare = relativeComparator(1e-3)
  const common = { tasks: o.tasks, adverts: o.adverts, reputation: o.reputation, local: o.local, compare, ...o.verify }
  let lineCount = 0

  // Phase 1: detection, one task per page.
  const dets: Array<DetInput | undefined> = new Array(pages.length)
  const detected: Array<DetectedLine[] | undefined> = new Array(pages.length)
  const detInputOf = (i: number): DetInput => (dets[i] ??= detInput(pages[i], { maxSide }))
  const detStore = new ReducingStore(r => {
    // A page decided again (its first result rested on a convicted liar) replaces its lines.
    lineCount -= detected[r.index]?.length ?? 0
    detected[r.index] = detectLines(pages[r.index], detInputOf(r.index), r.outputs[0], o.ocr?.det)
    lineCount += detected[r.index]!.length
    dets[r.index] = undefined // the page's input tensor is no longer needed
  })
  const det = builtinModel('ocr-det')
  const detMeta = jobMeta(det, 'ocr-det', pages.length, replicas)
  await detStore.putJob(detMeta)
  o.signal?.throwIfAborted()
  const detRunner = new JobRunner({ ...common, meta: detMeta, store: detStore, declared: det, source: { task: (i) => ({ inputs: [detInputOf(i).tensor], outputNames: [] }) } })
  detRunner.addEventListener('progress', () => { o.onProgress?.({ phase: 'detect', pages: pages.length, lines: lineCount, job: detRunner.progress }) })
  await runUnlessAborted(detRunner, o.signal)

  // Phase 2: recognition of every line, batched across pages.
  const owners: Array<{ page: number, line: number }> = []
  const crops: RgbaImage[] = []
  detected.forEach((lines, page) => lines?.forEach((l, line) => { owners.push({ page, line }); crops.push(l.crop) }))
  const batches = recognizeBatches(crops, batchSize, o.ocr?.rec)
  const texts: Array<Recognized | undefined> = new Array(crops.length)
  const recStore = new ReducingStore(r => {
    const batch = batches[r.index]
    readRecOutput(r.outputs, dict).forEach((t, k) => { texts[batch.indices[k]] = t })
  })
  const rec = builtinModel('ocr-rec')
  const recMeta = jobMeta(rec, 'ocr-rec', batches.length, replicas)
  await recStore.putJob(recMeta)
  const recRunner = new JobRunner({ ...common, meta: recMeta, store: recStore, declared: rec, source: { task: (j) => ({ inputs: [batches[j].tensor], outputNames: REC_OUTPUTS }) } })
  recRunner.addEventListener('progress', () => { o.onProgress?.({ phase: 'recognize', pages: pages.length, lines: lineCount, job: recRunner.progress }) })
  if (batches.length > 0) await runUnlessAborted(recRunner, o.signal)
  o.onProgress?.({ phase: 'done', pages: pages.length, lines: lineCount, job: recRunner.progress })

  const perPage: Array<Array<Recognized | undefined>> = pages.map(() => [])
  owners.forEach(({ page, line }, i) => { perPage[page][line] = texts[i] })
  return pages.map((_, page) => ({
    ...pageResult(detected[page] ?? [], perPage[page], minScore),
    error: detected[page] == null ? 'text detection failed on this page (no worker could run it)' : undefined
  }))
}

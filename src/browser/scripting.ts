/**
 * `window.p2pAgents`: a small scripting API on the page for automation (the bench, and anyone who
 * wants to drive a tab from devtools). It calls the same TabPeer the UI uses.
 */
import { fromTypedArray, toTypedArray } from '../core/tensor.js'
import { Reputation } from '../core/reputation.js'
import { builtinModel, modelRef } from '../models/catalog.js'
import { DIGITS_INPUT, DIGITS_OUTPUT_PROBS } from '../models/digits.js'
import { runOcrBatch } from '../net/ocr-job.js'
import { LOCAL_PEER } from '../net/job-runner.js'
import { parseDictionary } from '../ocr/recognize.js'
import { decodeImage } from './images.js'
import type { TabPeer, TaskRun, Target } from './tab-peer.js'
import type { DTypeName } from '../core/tensor.js'
import type { BackendChoice } from '../core/backend-picker.js'
import type { ModelEvent } from '../core/model-store.js'
import type { ConnectionStats } from '../net/direct-connections.js'

/** A tensor as JSON can carry it: raw little-endian bytes as numbers. */
export interface PlainTensor { name: string, dtype: DTypeName, dims: number[], bytes: number[] }

export interface ModelRunTiming {
  worker: string
  backend: string
  roundTripMs: number
  queueMs: number
  loadMs: number
  inferenceMs: number
  totalMs: number
}

export interface OcrRunSummary {
  seconds: number
  texts: string[]
  /** Tasks per peer (detection and recognition jobs together). */
  perPeer: Record<string, number>
}

/** A model this tab fetched from a peer, verified and cached. */
export interface ModelFetchRecord {
  sha256: string
  name: string
  /** Peer it came from. */
  from: string
  size: number
  /** Transfer start → verified and cached, ms. */
  ms: number
}

export interface DigitTaskTiming {
  roundTripMs: number
  networkMs: number
  queueMs: number
  loadMs: number
  inferenceMs: number
  totalMs: number
  probs: number[]
}

export interface ScriptingApi {
  peerId(): string
  /** Page open → ready to work, ms (undefined until ready). */
  readyMs(): number | undefined
  /** Durations of the direct WebRTC dials this tab made (on demand, when it first sent a peer work), ms. */
  dialTimes(): number[]
  /** This tab's direct-connection counters: dials made, dials failed, their durations, most held at once. */
  connectionStats(): ConnectionStats | undefined
  /** Runs the digit model on a 28×28 input `count` times, one after another, and returns each task's timings. */
  runDigits(pixels: number[], count: number, target: Target): Promise<DigitTaskTiming[]>
  /**
   * Runs a model `count` times one after another: a built-in by id, or model bytes this tab adds
   * to its cache (peers fetch them from here; a Uint8Array saves the copy when called in the page).
   * Returns each run's timings and the last outputs.
   */
  runModel(model: { builtin: string } | { bytes: number[] | Uint8Array, name: string }, inputs: PlainTensor[], count: number, target: Target): Promise<{ runs: ModelRunTiming[], outputs: PlainTensor[] }>
  /** Reads the app's sample OCR pages (by file name, repeats allowed) through the batch machinery. */
  ocrSamples(files: string[], options?: { replicas?: number, includeSelf?: boolean }): Promise<OcrRunSummary>
  /** The backend this tab measured fastest per model sha256. */
  backendChoices(): Record<string, BackendChoice>
  /** Models this tab fetched from peers since it opened, oldest first. */
  modelFetches(): ModelFetchRecord[]
}

declare global {
  interface Window { p2pAgents: ScriptingApi }
}

export function scriptingApi (peer: () => TabPeer | undefined): ScriptingApi {
  const need = (): TabPeer => {
    const p = peer()
    if (p == null) throw new Error('this tab is not ready yet')
    return p
  }
  let counter = 0
  // The tab is created once the page has its config: listen for its model fetches from then on
  // (a fetch only happens for a task, after the tab is ready).
  const fetches: ModelFetchRecord[] = []
  const watch = setInterval(() => {
    const tab = peer()
    if (tab == null) return
    clearInterval(watch)
    tab.addEventListener('model', (evt) => {
      const e = (evt as CustomEvent<ModelEvent>).detail
      if (e.type === 'cached') fetches.push({ sha256: e.ref.sha256, name: e.ref.name, from: e.from, size: e.ref.size, ms: e.ms })
    })
  }, 20)
  return {
    peerId: () => peer()?.peerId ?? '',
    readyMs: () => peer()?.readyMs,
    dialTimes: () => [...(peer()?.node?.services.connections.stats.dialTimes ?? [])],
    connectionStats: () => {
      const stats = peer()?.node?.services.connections.stats
      return stats == null ? undefined : { ...stats, dialTimes: [...stats.dialTimes] }
    },
    async runDigits (pixels, count, target) {
      const tab = need()
      const model = modelRef(builtinModel('digits'))
      const input = Float32Array.from(pixels)
      const out: DigitTaskTiming[] = []
      for (let i = 0; i < count; i++) {
        const run = await tab.run({
          taskId: `script-${Date.now().toString(36)}-${++counter}`,
          jobId: 'script',
          model,
          inputs: [fromTypedArray(DIGITS_INPUT, 'float32', [1, 1, 28, 28], input)],
          timeoutMs: 30_000,
          outputNames: [DIGITS_OUTPUT_PROBS]
        }, target)
        const probs = run.result.outputs.find(o => o.name === DIGITS_OUTPUT_PROBS)
        out.push({ roundTripMs: run.roundTripMs, networkMs: run.networkMs, ...run.result.timings, probs: probs != null ? Array.from(toTypedArray(probs) as Float32Array) : [] })
      }
      return out
    },
    async runModel (model, inputs, count, target) {
      const tab = need()
      const ref = 'builtin' in model ? modelRef(builtinModel(model.builtin)) : await tab.addModel(Uint8Array.from(model.bytes), model.name)
      const wire = inputs.map(t => ({ name: t.name, dtype: t.dtype, dims: t.dims, data: Uint8Array.from(t.bytes) }))
      const runs: ModelRunTiming[] = []
      let last: TaskRun | undefined
      for (let i = 0; i < count; i++) {
        last = await tab.run({ taskId: `script-${Date.now().toString(36)}-${++counter}`, jobId: 'script', model: ref, inputs: wire, timeoutMs: 120_000, outputNames: [] }, target)
        runs.push({ worker: last.worker, backend: last.result.backend, roundTripMs: last.roundTripMs, ...last.result.timings })
      }
      // Only the last run's outputs go back (an OCR output is megabytes as a number array).
      const outputs = (last?.result.outputs ?? []).map(o => ({ name: o.name, dtype: o.dtype, dims: o.dims, bytes: Array.from(o.data) }))
      return { runs, outputs }
    },
    async ocrSamples (files, options = {}) {
      const tab = need()
      const get = async (path: string): Promise<Response> => {
        const res = await fetch(new URL(path, location.href))
        if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`)
        return res
      }
      const dict = parseDictionary(await (await get('models/ocr-keys.txt')).text())
      const pages = await Promise.all(files.map(async f => await decodeImage(await (await get(`samples/ocr/${f}`)).blob())))
      // Contributions of each job (detection, recognition), summed per peer at the end.
      const perJob: Partial<Record<'detect' | 'recognize', Record<string, number>>> = {}
      const t0 = performance.now()
      const results = await runOcrBatch(pages, dict, {
        tasks: tab.tasks,
        adverts: tab.adverts,
        reputation: new Reputation(),
        replicas: options.replicas,
        local: options.includeSelf === true ? { slots: 1, run: async (request) => await tab.queue.submit(request, LOCAL_PEER) } : undefined,
        onProgress: (p) => { if (p.phase !== 'done') perJob[p.phase] = p.job.perPeer }
      })
      const seconds = (performance.now() - t0) / 1000
      const perPeer: Record<string, number> = {}
      for (const counts of Object.values(perJob)) for (const [peer, n] of Object.entries(counts)) perPeer[peer] = (perPeer[peer] ?? 0) + n
      return { seconds, texts: results.map(r => r.error ?? r.text), perPeer }
    },
    backendChoices: () => Object.fromEntries(peer()?.picker?.choices ?? []),
    modelFetches: () => fetches.map(f => ({ ...f }))
  }
}

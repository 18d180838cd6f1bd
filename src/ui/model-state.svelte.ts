/**
 * The "your own model" panel's state and intents: a dropped .onnx is read here (names, types,
 * shapes), inputs come from JSON, .json/.npy files or images, parsed off the main thread (the input
 * parser's Web Worker), and the model runs on a peer, which fetches it from this tab by sha256.
 * The loaded model, its inputs and the last run's outputs are kept across reloads (saved-model.ts).
 */
import { readModelInfo } from '../models/onnx-info.js'
import { imageLayout } from '../models/tensor-input.js'
import { summarizeTensor, tensorToJson, tensorToNpy } from '../models/tensor-output.js'
import { parseTensorFile, parseTensorText, pastedTooLarge } from '../browser/input-parser.js'
import { loadModelState, saveModelState } from '../browser/saved-model.js'
import { tabModelStore } from '../browser/cache-model-store.js'
import { toTaskError } from '../core/errors.js'
import { describeTaskError } from '../core/error-text.js'
import { sha256Hex } from '../core/hash.js'
import { DEFAULT_MAX_MODEL_BYTES } from '../core/model-transfer/codec.js'
import type { ErrorText } from '../core/error-text.js'
import type { ModelInfo, SupportedIo } from '../models/onnx-info.js'
import type { TensorSummary } from '../models/tensor-output.js'
import type { ModelRef } from '../core/task-types.js'
import type { WireTensor } from '../core/tensor.js'
import type { TabPeer, Target } from '../browser/tab-peer.js'
import type { SavedInput, SavedRun } from '../browser/saved-model.js'

export interface InputView {
  spec: SupportedIo
  /** Image-shaped inputs also take an image file. */
  image: boolean
  /** JSON typed by the user (or loaded from an example file), at most MAX_PASTE_CHARS. */
  json: string
  /** A .json, .npy or image file that replaced the JSON, by name. */
  file?: string
  tensor?: WireTensor
  /** The parser is still reading this input. */
  parsing: boolean
  error?: string
}

export interface ModelRunView extends SavedRun {
  summaries: TensorSummary[]
}

export const SAMPLE_MODEL = { file: 'add-mul.onnx', inputs: 'add-mul.inputs.json' }

export class ModelState {
  name = $state('')
  size = $state(0)
  info = $state.raw<ModelInfo | undefined>(undefined)
  inputs = $state.raw<InputView[]>([])
  running = $state(false)
  run = $state.raw<ModelRunView | undefined>(undefined)
  /** Why the model itself cannot run (not loadable, unsupported inputs): Run stays disabled. */
  error = $state('')
  /** Why the last run failed, in words with the peer at fault; cleared when an input changes or a run starts. */
  runError = $state.raw<ErrorText | undefined>(undefined)
  private bytes?: Uint8Array
  private sha256?: string
  private ref?: ModelRef
  private counter = 0
  /** Per input, the latest parse asked for: an older answer arriving late is dropped. */
  private readonly parses = new Map<string, number>()
  private readonly tab: () => TabPeer | undefined

  constructor (tab: () => TabPeer | undefined) {
    this.tab = tab
    // Nothing kept, or IndexedDB unavailable: the panel starts empty.
    this.restore().catch(() => {})
  }

  async loadFile (file: File): Promise<void> {
    await this.load(file.name, new Uint8Array(await file.arrayBuffer()))
  }

  /** The sample model that ships with the app, with its example inputs filled in. */
  async loadSample (): Promise<void> {
    const base = new URL('samples/models/', location.href)
    const [model, inputs] = await Promise.all([fetch(new URL(SAMPLE_MODEL.file, base)), fetch(new URL(SAMPLE_MODEL.inputs, base))])
    if (!model.ok || !inputs.ok) {
      this.error = `sample model: HTTP ${model.ok ? inputs.status : model.status}`
      return
    }
    await this.load(SAMPLE_MODEL.file, new Uint8Array(await model.arrayBuffer()))
    const example = await inputs.json() as Record<string, unknown>
    await Promise.all(this.inputs.filter(v => example[v.spec.name] != null).map(async v => { await this.setJson(v.spec.name, JSON.stringify(example[v.spec.name])) }))
  }

  private async load (name: string, bytes: Uint8Array, saved?: { inputs: SavedInput[], run?: SavedRun }): Promise<void> {
    this.error = ''
    this.runError = undefined
    this.run = undefined
    this.info = undefined
    this.inputs = []
    this.ref = undefined
    this.bytes = undefined
    this.sha256 = undefined
    this.parses.clear()
    if (bytes.byteLength > DEFAULT_MAX_MODEL_BYTES) {
      this.error = `${name} is ${(bytes.byteLength / 1024 / 1024).toFixed(0)} MB; peers fetch models up to ${DEFAULT_MAX_MODEL_BYTES / 1024 / 1024} MB`
      return
    }
    let info: ModelInfo
    try {
      info = readModelInfo(bytes)
    } catch (err) {
      this.error = `${name}: ${toTaskError(err).message}`
      return
    }
    this.name = name
    this.size = bytes.byteLength
    this.info = info
    this.bytes = bytes
    const unsupported = info.inputs.filter(i => !i.supported)
    if (unsupported.length > 0) this.error = `input ${unsupported.map(i => `${i.name} (${i.type})`).join(', ')} has a type the network cannot carry`
    else if (info.externalData) this.error = 'this model keeps weights in a separate file; export it as a single .onnx'
    this.inputs = info.inputs.filter((i): i is SupportedIo => i.supported).map(spec => {
      const kept = saved?.inputs.find(s => s.name === spec.name)
      const tensor = kept?.tensor?.dtype === spec.dtype ? kept.tensor : undefined
      const lost = kept?.file != null && tensor == null ? `${kept.file} was too large to keep across the reload: choose it again` : undefined
      return { spec, image: imageLayout(spec) != null, json: kept?.json ?? '', file: kept?.file, tensor, parsing: false, error: lost }
    })
    if (saved?.run != null) this.run = { ...saved.run, summaries: saved.run.outputs.map(summarizeTensor) }
    this.sha256 = await sha256Hex(bytes)
    if (saved == null) {
      // In the tab's model cache now, so a reload finds the bytes (and peers can fetch them).
      await tabModelStore().put(this.sha256, bytes).catch(() => {})
      this.save()
    }
  }

  /** A model kept before the last reload, with its inputs and last outputs. */
  private async restore (): Promise<void> {
    const kept = await loadModelState()
    // A model the user chose meanwhile wins.
    if (kept == null || this.bytes != null) return
    await this.load(kept.saved.name, kept.bytes, kept.saved)
    // Inputs kept only as JSON text are parsed again.
    await Promise.all(this.inputs.filter(v => v.tensor == null && v.json.trim() !== '').map(async v => { await this.setJson(v.spec.name, v.json) }))
  }

  private save (): void {
    if (this.sha256 == null) return
    const run = this.run
    void saveModelState({
      sha256: this.sha256,
      name: this.name,
      size: this.size,
      inputs: this.inputs.map(v => ({ name: v.spec.name, json: v.json, file: v.file, tensor: v.tensor })),
      run: run == null ? undefined : { taskId: run.taskId, worker: run.worker, backend: run.backend, timings: run.timings, outputs: run.outputs }
    })
  }

  private update (name: string, patch: Partial<InputView>): void {
    this.inputs = this.inputs.map(v => v.spec.name === name ? { ...v, ...patch } : v)
  }

  /** Asks the parser for an input's tensor; the last call per input wins, and the old run error goes. */
  private async parse (name: string, patch: Partial<InputView>, work: (spec: SupportedIo) => Promise<WireTensor>): Promise<void> {
    const view = this.inputs.find(v => v.spec.name === name)
    if (view == null) return
    const n = (this.parses.get(name) ?? 0) + 1
    this.parses.set(name, n)
    this.runError = undefined
    this.update(name, { ...patch, tensor: undefined, error: undefined, parsing: true })
    let result: Partial<InputView>
    try {
      result = { tensor: await work(view.spec), error: undefined }
    } catch (err) {
      result = { tensor: undefined, error: toTaskError(err).message }
    }
    if (this.parses.get(name) !== n) return
    this.update(name, { ...result, parsing: false })
    this.save()
  }

  /** JSON typed or pasted; text over the paste limit is refused with the limit and what to do instead. */
  async setJson (name: string, json: string): Promise<void> {
    const tooLarge = pastedTooLarge(json.length)
    if (tooLarge != null) {
      this.parses.set(name, (this.parses.get(name) ?? 0) + 1)
      this.runError = undefined
      this.update(name, { json: '', file: undefined, tensor: undefined, parsing: false, error: tooLarge })
      return
    }
    if (json.trim() === '') {
      this.parses.set(name, (this.parses.get(name) ?? 0) + 1)
      this.runError = undefined
      this.update(name, { json, file: undefined, tensor: undefined, parsing: false, error: undefined })
      this.save()
      return
    }
    await this.parse(name, { json, file: undefined }, async (spec) => await parseTensorText(spec, json))
  }

  /** Text pasted over the limit: it never reaches the textarea, the input says why. */
  refusePaste (name: string, chars: number): void {
    const tooLarge = pastedTooLarge(chars)
    if (tooLarge == null) return
    this.runError = undefined
    this.update(name, { error: tooLarge })
  }

  /** A .json, .npy or image file, read and parsed off the main thread. */
  async setFile (name: string, file: File): Promise<void> {
    await this.parse(name, { json: '', file: file.name }, async (spec) => await parseTensorFile(spec, file))
  }

  get ready (): boolean {
    return this.bytes != null && this.inputs.length > 0 && this.inputs.every(v => v.tensor != null && !v.parsing) && this.error === ''
  }

  async execute (target: Target): Promise<void> {
    const tab = this.tab()
    if (tab == null || this.bytes == null || !this.ready || this.running) return
    this.running = true
    this.runError = undefined
    const inputs = this.inputs.map(v => v.tensor!)
    try {
      // Registered with this tab's model cache, so the worker can fetch it from here by sha256.
      this.ref ??= await tab.addModel(this.bytes, this.name)
      const taskId = `model-${Date.now().toString(36)}-${++this.counter}`
      const run = await tab.run({ taskId, jobId: 'custom', model: this.ref, inputs, timeoutMs: 120_000, outputNames: [] }, target)
      const outputs = run.result.outputs
      this.run = {
        taskId,
        outputs,
        summaries: outputs.map(summarizeTensor),
        worker: run.worker,
        backend: run.result.backend,
        timings: { loadMs: run.result.timings.loadMs, inferenceMs: run.result.timings.inferenceMs, roundTripMs: run.roundTripMs }
      }
      this.save()
    } catch (err) {
      const e = toTaskError(err)
      const peer = e.peer ?? (target.kind === 'self' ? 'self' : target.kind === 'peer' ? target.peerId : undefined)
      this.runError = describeTaskError(e, peer, { inputs })
    } finally {
      this.running = false
    }
  }

  outputsJson (): string {
    return JSON.stringify({ model: this.name, sha256: this.sha256, outputs: this.run?.outputs.map(tensorToJson) ?? [] }, null, 2)
  }

  outputNpy (name: string): Uint8Array {
    const t = this.run?.outputs.find(o => o.name === name)
    if (t == null) throw new Error(`no output ${name}`)
    return tensorToNpy(t)
  }
}

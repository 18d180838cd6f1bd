/**
 * The "your own model" panel's state and intents: a dropped .onnx is read here (names, types,
 * shapes), inputs come from JSON, .npy files or images, and the model runs on a peer, which
 * fetches it from this tab by sha256.
 */
import { readModelInfo } from '../models/onnx-info.js'
import { imageLayout, tensorFromImage, tensorFromJson, tensorFromNpy } from '../models/tensor-input.js'
import { summarizeTensor, tensorToJson, tensorToNpy } from '../models/tensor-output.js'
import { decodeImage } from '../browser/images.js'
import { toTaskError } from '../core/errors.js'
import { DEFAULT_MAX_MODEL_BYTES } from '../core/model-transfer/codec.js'
import type { ModelInfo, SupportedIo } from '../models/onnx-info.js'
import type { TensorSummary } from '../models/tensor-output.js'
import type { ModelRef } from '../core/task-types.js'
import type { WireTensor } from '../core/tensor.js'
import type { TabPeer, Target, TaskRun } from '../browser/tab-peer.js'

export interface InputView {
  spec: SupportedIo
  /** Image-shaped inputs also take an image file. */
  image: boolean
  /** JSON typed by the user (or loaded from an example file). */
  json: string
  /** A .npy or image file that replaced the JSON, by name. */
  file?: string
  tensor?: WireTensor
  error?: string
}

export interface ModelRunView {
  taskId: string
  outputs: WireTensor[]
  summaries: TensorSummary[]
  worker: string
  backend: string
  timings: TaskRun['result']['timings'] & { roundTripMs: number }
}

export const SAMPLE_MODEL = { file: 'add-mul.onnx', inputs: 'add-mul.inputs.json' }

export class ModelState {
  name = $state('')
  size = $state(0)
  info = $state.raw<ModelInfo | undefined>(undefined)
  inputs = $state<InputView[]>([])
  running = $state(false)
  run = $state.raw<ModelRunView | undefined>(undefined)
  error = $state('')
  private bytes?: Uint8Array
  private ref?: ModelRef
  private counter = 0
  private readonly tab: () => TabPeer | undefined

  constructor (tab: () => TabPeer | undefined) {
    this.tab = tab
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
    for (const view of this.inputs) if (example[view.spec.name] != null) this.setJson(view.spec.name, JSON.stringify(example[view.spec.name]))
  }

  private async load (name: string, bytes: Uint8Array): Promise<void> {
    this.error = ''
    this.run = undefined
    this.info = undefined
    this.inputs = []
    this.ref = undefined
    this.bytes = undefined
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
    this.inputs = info.inputs.filter((i): i is SupportedIo => i.supported).map(spec => ({ spec, image: imageLayout(spec) != null, json: '' }))
  }

  private update (name: string, patch: Partial<InputView>): void {
    this.inputs = this.inputs.map(v => v.spec.name === name ? { ...v, ...patch } : v)
  }

  setJson (name: string, json: string): void {
    const view = this.inputs.find(v => v.spec.name === name)
    if (view == null) return
    try {
      this.update(name, { json, file: undefined, tensor: json.trim() === '' ? undefined : tensorFromJson(view.spec, json), error: undefined })
    } catch (err) {
      this.update(name, { json, file: undefined, tensor: undefined, error: toTaskError(err).message })
    }
  }

  /** A .npy file, or an image for an image-shaped input. */
  async setFile (name: string, file: File): Promise<void> {
    const view = this.inputs.find(v => v.spec.name === name)
    if (view == null) return
    try {
      const tensor = file.name.toLowerCase().endsWith('.npy')
        ? tensorFromNpy(view.spec, new Uint8Array(await file.arrayBuffer()))
        : tensorFromImage(view.spec, await decodeImage(file))
      this.update(name, { file: file.name, tensor, error: undefined })
    } catch (err) {
      this.update(name, { file: file.name, tensor: undefined, error: toTaskError(err).message })
    }
  }

  get ready (): boolean {
    return this.bytes != null && this.inputs.length > 0 && this.inputs.every(v => v.tensor != null) && this.error === ''
  }

  async execute (target: Target): Promise<void> {
    const tab = this.tab()
    if (tab == null || this.bytes == null || !this.ready || this.running) return
    this.running = true
    this.error = ''
    try {
      // Registered with this tab's model cache, so the worker can fetch it from here by sha256.
      this.ref ??= await tab.addModel(this.bytes, this.name)
      const taskId = `model-${Date.now().toString(36)}-${++this.counter}`
      const run = await tab.run({
        taskId,
        jobId: 'custom',
        model: this.ref,
        inputs: this.inputs.map(v => v.tensor!),
        timeoutMs: 120_000,
        outputNames: []
      }, target)
      const outputs = run.result.outputs
      this.run = {
        taskId,
        outputs,
        summaries: outputs.map(summarizeTensor),
        worker: run.worker,
        backend: run.result.backend,
        timings: { ...run.result.timings, roundTripMs: run.roundTripMs }
      }
    } catch (err) {
      const e = toTaskError(err)
      this.error = `${e.code}: ${e.message}`
    } finally {
      this.running = false
    }
  }

  outputsJson (): string {
    return JSON.stringify({ model: this.name, sha256: this.ref?.sha256, outputs: this.run?.outputs.map(tensorToJson) ?? [] }, null, 2)
  }

  outputNpy (name: string): Uint8Array {
    const t = this.run?.outputs.find(o => o.name === name)
    if (t == null) throw new Error(`no output ${name}`)
    return tensorToNpy(t)
  }
}

/**
 * The OCR panel's state and intents: pages dropped or picked from the samples, read by the network.
 * Read pages are kept across reloads (saved-ocr.ts: the last 20, images scaled down).
 */
import { DEFAULT_SPOT_CHECK } from '../core/verification.js'
import { runOcrBatch } from '../net/ocr-job.js'
import { LOCAL_PEER } from '../net/job-runner.js'
import { parseDictionary } from '../ocr/recognize.js'
import { decodeImage } from '../browser/images.js'
import { loadOcrPages, pageThumbnail, saveOcrPages } from '../browser/saved-ocr.js'
import { toTaskError } from '../core/errors.js'
import type { OcrBatchProgress, OcrPageResult } from '../net/ocr-job.js'
import type { RgbaImage } from '../ocr/image.js'
import type { TabPeer } from '../browser/tab-peer.js'
import type { Reputation } from '../core/reputation.js'

export interface OcrSample { file: string, title: string, lines: string[] }

export interface OcrPage {
  id: number
  name: string
  /** Object URL of the page image, for display. */
  url: string
  width: number
  height: number
  /** The pixels to read; absent for a page restored after a reload (already read). */
  image?: RgbaImage
  /** The image as kept across reloads (scaled down), made once. */
  saved?: Promise<Blob>
  blob: Blob
  result?: OcrPageResult
}

/** A file that could not be added, and why. */
export interface OcrFileError { name: string, message: string }

const PROGRESS_MS = 200

export class OcrState {
  pages = $state.raw<OcrPage[]>([])
  samples = $state.raw<OcrSample[]>([])
  running = $state(false)
  progress = $state.raw<OcrBatchProgress | undefined>(undefined)
  error = $state('')
  /** One entry per file that could not be added (every one, not only the last). */
  fileErrors = $state.raw<OcrFileError[]>([])
  seconds = $state(0)
  private dict?: Promise<string[]>
  private nextId = 0
  private progressTimer?: ReturnType<typeof setTimeout>
  private readonly deps: () => { tab?: TabPeer, reputation?: Reputation }

  constructor (deps: () => { tab?: TabPeer, reputation?: Reputation }) {
    this.deps = deps
    // Nothing kept, or IndexedDB unavailable: the panel starts empty.
    this.restore().catch(() => {})
  }

  private async restore (): Promise<void> {
    const kept = await loadOcrPages()
    if (kept.length === 0) return
    const restored = kept.map((k): OcrPage => ({
      id: ++this.nextId, name: k.name, url: URL.createObjectURL(k.image), width: k.width, height: k.height, blob: k.image, saved: Promise.resolve(k.image), result: k.result
    }))
    // Pages added while this was loading stay after the restored ones.
    this.pages = [...restored, ...this.pages]
  }

  /** Keeps the read pages (in the background: a failure to keep them only loses them on reload). */
  private save (): void {
    const read = this.pages.filter(p => p.result != null && p.result.error == null)
    void Promise.all(read.map(async p => {
      p.saved ??= pageThumbnail(p.blob)
      return { name: p.name, width: p.width, height: p.height, image: await p.saved, result: p.result! }
    })).then(async pages => await saveOcrPages(pages)).catch(() => {})
  }

  async loadSamples (): Promise<void> {
    try {
      const res = await fetch(new URL('samples/ocr/samples.json', location.href))
      if (res.ok) this.samples = await res.json() as OcrSample[]
    } catch {
      // No samples served: dropping images still works.
    }
  }

  async addFiles (files: Iterable<File>): Promise<void> {
    this.error = ''
    const failed: OcrFileError[] = []
    for (const file of files) {
      try {
        await this.addBlob(file.name, file)
      } catch (err) {
        failed.push({ name: file.name, message: (err as Error).message })
      }
    }
    this.fileErrors = failed
  }

  async addSample (sample: OcrSample): Promise<void> {
    this.error = ''
    this.fileErrors = []
    const res = await fetch(new URL(`samples/ocr/${sample.file}`, location.href))
    if (!res.ok) {
      this.error = `sample ${sample.file}: HTTP ${res.status}`
      return
    }
    await this.addBlob(sample.file, await res.blob())
  }

  private async addBlob (name: string, blob: Blob): Promise<void> {
    const image = await decodeImage(blob)
    this.pages = [...this.pages, { id: ++this.nextId, name, url: URL.createObjectURL(blob), width: image.width, height: image.height, image, blob }]
  }

  remove (id: number): void {
    const page = this.pages.find(p => p.id === id)
    if (page != null) URL.revokeObjectURL(page.url)
    this.pages = this.pages.filter(p => p.id !== id)
    this.save()
  }

  clear (): void {
    for (const p of this.pages) URL.revokeObjectURL(p.url)
    this.pages = []
    this.progress = undefined
    this.fileErrors = []
    this.save()
  }

  /** Reads every page not read yet: detection on peers, then recognition of each line on peers. */
  async run (replicas = 1): Promise<void> {
    const { tab, reputation } = this.deps()
    if (tab == null || reputation == null || this.running) return
    const todo = this.pages.filter((p): p is OcrPage & { image: RgbaImage } => p.image != null && (p.result == null || p.result.error != null))
    if (todo.length === 0) return
    this.running = true
    this.error = ''
    const t0 = performance.now()
    try {
      this.dict ??= fetch(new URL('models/ocr-keys.txt', location.href)).then(async r => {
        if (!r.ok) throw new Error(`OCR dictionary: HTTP ${r.status}`)
        return parseDictionary(await r.text())
      })
      this.dict.catch(() => { this.dict = undefined })
      const results = await runOcrBatch(todo.map(p => p.image), await this.dict, {
        tasks: tab.tasks,
        adverts: tab.adverts,
        reputation,
        replicas,
        local: { slots: 1, run: async (request) => await tab.queue.submit(request, LOCAL_PEER) },
        verify: tab.verification(DEFAULT_SPOT_CHECK),
        onProgress: (p) => { this.showProgress(p) }
      })
      const byId = new Map(todo.map((p, i) => [p.id, results[i]]))
      this.pages = this.pages.map(p => byId.has(p.id) ? { ...p, result: byId.get(p.id) } : p)
      this.save()
    } catch (err) {
      this.error = toTaskError(err).message
    } finally {
      clearTimeout(this.progressTimer)
      this.progressTimer = undefined
      this.seconds = (performance.now() - t0) / 1000
      this.running = false
    }
  }

  /** Progress renders at most every 200 ms: per-task re-renders slow this tab's own worker. */
  private showProgress (p: OcrBatchProgress): void {
    if (p.phase === 'done') {
      this.progress = p
      return
    }
    if (this.progressTimer != null) return
    this.progress = p
    this.progressTimer = setTimeout(() => { this.progressTimer = undefined }, PROGRESS_MS)
  }

  /** Every read page's text, page by page. */
  text (): string {
    return this.pages.filter(p => p.result != null).map(p => `# ${p.name}\n${p.result!.text}`).join('\n\n')
  }

  json (): string {
    return JSON.stringify(this.pages.filter(p => p.result != null).map(p => ({
      page: p.name,
      width: p.width,
      height: p.height,
      text: p.result!.text,
      lines: p.result!.lines.map(l => ({ text: l.text, score: Number(l.score.toFixed(4)), box: l.box.map(pt => [Math.round(pt.x), Math.round(pt.y)]) })),
      error: p.result!.error
    })), null, 2)
  }
}

/**
 * OCR pages kept across reloads: the last MAX_SAVED_OCR_PAGES pages read without error, each with
 * its text, its lines' boxes (in the original image's pixels) and a JPEG copy of the image scaled
 * down to SAVED_OCR_IMAGE_SIDE on its longest side, for display only (pages are not read again from
 * it). Pages not read yet, or whose reading failed, are not kept.
 */
import { deleteSaved, loadSaved, saveSaved } from './saved-store.js'
import type { OcrPageResult } from '../net/ocr-job.js'

const KEY = 'ocr-pages'
export const MAX_SAVED_OCR_PAGES = 20
export const SAVED_OCR_IMAGE_SIDE = 1280
const MAX_LINES = 10_000
const MAX_TEXT = 1_000_000
const MAX_IMAGE_BYTES = 4 * 1024 * 1024

export interface SavedOcrPage {
  name: string
  width: number
  height: number
  /** The page scaled down, as JPEG. */
  image: Blob
  result: OcrPageResult
}

const isSize = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0 && (v as number) <= 1 << 16
const isCoord = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v)

/** Why a stored value is not a SavedOcrPage, or undefined when it is one. */
export function savedOcrPageProblem (value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object'
  const p = value as Record<string, unknown>
  if (typeof p.name !== 'string' || p.name.length > 1024) return 'name is invalid'
  if (!isSize(p.width) || !isSize(p.height)) return 'size is invalid'
  if (!(p.image instanceof Blob) || p.image.size > MAX_IMAGE_BYTES) return 'image is invalid'
  const r = p.result as Record<string, unknown> | undefined
  if (r == null || typeof r.text !== 'string' || r.text.length > MAX_TEXT || r.error !== undefined) return 'result is invalid'
  if (!Array.isArray(r.lines) || r.lines.length > MAX_LINES) return 'lines are invalid'
  for (const l of r.lines as unknown[]) {
    const line = l as Record<string, unknown>
    if (typeof l !== 'object' || l === null || typeof line.text !== 'string' || !isCoord(line.score)) return 'a line is invalid'
    if (!Array.isArray(line.box) || line.box.length !== 4 || !line.box.every(pt => typeof pt === 'object' && pt !== null && isCoord(pt.x) && isCoord(pt.y))) return 'a line box is invalid'
  }
  return undefined
}

/** A JPEG of `blob` at most SAVED_OCR_IMAGE_SIDE on its longest side. */
export async function pageThumbnail (blob: Blob): Promise<Blob> {
  const full = await createImageBitmap(blob)
  const scale = Math.min(1, SAVED_OCR_IMAGE_SIDE / Math.max(full.width, full.height))
  const width = Math.max(1, Math.round(full.width * scale))
  const height = Math.max(1, Math.round(full.height * scale))
  const canvas = new OffscreenCanvas(width, height)
  const ctx = canvas.getContext('2d')
  if (ctx == null) throw new Error('no 2D canvas')
  // JPEG has no alpha: transparent screenshots get the white the page shows them on.
  ctx.fillStyle = '#fff'
  ctx.fillRect(0, 0, width, height)
  ctx.drawImage(full, 0, 0, width, height)
  full.close()
  return await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.85 })
}

/** Keeps the last MAX_SAVED_OCR_PAGES of `pages` (oldest first), replacing what was kept. */
export async function saveOcrPages (pages: readonly SavedOcrPage[]): Promise<boolean> {
  const kept = pages.filter(p => p.result.error === undefined).slice(-MAX_SAVED_OCR_PAGES)
  if (kept.length === 0) {
    await deleteSaved(KEY)
    return true
  }
  return await saveSaved(KEY, kept)
}

/** The pages kept, valid ones only. */
export async function loadOcrPages (): Promise<SavedOcrPage[]> {
  const value = await loadSaved(KEY)
  if (!Array.isArray(value)) return []
  return value.slice(-MAX_SAVED_OCR_PAGES).filter(p => savedOcrPageProblem(p) === undefined) as SavedOcrPage[]
}

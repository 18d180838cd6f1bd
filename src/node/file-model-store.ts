/**
 * A Node peer's model cache: one `<sha256>.onnx` file per model, written atomically, kept under a
 * byte budget by the ModelProvider (least recently used first; a file's mtime orders models
 * stored by an earlier run).
 */
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { ModelStore, StoredModel } from '../core/model-store.js'

const NAME = /^([0-9a-f]{64})\.onnx$/
/** Disk a Node worker's model cache may use unless told otherwise (`--model-cache-mb`). */
export const DEFAULT_MODEL_CACHE_MB = 2048

export class FileModelStore implements ModelStore {
  readonly dir: string
  readonly budgetBytes: number

  /** `budgetBytes` defaults to DEFAULT_MODEL_CACHE_MB; Infinity for no limit. */
  constructor (dir: string, options: { budgetBytes?: number } = {}) {
    this.dir = dir
    this.budgetBytes = options.budgetBytes ?? DEFAULT_MODEL_CACHE_MB * 1024 * 1024
  }

  async get (sha256: string): Promise<Uint8Array | undefined> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return undefined
    try {
      return new Uint8Array(await readFile(join(this.dir, `${sha256}.onnx`)))
    } catch {
      return undefined
    }
  }

  async put (sha256: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const tmp = join(this.dir, `.${sha256}.${randomUUID()}.tmp`)
    await writeFile(tmp, bytes)
    await rename(tmp, join(this.dir, `${sha256}.onnx`))
  }

  async list (): Promise<StoredModel[]> {
    const names = await readdir(this.dir).catch(() => [] as string[])
    const models = await Promise.all(names.map(async (name): Promise<StoredModel | undefined> => {
      const sha256 = NAME.exec(name)?.[1]
      if (sha256 == null) return undefined
      // A file removed between readdir and stat is simply not listed.
      const s = await stat(join(this.dir, name)).catch(() => undefined)
      return s == null ? undefined : { sha256, bytes: s.size, storedAt: s.mtimeMs }
    }))
    return models.filter((m): m is StoredModel => m != null)
  }

  async delete (sha256: string): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return
    await unlink(join(this.dir, `${sha256}.onnx`)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
  }
}

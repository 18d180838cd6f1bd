/** A Node peer's model cache: one `<sha256>.onnx` file per model, written atomically. */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { ModelStore } from '../core/model-store.js'

const NAME = /^([0-9a-f]{64})\.onnx$/

export class FileModelStore implements ModelStore {
  readonly dir: string

  constructor (dir: string) {
    this.dir = dir
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

  async list (): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[])
    return names.flatMap(n => NAME.exec(n)?.[1] ?? [])
  }
}

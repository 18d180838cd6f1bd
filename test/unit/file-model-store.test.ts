/** FileModelStore on a real temporary directory: listing with sizes, deleting, and the budget kept by ModelProvider. */
import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileModelStore } from '../../src/node/file-model-store.js'
import { ModelProvider } from '../../src/core/model-store.js'
import { sha256Hex } from '../../src/core/hash.js'
import type { ModelRef } from '../../src/core/task-types.js'

/** Sizes scaled down: the store and the policy do not depend on scale. */
const MB = 64 * 1024
const dirs: string[] = []
function tempDir (): string {
  const d = mkdtempSync(join(tmpdir(), 'model-cache-'))
  dirs.push(d)
  return d
}
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

async function model (seed: number, mb = 1): Promise<{ bytes: Uint8Array, ref: ModelRef }> {
  const b = new Uint8Array(mb * MB).fill(seed)
  return { bytes: b, ref: { sha256: await sha256Hex(b), size: b.byteLength, name: `m${seed}` } }
}

describe('FileModelStore', () => {
  it('lists models with their sizes, ignoring temporary and foreign files, and deletes them', async () => {
    const dir = tempDir()
    const store = new FileModelStore(dir)
    const m = await model(1)
    await store.put(m.ref.sha256, m.bytes)
    writeFileSync(join(dir, `.${m.ref.sha256}.x.tmp`), 'partial')
    writeFileSync(join(dir, 'notes.txt'), 'hello')
    const listed = await store.list()
    expect(listed).toHaveLength(1)
    expect(listed[0]).toMatchObject({ sha256: m.ref.sha256, bytes: MB })
    await store.delete(m.ref.sha256)
    await store.delete(m.ref.sha256) // already gone: no error
    await store.delete('../notes') // not a sha256: never a path
    expect(await store.list()).toEqual([])
    expect(readdirSync(dir).sort()).toEqual([`.${m.ref.sha256}.x.tmp`, 'notes.txt'].sort())
  })

  it('a cache directory that does not exist lists empty', async () => {
    expect(await new FileModelStore(join(tempDir(), 'missing')).list()).toEqual([])
  })

  it('kept under its budget on disk: distinct models fetched one after another leave only the newest that fit', async () => {
    const dir = tempDir()
    const models = await Promise.all(Array.from({ length: 6 }, async (_, i) => await model(i + 1)))
    const p = new ModelProvider({ store: new FileModelStore(dir, { budgetBytes: 3 * MB }), fetchFrom: async (_peer, ref) => models.find(m => m.ref.sha256 === ref.sha256)!.bytes })
    await p.init()
    for (const m of models) await p.get(m.ref, 'requester')
    expect(readdirSync(dir).sort()).toEqual(models.slice(-3).map(m => `${m.ref.sha256}.onnx`).sort())
  })

  it('a restarted worker prunes what an earlier run left over the budget, oldest file first', async () => {
    const dir = tempDir()
    const models = await Promise.all([1, 2, 3].map(async i => await model(i)))
    const first = new FileModelStore(dir, { budgetBytes: Infinity })
    for (const [i, m] of models.entries()) {
      await first.put(m.ref.sha256, m.bytes)
      // Stored in the order 2, 0, 1 as far as the files say.
      const at = new Date(Date.UTC(2026, 0, 1, 0, [1, 2, 0][i]))
      utimesSync(join(dir, `${m.ref.sha256}.onnx`), at, at)
    }
    const p = new ModelProvider({ store: new FileModelStore(dir, { budgetBytes: 2 * MB }) })
    await p.init()
    expect(readdirSync(dir).sort()).toEqual([models[0], models[1]].map(m => `${m.ref.sha256}.onnx`).sort())
    expect(p.cached.sort()).toEqual([models[0], models[1]].map(m => m.ref.sha256).sort())
  })
})

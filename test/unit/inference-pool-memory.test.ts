/**
 * Inference processes start with glibc's mmap threshold fixed (src/node/inference-pool.ts): without
 * it, released onnxruntime sessions leave the heap fragmented and resident. Real child processes;
 * their environment is read back from /proc (Linux, where glibc reads it).
 */
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { InferencePool } from '../../src/node/inference-pool.js'

const environ = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')

describe.skipIf(process.platform !== 'linux')('inference process environment', () => {
  const pools: InferencePool[] = []
  const userValue = process.env.MALLOC_MMAP_THRESHOLD_
  afterEach(() => {
    for (const p of pools.splice(0)) p.stop()
    if (userValue == null) delete process.env.MALLOC_MMAP_THRESHOLD_
    else process.env.MALLOC_MMAP_THRESHOLD_ = userValue
  })
  const started = async (): Promise<number> => {
    const p = new InferencePool({ size: 1, threads: [1], fetchModel: async () => { throw new Error('no model in this test') } })
    pools.push(p)
    await p.warm()
    return p.pids[0]
  }

  it('fixes the mmap threshold at 128 KiB, and keeps the rest of the parent\'s environment', async () => {
    delete process.env.MALLOC_MMAP_THRESHOLD_
    const env = environ(await started())
    expect(env).toContain('MALLOC_MMAP_THRESHOLD_=131072')
    expect(env).toContain(`PATH=${process.env.PATH}`)
  })

  it('leaves a threshold the user set as it is', async () => {
    process.env.MALLOC_MMAP_THRESHOLD_ = '65536'
    expect(environ(await started())).toContain('MALLOC_MMAP_THRESHOLD_=65536')
  })
})

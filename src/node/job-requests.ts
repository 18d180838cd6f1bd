/**
 * What a job was asked to run, kept beside its meta so a restarted requester can resume it:
 * the model, how results are compared, and where the task inputs come from (a built-in dataset,
 * or the inputs themselves).
 *
 *   <dir>/<jobId>/request.json   the JobRequest, written once before the job's meta
 *   <dir>/<jobId>/inputs.jsonl   one task per line: [{"name","dtype","dims","data":"<base64>"}, ...]
 *
 * Same directory as FileJobStore's job (deleting the job deletes these too). MemoryJobRequests
 * keeps them in memory for a requester with nothing on disk.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { isDType } from '../core/tensor.js'
import { isDiversityMode } from '../core/diversity.js'
import type { DiversityMode } from '../core/diversity.js'
import type { WireTensor } from '../core/tensor.js'

export interface JobRequest {
  model: { sha256: string, size: number, name: string }
  replicas: number
  adaptive: boolean
  /** Results agree when the argmax of this output matches (classifiers), else within `tolerance`. */
  argmax?: string
  tolerance: number
  spotCheck: number
  diversity: DiversityMode
  source: { kind: 'inputs' } | { kind: 'dataset', dataset: string }
}

export interface JobRequests {
  put(jobId: string, request: JobRequest, inputs?: readonly WireTensor[][]): Promise<void>
  get(jobId: string): Promise<JobRequest | undefined>
  inputs(jobId: string): Promise<WireTensor[][]>
}

export class MemoryJobRequests implements JobRequests {
  private readonly jobs = new Map<string, { request: JobRequest, inputs: readonly WireTensor[][] }>()

  async put (jobId: string, request: JobRequest, inputs: readonly WireTensor[][] = []): Promise<void> {
    this.jobs.set(jobId, { request, inputs })
  }

  async get (jobId: string): Promise<JobRequest | undefined> {
    return this.jobs.get(jobId)?.request
  }

  async inputs (jobId: string): Promise<WireTensor[][]> {
    return [...this.jobs.get(jobId)?.inputs ?? []]
  }
}

const REQUEST = 'request.json'
const INPUTS = 'inputs.jsonl'

export class FileJobRequests implements JobRequests {
  constructor (private readonly dir: string) {}

  async put (jobId: string, request: JobRequest, inputs: readonly WireTensor[][] = []): Promise<void> {
    const dir = join(this.dir, jobId)
    await mkdir(dir, { recursive: true })
    if (inputs.length > 0) {
      await writeFile(join(dir, INPUTS), inputs.map(task => JSON.stringify(task.map(t => ({ name: t.name, dtype: t.dtype, dims: t.dims, data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64') })))).join('\n') + '\n')
    }
    await writeFile(join(dir, REQUEST), JSON.stringify(request))
  }

  async get (jobId: string): Promise<JobRequest | undefined> {
    let text: string
    try {
      text = await readFile(join(this.dir, jobId, REQUEST), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    const value = JSON.parse(text) as JobRequest
    if (!isJobRequest(value)) throw new Error(`${join(this.dir, jobId, REQUEST)} is not a job request`)
    return value
  }

  async inputs (jobId: string): Promise<WireTensor[][]> {
    const path = join(this.dir, jobId, INPUTS)
    const tasks: WireTensor[][] = []
    const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity })
    for await (const line of lines) {
      if (line === '') continue
      const task = JSON.parse(line) as Array<{ name: string, dtype: string, dims: number[], data: string }>
      tasks.push(task.map(t => {
        if (!isDType(t.dtype) || !Array.isArray(t.dims)) throw new Error(`${path}: line ${tasks.length + 1} is not a task's inputs`)
        const data = Buffer.from(t.data, 'base64')
        return { name: t.name, dtype: t.dtype, dims: t.dims, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }
      }))
    }
    return tasks
  }
}

function isJobRequest (v: unknown): v is JobRequest {
  const r = v as JobRequest
  return typeof r === 'object' && r !== null && typeof r.model?.sha256 === 'string' && typeof r.tolerance === 'number' && typeof r.replicas === 'number' && typeof r.adaptive === 'boolean' &&
    typeof r.spotCheck === 'number' && isDiversityMode(r.diversity) && (r.source?.kind === 'inputs' || (r.source?.kind === 'dataset' && typeof r.source.dataset === 'string'))
}

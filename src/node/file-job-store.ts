/**
 * JobStore on plain files, for the CLI. Same semantics as MemoryJobStore (src/core/job-store.ts).
 *
 *   <dir>/<jobId>/meta.json       the JobMeta, replaced atomically (temp file, fsync, rename)
 *   <dir>/<jobId>/ended.json      the meta the job ended with (a terminal state), once it has:
 *                                 created by link(2) from a complete temp file, which fails when
 *                                 the file exists, so the first end recorded stands whichever
 *                                 process wrote it; only a meta in that same state may replace it
 *                                 (rename). It is read in preference to meta.json: a non-terminal
 *                                 write from another process that raced the end (passed its check
 *                                 just before) lands in meta.json, where it is never read.
 *   <dir>/<jobId>/results.jsonl   append-only, one StoredResult per line, tensor data as base64:
 *                                 {"index":3,"outputs":[{"name":"probs","dtype":"float32","dims":[1,10],
 *                                  "data":"<base64>"}],"agreedBy":["12D3Koo…"],"crossChecked":true},
 *                                 or {"index":3,"revoked":true} undoing the result before it
 *   <dir>/<jobId>/audit.jsonl     the job's audit log (core/audit.ts), appended line by line
 *   <dir>/reputation.json         the reputation records, replaced atomically
 *
 * A batch of results is one append (then fsync). A result counts once its line's newline is on
 * disk: a last line without one (a crash mid-append) is ignored when reading and cut off before the
 * next append. Any other line that does not parse is real corruption (JobStateError 'corrupt-store'),
 * as is a meta.json or reputation.json that does not parse. The last line for an index wins.
 *
 * deleteJob renames the job's directory to a hidden name first, so a crash mid-delete never
 * leaves a half-deleted job behind (only a hidden directory that listJobs ignores).
 *
 * Operations on one job are serialised within this process; one process at a time should own a
 * directory (two processes appending to one job are not coordinated), except for the end of a job:
 * another process (submit --cancel) may end it, and ended.json keeps that end (see above).
 */
import { randomUUID } from 'node:crypto'
import { link, mkdir, open, readFile, readdir, rename, rm, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { JobStateError, checkAuditLines, checkJobMeta, checkJobReplace, isTerminalState, checkReputation, checkStoredResults, compareJobsNewestFirst, isValidJobId, jobMetaProblem, normalizeJobMeta, normalizeReputation, normalizeStoredResult, reputationProblem, storedResultProblem } from '../core/job-store.js'
import type { FileHandle } from 'node:fs/promises'
import type { JobMeta, JobStore, ReputationRecords, StoredResult } from '../core/job-store.js'

export const DEFAULT_JOBS_DIR = '.data/jobs'

const META = 'meta.json'
const ENDED = 'ended.json'
const RESULTS = 'results.jsonl'
const AUDIT = 'audit.jsonl'
const REPUTATION = 'reputation.json'
const NEWLINE = 0x0a
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
/** Lock key for reputation.json: cannot collide with a job id. */
const REPUTATION_LOCK = '\0reputation'

function isNotFound (err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT'
}

async function readIfExists (path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
}

/**
 * Writes `data` to a temp file next to `path`, fsyncs it and renames it over `path`; with
 * `exclusive`, links it to `path` instead, which fails (EEXIST) when `path` exists.
 */
async function writeAtomic (path: string, data: string, exclusive = false): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`
  try {
    const fh = await open(tmp, 'w')
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (exclusive) {
      await link(tmp, path)
      await unlink(tmp)
    } else {
      await rename(tmp, path)
    }
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
}

function isExists (err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'EEXIST'
}

/** Cuts off a last line that has no newline (left by a crash mid-append). */
async function dropPartialLine (fh: FileHandle): Promise<void> {
  const { size } = await fh.stat()
  const chunk = Buffer.alloc(64 * 1024)
  let end = size
  while (end > 0) {
    const start = Math.max(0, end - chunk.length)
    const { bytesRead } = await fh.read(chunk, 0, end - start, start)
    const at = chunk.subarray(0, bytesRead).lastIndexOf(NEWLINE)
    if (at >= 0) {
      if (start + at + 1 !== size) await fh.truncate(start + at + 1)
      return
    }
    end = start
  }
  if (size > 0) await fh.truncate(0)
}

/** The last complete line of a file (undefined when none), read backwards from its end in chunks. */
async function lastLine (path: string): Promise<string | undefined> {
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
  try {
    const { size } = await fh.stat()
    const chunk = Buffer.alloc(64 * 1024)
    const parts: Buffer[] = []
    let end = size
    let lineEnd = -1 // offset of the newline closing the last complete line
    while (end > 0) {
      const start = Math.max(0, end - chunk.length)
      const { bytesRead } = await fh.read(chunk, 0, end - start, start)
      const piece = Buffer.from(chunk.subarray(0, bytesRead))
      for (let i = piece.length - 1; i >= 0; i--) {
        if (piece[i] !== NEWLINE) continue
        if (lineEnd < 0) { lineEnd = start + i; continue }
        parts.unshift(piece.subarray(i + 1))
        return Buffer.concat(parts).subarray(0, lineEnd - (start + i + 1)).toString('utf8')
      }
      parts.unshift(piece)
      end = start
    }
    return lineEnd < 0 ? undefined : Buffer.concat(parts).subarray(0, lineEnd).toString('utf8')
  } finally {
    await fh.close()
  }
}

function encodeResultLine (r: StoredResult): string {
  return JSON.stringify({
    index: r.index,
    outputs: r.outputs.map(t => ({
      name: t.name, dtype: t.dtype, dims: t.dims, data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')
    })),
    agreedBy: r.agreedBy,
    crossChecked: r.crossChecked,
    receipt: r.receipt
  }) + '\n'
}

/** A revoked result: the line that undoes the result stored before it at this index. */
interface Revocation { index: number, revoked: true }

/** Parses one complete line; returns a problem description instead when it is not a valid result or revocation. */
function decodeResultLine (line: string): StoredResult | Revocation | string {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (err) {
    return `not JSON (${(err as Error).message})`
  }
  const v = value as Partial<Revocation> | null
  if (v?.revoked === true && Number.isSafeInteger(v.index)) return { index: v.index!, revoked: true }
  const outputs = (value as { outputs?: unknown })?.outputs
  if (Array.isArray(outputs)) {
    for (const t of outputs as Array<{ data?: unknown }>) {
      if (typeof t?.data !== 'string') return 'tensor data is not a base64 string'
      if (!BASE64.test(t.data)) return 'tensor data is not valid base64'
      t.data = new Uint8Array(Buffer.from(t.data, 'base64'))
    }
  }
  const problem = storedResultProblem(value)
  return problem ?? normalizeStoredResult(value as StoredResult)
}

export class FileJobStore implements JobStore {
  readonly dir: string
  private readonly locks = new Map<string, Promise<unknown>>()

  constructor (dir: string = DEFAULT_JOBS_DIR) {
    this.dir = resolve(dir)
  }

  async putJob (meta: JobMeta): Promise<void> {
    const m = checkJobMeta(meta)
    await this.locked(m.jobId, async () => {
      const dir = this.jobDir(m.jobId)
      const text = JSON.stringify(m, null, 2) + '\n'
      // A meta.json in a terminal state: written before ended.json existed.
      const stored = await this.readMeta(m.jobId)
      checkJobReplace(stored, m)
      await mkdir(dir, { recursive: true })
      if (!isTerminalState(m.state)) {
        await writeAtomic(join(dir, META), text)
        return
      }
      if (stored != null && stored.state === m.state) {
        await writeAtomic(join(dir, ENDED), text)
        return
      }
      try {
        await writeAtomic(join(dir, ENDED), text, true)
      } catch (err) {
        if (!isExists(err)) throw err
        // Another process ended the job since the check above: its end stands, or this is the same one.
        checkJobReplace(await this.readMeta(m.jobId), m)
        await writeAtomic(join(dir, ENDED), text)
      }
    })
  }

  async getJob (jobId: string): Promise<JobMeta | undefined> {
    if (!isValidJobId(jobId)) return undefined
    return await this.readMeta(jobId)
  }

  async listJobs (): Promise<JobMeta[]> {
    let names: string[]
    try {
      names = (await readdir(this.dir, { withFileTypes: true })).filter(e => e.isDirectory()).map(e => e.name)
    } catch (err) {
      if (isNotFound(err)) return []
      throw err
    }
    const metas = await Promise.all(names.filter(isValidJobId).map(async name => await this.readMeta(name)))
    return metas.filter((m): m is JobMeta => m != null).sort(compareJobsNewestFirst)
  }

  async putResults (jobId: string, results: StoredResult[]): Promise<void> {
    if (!isValidJobId(jobId)) throw new JobStateError('unknown-job', `no job ${jobId}`)
    await this.appendLines(jobId, RESULTS, meta => checkStoredResults(results, meta.taskCount).map(encodeResultLine))
  }

  async getResults (jobId: string): Promise<StoredResult[]> {
    if (!isValidJobId(jobId)) return []
    return await this.locked(jobId, async () => {
      const path = join(this.jobDir(jobId), RESULTS)
      const bytes = await readIfExists(path)
      if (bytes == null) return []
      const byIndex = new Map<number, StoredResult>()
      let start = 0
      let line = 1
      for (let end = bytes.indexOf(NEWLINE); end >= 0; end = bytes.indexOf(NEWLINE, start), line++) {
        const r = decodeResultLine(bytes.toString('utf8', start, end))
        if (typeof r === 'string') throw new JobStateError('corrupt-store', `${path} line ${line}: ${r}`)
        if ('revoked' in r) byIndex.delete(r.index)
        else byIndex.set(r.index, r)
        start = end + 1
      }
      // Anything after the last newline is a line cut short by a crash: not a result yet.
      return [...byIndex.values()].sort((a, b) => a.index - b.index)
    })
  }

  async deleteResults (jobId: string, indices: number[]): Promise<void> {
    if (!isValidJobId(jobId) || indices.length === 0 || await this.readMeta(jobId) == null) return
    await this.appendLines(jobId, RESULTS, () => indices.map(index => JSON.stringify({ index, revoked: true }) + '\n'))
  }

  async appendAudit (jobId: string, lines: string[]): Promise<void> {
    if (!isValidJobId(jobId)) throw new JobStateError('unknown-job', `no job ${jobId}`)
    const checked = checkAuditLines(lines)
    if (checked.length === 0) return
    await this.appendLines(jobId, AUDIT, () => checked.map(l => l + '\n'))
  }

  async getAudit (jobId: string): Promise<string[]> {
    if (!isValidJobId(jobId)) return []
    return await this.locked(jobId, async () => {
      const bytes = await readIfExists(join(this.jobDir(jobId), AUDIT))
      if (bytes == null) return []
      const text = bytes.toString('utf8')
      // A last line without its newline was cut short by a crash: not part of the log.
      return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').slice(0, -1)
    })
  }

  async lastAudit (jobId: string): Promise<string | undefined> {
    if (!isValidJobId(jobId)) return undefined
    return await this.locked(jobId, async () => await lastLine(join(this.jobDir(jobId), AUDIT)))
  }

  async deleteJob (jobId: string): Promise<void> {
    if (!isValidJobId(jobId)) return
    await this.locked(jobId, async () => {
      const trash = join(this.dir, `.deleted-${jobId}-${randomUUID()}`)
      try {
        await rename(this.jobDir(jobId), trash)
      } catch (err) {
        if (isNotFound(err)) return
        throw err
      }
      await rm(trash, { recursive: true, force: true })
    })
  }

  async getReputation (): Promise<ReputationRecords> {
    const path = join(this.dir, REPUTATION)
    return await this.locked(REPUTATION_LOCK, async () => {
      const bytes = await readIfExists(path)
      if (bytes == null) return {}
      const value = this.parseJson(path, bytes)
      const problem = reputationProblem(value)
      if (problem != null) throw new JobStateError('corrupt-store', `${path}: ${problem}`)
      return normalizeReputation(value as ReputationRecords)
    })
  }

  async putReputation (records: ReputationRecords): Promise<void> {
    const r = checkReputation(records)
    await this.locked(REPUTATION_LOCK, async () => {
      await mkdir(this.dir, { recursive: true })
      await writeAtomic(join(this.dir, REPUTATION), JSON.stringify(r) + '\n')
    })
  }

  /**
   * Appends whole lines (made from the job's meta) to one of its files, after cutting any line a
   * crash left unfinished.
   */
  private async appendLines (jobId: string, file: string, lines: (meta: JobMeta) => string[]): Promise<void> {
    await this.locked(jobId, async () => {
      const meta = await this.readMeta(jobId)
      if (meta == null) throw new JobStateError('unknown-job', `no job ${jobId}`)
      const text = lines(meta).join('')
      if (text === '') return
      const fh = await open(join(this.jobDir(jobId), file), 'a+')
      try {
        await dropPartialLine(fh)
        await fh.appendFile(text)
        await fh.datasync()
      } finally {
        await fh.close()
      }
    })
  }

  private jobDir (jobId: string): string {
    return join(this.dir, jobId)
  }

  /** ended.json when the job has ended, else meta.json (see the module comment). */
  private async readMeta (jobId: string): Promise<JobMeta | undefined> {
    let path = join(this.jobDir(jobId), ENDED)
    let bytes = await readIfExists(path)
    if (bytes == null) bytes = await readIfExists(path = join(this.jobDir(jobId), META))
    if (bytes == null) return undefined
    const value = this.parseJson(path, bytes)
    const problem = jobMetaProblem(value)
    if (problem != null) throw new JobStateError('corrupt-store', `${path}: ${problem}`)
    const meta = value as JobMeta
    if (meta.jobId !== jobId) throw new JobStateError('corrupt-store', `${path}: holds job ${meta.jobId}`)
    if (path.endsWith(ENDED) && !isTerminalState(meta.state)) throw new JobStateError('corrupt-store', `${path}: a ${meta.state} job has not ended`)
    return normalizeJobMeta(meta)
  }

  private parseJson (path: string, bytes: Buffer): unknown {
    try {
      return JSON.parse(bytes.toString('utf8'))
    } catch (err) {
      throw new JobStateError('corrupt-store', `${path}: not JSON (${(err as Error).message})`)
    }
  }

  /** Runs `fn` after every earlier operation under `key` has settled. */
  private async locked<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve()
    const run = prev.then(fn, fn)
    const tail = run.catch(() => {})
    this.locks.set(key, tail)
    try {
      return await run
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key)
    }
  }
}

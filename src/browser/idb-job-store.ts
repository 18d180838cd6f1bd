/**
 * JobStore on IndexedDB, so a requester tab that reloads can resume its job. Same semantics as
 * MemoryJobStore (src/core/job-store.ts); metas and results are validated by the same functions.
 *
 * Database 'p2p-ai-agents-jobs' (separate from the identity keys' database), version 3:
 *   jobs        key path 'jobId'             JobMeta
 *   results     key path ['jobId', 'index']  { jobId, index, outputs, agreedBy, crossChecked }, the
 *                                            tensors' data as Uint8Array (structured clone), each
 *                                            copied into its own buffer so a view never drags a
 *                                            larger buffer along
 *   reputation  out-of-line key 'peers'      the whole reputation record set
 *   audit       out-of-line key [jobId, n]   the job's audit log lines (core/audit.ts), n = 0, 1, …
 *                                            (added in version 2)
 *   tabjobs     key path 'jobId'             TabJobRecord: what the page adds to a job (paused,
 *                                            kind, who worked on it, its model and input names)
 *   inputs      out-of-line key [jobId, n]   a custom job's task n inputs (WireTensor[]), so a
 *                                            reloaded tab can resume it
 *   models      out-of-line key jobId        a custom job's model bytes (the tab serves them to
 *                                            workers by sha256)     (these three added in version 3)
 *
 * putJob reads the stored meta and writes the new one in one readwrite transaction, so a job that
 * another tab ended is never put back into a running state (core/job-store.ts). putResults checks that the job exists and writes the whole batch in one readwrite transaction
 * (all or nothing). Array keys sort element by element, numbers numerically, so one job's results
 * come back from the key range [jobId] … [jobId, []] already sorted by index. deleteJob removes the
 * meta, results, audit log, page record, inputs and model in one transaction.
 */
import { JobStateError, checkAuditLines, checkJobMeta, checkJobReplace, checkReputation, checkStoredResults, compareJobsNewestFirst, isValidJobId, jobMetaProblem, normalizeJobMeta, normalizeReputation, normalizeStoredResult, reputationProblem, storedResultProblem } from '../core/job-store.js'
import type { JobMeta, JobStore, ReputationRecords, StoredResult } from '../core/job-store.js'
import type { WireTensor } from '../core/tensor.js'
import { tabJobProblem } from './job-record.js'
import type { TabJobRecord } from './job-record.js'

export const JOBS_DB_NAME = 'p2p-ai-agents-jobs'
const DB_VERSION = 3
const JOBS = 'jobs'
const RESULTS = 'results'
const REPUTATION = 'reputation'
const REPUTATION_KEY = 'peers'
const AUDIT = 'audit'
const TAB_JOBS = 'tabjobs'
const INPUTS = 'inputs'
const MODELS = 'models'
/** Tasks' inputs written per transaction: large enough to be quick, small enough not to hold one huge transaction. */
const INPUT_BATCH = 500

interface ResultRow extends StoredResult {
  jobId: string
}

function openDb (name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, DB_VERSION)
    req.onupgradeneeded = () => {
      const db = req.result
      if (!db.objectStoreNames.contains(JOBS)) db.createObjectStore(JOBS, { keyPath: 'jobId' })
      if (!db.objectStoreNames.contains(RESULTS)) db.createObjectStore(RESULTS, { keyPath: ['jobId', 'index'] })
      if (!db.objectStoreNames.contains(REPUTATION)) db.createObjectStore(REPUTATION)
      if (!db.objectStoreNames.contains(AUDIT)) db.createObjectStore(AUDIT)
      if (!db.objectStoreNames.contains(TAB_JOBS)) db.createObjectStore(TAB_JOBS, { keyPath: 'jobId' })
      if (!db.objectStoreNames.contains(INPUTS)) db.createObjectStore(INPUTS)
      if (!db.objectStoreNames.contains(MODELS)) db.createObjectStore(MODELS)
    }
    req.onsuccess = () => {
      const db = req.result
      // Another tab upgrading the schema: let it, this connection is reopened on next use.
      db.onversionchange = () => { db.close() }
      resolve(db)
    }
    req.onerror = () => { reject(req.error ?? new Error(`cannot open IndexedDB ${name}`)) }
    req.onblocked = () => { reject(new Error(`IndexedDB ${name} is blocked by another tab's older version`)) }
  })
}

/** All of one job's result keys. */
function jobRange (jobId: string): IDBKeyRange {
  return IDBKeyRange.bound([jobId], [jobId, []])
}

function corrupt (what: string, problem: string): JobStateError {
  return new JobStateError('corrupt-store', `IndexedDB ${JOBS_DB_NAME} ${what}: ${problem}`)
}

function toMeta (value: unknown): JobMeta {
  const problem = jobMetaProblem(value)
  if (problem != null) throw corrupt('jobs', problem)
  return normalizeJobMeta(value as JobMeta)
}

function toResult (value: unknown): StoredResult {
  const problem = storedResultProblem(value)
  if (problem != null) throw corrupt('results', problem)
  return normalizeStoredResult(value as StoredResult)
}

export class IdbJobStore implements JobStore {
  private db: Promise<IDBDatabase> | undefined

  constructor (private readonly name: string = JOBS_DB_NAME) {}

  async putJob (meta: JobMeta): Promise<void> {
    const m = checkJobMeta(meta)
    let failure: unknown
    // The check and the write in one readwrite transaction: no other tab writes between them.
    await this.transact([JOBS], 'readwrite', tx => {
      const req = tx.objectStore(JOBS).get(m.jobId)
      req.onsuccess = () => {
        try {
          checkJobReplace(req.result === undefined ? undefined : toMeta(req.result), m)
          tx.objectStore(JOBS).put(m)
        } catch (err) {
          failure = err
          tx.abort()
        }
      }
    }).catch((err: unknown) => { throw failure ?? err })
  }

  async getJob (jobId: string): Promise<JobMeta | undefined> {
    if (!isValidJobId(jobId)) return undefined
    let value: unknown
    await this.transact([JOBS], 'readonly', tx => {
      const req = tx.objectStore(JOBS).get(jobId)
      req.onsuccess = () => { value = req.result }
    })
    return value === undefined ? undefined : toMeta(value)
  }

  async listJobs (): Promise<JobMeta[]> {
    let values: unknown[] = []
    await this.transact([JOBS], 'readonly', tx => {
      const req = tx.objectStore(JOBS).getAll()
      req.onsuccess = () => { values = req.result }
    })
    return values.map(toMeta).sort(compareJobsNewestFirst)
  }

  async putResults (jobId: string, results: StoredResult[]): Promise<void> {
    if (!isValidJobId(jobId)) throw new JobStateError('unknown-job', `no job ${jobId}`)
    let failure: unknown
    await this.transact([JOBS, RESULTS], 'readwrite', tx => {
      const req = tx.objectStore(JOBS).get(jobId)
      req.onsuccess = () => {
        try {
          if (req.result === undefined) throw new JobStateError('unknown-job', `no job ${jobId}`)
          const batch = checkStoredResults(results, toMeta(req.result).taskCount)
          const store = tx.objectStore(RESULTS)
          for (const r of batch) {
            const row: ResultRow = { jobId, ...r }
            store.put(row)
          }
        } catch (err) {
          failure = err
          tx.abort()
        }
      }
    }).catch((err: unknown) => { throw failure ?? err })
  }

  async getResults (jobId: string): Promise<StoredResult[]> {
    if (!isValidJobId(jobId)) return []
    let values: unknown[] = []
    await this.transact([RESULTS], 'readonly', tx => {
      const req = tx.objectStore(RESULTS).getAll(jobRange(jobId))
      req.onsuccess = () => { values = req.result }
    })
    return values.map(toResult)
  }

  async deleteResults (jobId: string, indices: number[]): Promise<void> {
    if (!isValidJobId(jobId) || indices.length === 0) return
    await this.transact([RESULTS], 'readwrite', tx => {
      const store = tx.objectStore(RESULTS)
      for (const i of indices) store.delete([jobId, i])
    })
  }

  async appendAudit (jobId: string, lines: string[]): Promise<void> {
    if (!isValidJobId(jobId)) throw new JobStateError('unknown-job', `no job ${jobId}`)
    const checked = checkAuditLines(lines)
    let failure: unknown
    await this.transact([JOBS, AUDIT], 'readwrite', tx => {
      const job = tx.objectStore(JOBS).get(jobId)
      job.onsuccess = () => {
        if (job.result === undefined) {
          failure = new JobStateError('unknown-job', `no job ${jobId}`)
          tx.abort()
          return
        }
        // The next line number follows the job's last key (same transaction: no other writer between).
        const last = tx.objectStore(AUDIT).openKeyCursor(jobRange(jobId), 'prev')
        last.onsuccess = () => {
          const key = last.result?.key as [string, number] | undefined
          const next = key == null ? 0 : key[1] + 1
          const store = tx.objectStore(AUDIT)
          checked.forEach((line, i) => { store.put(line, [jobId, next + i]) })
        }
      }
    }).catch((err: unknown) => { throw failure ?? err })
  }

  async getAudit (jobId: string): Promise<string[]> {
    if (!isValidJobId(jobId)) return []
    let values: unknown[] = []
    await this.transact([AUDIT], 'readonly', tx => {
      const req = tx.objectStore(AUDIT).getAll(jobRange(jobId))
      req.onsuccess = () => { values = req.result }
    })
    if (!values.every(v => typeof v === 'string')) throw corrupt('audit', 'a line is not text')
    return values as string[]
  }

  async lastAudit (jobId: string): Promise<string | undefined> {
    if (!isValidJobId(jobId)) return undefined
    let value: unknown
    await this.transact([AUDIT], 'readonly', tx => {
      const req = tx.objectStore(AUDIT).openCursor(jobRange(jobId), 'prev')
      req.onsuccess = () => { value = req.result?.value }
    })
    if (value !== undefined && typeof value !== 'string') throw corrupt('audit', 'a line is not text')
    return value
  }

  async deleteJob (jobId: string): Promise<void> {
    if (!isValidJobId(jobId)) return
    await this.transact([JOBS, RESULTS, AUDIT, TAB_JOBS, INPUTS, MODELS], 'readwrite', tx => {
      tx.objectStore(JOBS).delete(jobId)
      tx.objectStore(RESULTS).delete(jobRange(jobId))
      tx.objectStore(AUDIT).delete(jobRange(jobId))
      tx.objectStore(TAB_JOBS).delete(jobId)
      tx.objectStore(INPUTS).delete(jobRange(jobId))
      tx.objectStore(MODELS).delete(jobId)
    })
  }

  // --- What the page adds to a job (not part of JobStore) ------------------------------------------

  async putTabJob (record: TabJobRecord): Promise<void> {
    const problem = tabJobProblem(record)
    if (problem != null) throw new TypeError(problem)
    await this.transact([TAB_JOBS], 'readwrite', tx => { tx.objectStore(TAB_JOBS).put(structuredClone(record)) })
  }

  async getTabJob (jobId: string): Promise<TabJobRecord | undefined> {
    if (!isValidJobId(jobId)) return undefined
    let value: unknown
    await this.transact([TAB_JOBS], 'readonly', tx => {
      const req = tx.objectStore(TAB_JOBS).get(jobId)
      req.onsuccess = () => { value = req.result }
    })
    if (value === undefined) return undefined
    const problem = tabJobProblem(value)
    if (problem != null) throw corrupt(TAB_JOBS, problem)
    return value as TabJobRecord
  }

  async listTabJobs (): Promise<TabJobRecord[]> {
    let values: unknown[] = []
    await this.transact([TAB_JOBS], 'readonly', tx => {
      const req = tx.objectStore(TAB_JOBS).getAll()
      req.onsuccess = () => { values = req.result }
    })
    return values.map(v => {
      const problem = tabJobProblem(v)
      if (problem != null) throw corrupt(TAB_JOBS, problem)
      return v as TabJobRecord
    })
  }

  /** A custom job's inputs, task 0 first; written in several transactions (the job is not runnable until all are in). */
  async putInputs (jobId: string, tasks: readonly WireTensor[][]): Promise<void> {
    if (!isValidJobId(jobId)) throw new JobStateError('unknown-job', `no job ${jobId}`)
    for (let start = 0; start < tasks.length; start += INPUT_BATCH) {
      const chunk = tasks.slice(start, start + INPUT_BATCH)
      await this.transact([INPUTS], 'readwrite', tx => {
        const store = tx.objectStore(INPUTS)
        chunk.forEach((inputs, i) => { store.put(inputs, [jobId, start + i]) })
      })
    }
  }

  /** A custom job's inputs in task order; `count` of them must be there (else the store is corrupt). */
  async getInputs (jobId: string, count: number): Promise<WireTensor[][]> {
    if (!isValidJobId(jobId)) return []
    let values: unknown[] = []
    await this.transact([INPUTS], 'readonly', tx => {
      const req = tx.objectStore(INPUTS).getAll(jobRange(jobId))
      req.onsuccess = () => { values = req.result }
    })
    if (values.length !== count) throw corrupt(INPUTS, `job ${jobId} has ${values.length} stored inputs, expected ${count}`)
    for (const v of values) {
      if (!Array.isArray(v) || !v.every(t => t != null && typeof t.name === 'string' && t.data instanceof Uint8Array && Array.isArray(t.dims))) throw corrupt(INPUTS, `job ${jobId}: an input is not a tensor list`)
    }
    return values as WireTensor[][]
  }

  async putModel (jobId: string, bytes: Uint8Array): Promise<void> {
    if (!isValidJobId(jobId)) throw new JobStateError('unknown-job', `no job ${jobId}`)
    await this.transact([MODELS], 'readwrite', tx => { tx.objectStore(MODELS).put(bytes, jobId) })
  }

  async getModel (jobId: string): Promise<Uint8Array | undefined> {
    if (!isValidJobId(jobId)) return undefined
    let value: unknown
    await this.transact([MODELS], 'readonly', tx => {
      const req = tx.objectStore(MODELS).get(jobId)
      req.onsuccess = () => { value = req.result }
    })
    if (value !== undefined && !(value instanceof Uint8Array)) throw corrupt(MODELS, `job ${jobId}: the model is not bytes`)
    return value
  }

  async getReputation (): Promise<ReputationRecords> {
    let value: unknown
    await this.transact([REPUTATION], 'readonly', tx => {
      const req = tx.objectStore(REPUTATION).get(REPUTATION_KEY)
      req.onsuccess = () => { value = req.result }
    })
    if (value === undefined) return {}
    const problem = reputationProblem(value)
    if (problem != null) throw corrupt('reputation', problem)
    return normalizeReputation(value as ReputationRecords)
  }

  async putReputation (records: ReputationRecords): Promise<void> {
    const r = checkReputation(records)
    await this.transact([REPUTATION], 'readwrite', tx => { tx.objectStore(REPUTATION).put(r, REPUTATION_KEY) })
  }

  /** Closes the connection; the next call opens it again. */
  close (): void {
    const db = this.db
    this.db = undefined
    void db?.then(d => { d.close() }, () => {})
  }

  private async connection (): Promise<IDBDatabase> {
    if (this.db == null) {
      const opening = openDb(this.name)
      this.db = opening
      opening.then(db => {
        db.addEventListener('close', () => { if (this.db === opening) this.db = undefined })
        db.addEventListener('versionchange', () => { if (this.db === opening) this.db = undefined })
      }, () => { if (this.db === opening) this.db = undefined })
    }
    return await this.db
  }

  /** Runs `fn` in one transaction; resolves when it commits, rejects when it aborts or fails. */
  private async transact (stores: string[], mode: IDBTransactionMode, fn: (tx: IDBTransaction) => void): Promise<void> {
    const db = await this.connection()
    await new Promise<void>((resolve, reject) => {
      const tx = db.transaction(stores, mode)
      tx.oncomplete = () => { resolve() }
      tx.onerror = () => { reject(tx.error ?? new Error('IndexedDB transaction failed')) }
      tx.onabort = () => { reject(tx.error ?? new Error('IndexedDB transaction aborted')) }
      try {
        fn(tx)
      } catch (err) {
        try { tx.abort() } catch {}
        reject(err)
      }
    })
  }
}

/**
 * A job's audit log (docs/PROTOCOL.md, "Audit log"): append-only JSONL in which every line
 * carries the sha256 of its own bytes and of the line before it, so that removing, reordering or
 * changing any byte of any line is found by anyone holding the log, offline.
 *
 * Each line's hash is over exact bytes, never over a re-serialisation: a verifier in any language
 * needs no canonical JSON, only to cut the fixed-length `,"hash":"…"}` suffix off the line.
 */
import { syncSha256Hex } from './hash.js'
import type { Receipt } from './receipt.js'

/** Names the log layout; part of the genesis string. */
export const AUDIT_VERSION = 'p2p-ai-agents/audit/1'

/** Keys the log itself writes; an entry's fields may not use them. */
const RESERVED = new Set(['seq', 'at', 'type', 'prev', 'hash'])

/** `,"hash":"` + 64 hex + `"}`. */
const HASH_SUFFIX_LENGTH = 75
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/
const MAX_ERRORS = 100

const encoder = new TextEncoder()

function sha256Hex (text: string): string {
  return syncSha256Hex(encoder.encode(text))
}

/** The `prev` of a job's first line: sha256 of "p2p-ai-agents/audit/1\n" + the job id. */
export function auditGenesis (jobId: string): string {
  return sha256Hex(`${AUDIT_VERSION}\n${jobId}`)
}

/** What the scheduler and job runner record; peers are peer ids, tasks are task indexes. */
export type KnownAuditEntry =
  | { type: 'job-start', jobId: string, requester: string, model: { sha256: string, name: string, size: number }, tasks: number, replicas: number }
  | { type: 'assign', task: number, worker: string, taskId: string }
  | { type: 'result', task: number, worker: string, receipt: Receipt }
  | { type: 'decided', task: number, workers: string[], outputsSha256: string }
  | { type: 'disagreement', task: number, workers: string[] }
  | { type: 'spot-check', task: number, worker: string, match: boolean }
  | { type: 'requeue', task: number, worker: string, reason: string }
  | { type: 'exclusion', worker: string, reason: string }
  | { type: 'conviction', worker: string, reason: string, discarded: number[] }
  | { type: 'job-end', state: string, done: number, failed: number }

/** Any other entry: a type and JSON-serialisable fields (kept open so new kinds need no new log format). */
export interface OpenAuditEntry {
  type: string
  [field: string]: unknown
}

export type AuditEntry = KnownAuditEntry | OpenAuditEntry

/** A line that is not a line of this log format. */
export class AuditFormatError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'AuditFormatError'
  }
}

export interface AuditLogOptions {
  jobId: string
  /** Receives each line, without its newline, as it is appended (a file, IndexedDB, a download buffer). */
  sink: (line: string) => void
  /** Wall clock for `at`, in ms since the Unix epoch. */
  wallClock?: () => number
  /** The last line of this job's log so far: appends continue its chain (a resumed job). */
  after?: string
}

/**
 * Writes one job's log. Memory stays flat: lines go to the sink at once and only the next
 * sequence number and the last hash are kept.
 */
export class AuditLog {
  private nextSeq: number
  private last: string
  private readonly sink: (line: string) => void
  private readonly wallClock: () => number

  constructor (options: AuditLogOptions) {
    this.sink = options.sink
    this.wallClock = options.wallClock ?? Date.now
    if (options.after == null) {
      this.nextSeq = 0
      this.last = auditGenesis(options.jobId)
    } else {
      const { seq, hash } = parseLineHead(options.after)
      this.nextSeq = seq + 1
      this.last = hash
    }
  }

  /** The hash of the last line written (the genesis hash before any): publish it to pin the whole log. */
  get head (): string {
    return this.last
  }

  /** Sequence number the next line gets. */
  get seq (): number {
    return this.nextSeq
  }

  /** Appends one entry and returns its line (also handed to the sink). */
  append (entry: AuditEntry): string {
    if (typeof entry.type !== 'string' || entry.type.length === 0) throw new AuditFormatError('an audit entry needs a type')
    const record: Record<string, unknown> = { seq: this.nextSeq, at: this.wallClock(), type: entry.type }
    for (const [key, value] of Object.entries(entry)) {
      if (key === 'type') continue
      if (RESERVED.has(key)) throw new AuditFormatError(`"${key}" is written by the log itself, not by an entry`)
      record[key] = value
    }
    record.prev = this.last
    const body = JSON.stringify(record)
    const hash = sha256Hex(body)
    const line = `${body.slice(0, -1)},"hash":"${hash}"}`
    this.nextSeq++
    this.last = hash
    this.sink(line)
    return line
  }
}

/** Reads `seq` and `hash` from a line without checking the chain (to continue a log). */
function parseLineHead (line: string): { seq: number, hash: string } {
  const suffix = HASH_SUFFIX.exec(line)
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    throw new AuditFormatError('the last audit line is not JSON')
  }
  const seq = (parsed as { seq?: unknown }).seq
  if (suffix == null || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new AuditFormatError('the last audit line has no seq or hash')
  return { seq, hash: suffix[1] }
}

export interface AuditReport {
  ok: boolean
  /** Lines read. */
  lines: number
  /** The last line's hash as found in the log. */
  head: string
  /** What is wrong, by line number (1-based); at most 100, then a count of the rest. */
  errors: string[]
}

/**
 * Checks a log line by line with bounded memory: each line's hash over its own bytes, `prev`
 * against the line before (the genesis for the first), `seq` counting from 0, `at` and `type`.
 */
export class AuditVerifier {
  private expectedPrev: string
  private count = 0
  private errorCount = 0
  private readonly errors: string[] = []

  constructor (jobId: string) {
    this.expectedPrev = auditGenesis(jobId)
  }

  push (line: string): void {
    const n = ++this.count
    const problems = checkLine(line, n - 1, this.expectedPrev)
    for (const p of problems) this.error(`audit line ${n}: ${p.message}`)
    // Carry on from this line's own claim so one bad line is reported once, not on every later line.
    const suffix = HASH_SUFFIX.exec(line)
    this.expectedPrev = suffix?.[1] ?? ''
  }

  finish (): AuditReport {
    if (this.count === 0) this.error('the audit log is empty')
    const errors = [...this.errors]
    if (this.errorCount > errors.length) errors.push(`… and ${this.errorCount - errors.length} more`)
    return { ok: this.errorCount === 0, lines: this.count, head: this.expectedPrev, errors }
  }

  private error (message: string): void {
    this.errorCount++
    if (this.errors.length < MAX_ERRORS) this.errors.push(message)
  }
}

function checkLine (line: string, seq: number, expectedPrev: string): AuditFormatError[] {
  const suffix = HASH_SUFFIX.exec(line)
  if (suffix == null) return [new AuditFormatError('does not end in ,"hash":"<64 lowercase hex>"}')]
  const problems: AuditFormatError[] = []
  if (sha256Hex(`${line.slice(0, -HASH_SUFFIX_LENGTH)}}`) !== suffix[1]) problems.push(new AuditFormatError('its hash does not match its content (the line was changed)'))
  let entry: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(line)
    if (parsed == null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object')
    entry = parsed as Record<string, unknown>
  } catch {
    problems.push(new AuditFormatError('is not a JSON object'))
    return problems
  }
  if (entry.seq !== seq) problems.push(new AuditFormatError(`seq is ${JSON.stringify(entry.seq)}, expected ${seq} (a line was removed, added or moved)`))
  if (typeof entry.at !== 'number' || !Number.isSafeInteger(entry.at) || entry.at < 0) problems.push(new AuditFormatError('at is not a time in ms'))
  if (typeof entry.type !== 'string' || entry.type.length === 0) problems.push(new AuditFormatError('has no type'))
  if (entry.prev !== expectedPrev) problems.push(new AuditFormatError('prev is not the previous line\'s hash (the chain is broken)'))
  return problems
}

/** Checks a whole log held in memory; see AuditVerifier. */
export function verifyAuditLog (lines: Iterable<string>, jobId: string): AuditReport {
  const v = new AuditVerifier(jobId)
  for (const line of lines) v.push(line)
  return v.finish()
}

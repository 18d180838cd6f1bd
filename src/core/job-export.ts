/**
 * A job's export (README, "Verifying results"): one JSONL file with a header line, one line per
 * result the requester accepted (replicas included) with the worker's signed receipt and the
 * outputs, and the job's audit log, each line of it kept byte for byte. ExportVerifier checks
 * one line at a time, so memory stays flat however large the export.
 */
import { validateTensor } from './task/codec.js'
import { parseReceipt, tensorsSha256, verifyReceipt } from './receipt.js'
import { AuditVerifier } from './audit.js'
import type { Receipt } from './receipt.js'
import type { JobMeta, JobStore } from './job-store.js'
import type { ModelRef } from './task-types.js'
import type { WireTensor } from './tensor.js'

export const EXPORT_FORMAT = 'p2p-ai-agents/export/1'

export interface ExportHeader {
  jobId: string
  model: ModelRef
  /** The requester's peer id: every receipt in the export names it. */
  requester: string
}

export interface ExportedResult {
  /** Task index in the job. */
  task: number
  receipt: Receipt
  outputs: WireTensor[]
}

// ---------------------------------------------------------------- base64 and tensors as JSON

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
/** Bytes per btoa call: String.fromCharCode takes its arguments on the stack. */
const CHUNK = 0x8000

export function bytesToBase64 (bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.byteLength; i += CHUNK) binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK))
  return btoa(binary)
}

export function base64ToBytes (text: string): Uint8Array {
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw new ExportFormatError('tensor data is not base64')
  const binary = atob(text)
  const out = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i)
  return out
}

/** An export line that cannot be read. */
export class ExportFormatError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ExportFormatError'
  }
}

interface TensorJson { name: string, dtype: string, dims: number[], data: string }

function tensorToJson (t: WireTensor): TensorJson {
  return { name: t.name, dtype: t.dtype, dims: t.dims, data: bytesToBase64(t.data) }
}

function tensorsFromJson (value: unknown, what: string): WireTensor[] {
  if (!Array.isArray(value)) throw new ExportFormatError(`${what} must be an array of tensors`)
  return value.map((t: unknown) => {
    const j = t as Partial<TensorJson> | null
    if (j == null || typeof j.name !== 'string' || typeof j.dtype !== 'string' || !Array.isArray(j.dims) || typeof j.data !== 'string') {
      throw new ExportFormatError(`${what}: each tensor needs name, dtype, dims and base64 data`)
    }
    try {
      return validateTensor({ name: j.name, dtype: j.dtype, dims: j.dims, data: base64ToBytes(j.data) })
    } catch (err) {
      throw new ExportFormatError(`${what}: ${(err as Error).message}`)
    }
  })
}

function parseObject (line: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    throw new ExportFormatError('not JSON')
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new ExportFormatError('not a JSON object')
  return value as Record<string, unknown>
}

function taskIndex (value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ExportFormatError('task must be an index ≥ 0')
  return value
}

// ---------------------------------------------------------------- writing

/** The export's first line. */
export function exportHeaderLine (h: ExportHeader): string {
  return JSON.stringify({ kind: 'export', format: EXPORT_FORMAT, jobId: h.jobId, model: { sha256: h.model.sha256, name: h.model.name, size: h.model.size }, requester: h.requester })
}

/** One accepted result with its receipt. */
export function exportResultLine (r: ExportedResult): string {
  return JSON.stringify({ kind: 'result', task: r.task, receipt: r.receipt, outputs: r.outputs.map(tensorToJson) })
}

/** One audit log line, carried as a JSON string so its exact bytes survive. */
export function exportAuditLine (line: string): string {
  return JSON.stringify({ kind: 'audit', line })
}

/**
 * A stored job as export lines: the header, every stored result that carries a receipt (those the
 * requester computed itself have none: they appear as spot checks in the log), then the audit log.
 */
export async function jobExportLines (store: JobStore, meta: JobMeta, requester: string): Promise<string[]> {
  const [results, audit] = await Promise.all([store.getResults(meta.jobId), store.getAudit(meta.jobId)])
  return [
    exportHeaderLine({ jobId: meta.jobId, model: meta.model, requester }),
    ...results.flatMap(r => r.receipt == null ? [] : [exportResultLine({ task: r.index, receipt: r.receipt, outputs: r.outputs })]),
    ...audit.map(exportAuditLine)
  ]
}

// ---------------------------------------------------------------- verifying

export interface ExportCheck {
  name: string
  ok: boolean
  summary: string
}

export interface ExportReport {
  ok: boolean
  /** One per check made, in a fixed order. */
  checks: ExportCheck[]
  /** What failed, by line; at most 100, then a count of the rest. */
  errors: string[]
}

export interface VerifyExportOptions {
  /** Ed25519 check with the public key that `peerId` embeds. */
  verify: (peerId: string, bytes: Uint8Array, signature: Uint8Array) => boolean | Promise<boolean>
  /** sha256 of the model file the verifier holds (`--model`). */
  modelSha256?: string
  /** Input digests by task index, from the inputs the verifier holds (`--inputs`). */
  inputs?: ReadonlyMap<number, string>
}

const MAX_ERRORS = 100

interface Tally { checked: number, failed: number }

/** Checks an export line by line: push every line in order, then finish. */
export class ExportVerifier {
  private readonly o: VerifyExportOptions
  private header?: ExportHeader
  private audit?: AuditVerifier
  private line = 0
  private errorCount = 0
  private readonly errors: string[] = []
  private malformed = 0
  private readonly signatures: Tally = { checked: 0, failed: 0 }
  private readonly outputs: Tally = { checked: 0, failed: 0 }
  private readonly job: Tally = { checked: 0, failed: 0 }
  private readonly inputs: Tally = { checked: 0, failed: 0 }

  constructor (options: VerifyExportOptions) {
    this.o = options
  }

  async push (text: string): Promise<void> {
    const n = ++this.line
    try {
      const o = parseObject(text)
      if (n === 1) {
        this.readHeader(o)
        return
      }
      if (this.header == null) return // reported on line 1
      switch (o.kind) {
        case 'result': await this.checkResult(n, o); return
        case 'audit': await this.checkAudit(n, o); return
        default: throw new ExportFormatError(`unknown kind ${JSON.stringify(o.kind)}`)
      }
    } catch (err) {
      if (!(err instanceof ExportFormatError)) throw err
      this.malformed++
      this.error(`line ${n}: ${err.message}`)
    }
  }

  finish (): ExportReport {
    const checks: ExportCheck[] = []
    const h = this.header
    const add = (name: string, ok: boolean, summary: string): void => { checks.push({ name, ok, summary }) }
    add('format', h != null && this.malformed === 0, h == null
      ? `not an export: the first line must be {"kind":"export","format":"${EXPORT_FORMAT}",…}`
      : `job ${h.jobId}, model ${h.model.name} (${h.model.sha256}), requester ${h.requester}, ${this.line} lines${this.malformed > 0 ? `, ${this.malformed} unreadable` : ''}`)
    if (h != null) {
      add('signatures', this.signatures.failed === 0, `${this.signatures.checked} receipt signatures checked, ${this.signatures.failed} invalid`)
      add('outputs', this.outputs.failed === 0, `${this.outputs.checked} output digests recomputed, ${this.outputs.failed} mismatched`)
      add('job', this.job.failed === 0, `${this.job.checked} receipts name this job, model and requester, ${this.job.failed} do not`)
      if (this.o.modelSha256 != null) {
        const same = this.o.modelSha256 === h.model.sha256
        add('model', same, same ? `the model file hashes to ${h.model.sha256}, as the job and its receipts say` : `the model file hashes to ${this.o.modelSha256}, the job names ${h.model.sha256}`)
      }
      if (this.o.inputs != null) add('inputs', this.inputs.failed === 0, `${this.inputs.checked} input digests recomputed, ${this.inputs.failed} mismatched or missing`)
      if (this.audit == null) {
        add('audit', true, 'no audit log in this export')
      } else {
        const a = this.audit.finish()
        for (const e of a.errors) this.error(e)
        add('audit', a.ok, a.ok ? `${a.lines} lines, chain intact, head ${a.head}` : `${a.lines} lines, ${a.errors.length} problem(s)`)
      }
    }
    const errors = [...this.errors]
    if (this.errorCount > errors.length) errors.push(`… and ${this.errorCount - errors.length} more`)
    return { ok: checks.every(c => c.ok), checks, errors }
  }

  private readHeader (o: Record<string, unknown>): void {
    const model = o.model as Partial<ModelRef> | undefined
    if (o.kind !== 'export' || o.format !== EXPORT_FORMAT) throw new ExportFormatError(`the first line must be an export header of format "${EXPORT_FORMAT}"`)
    if (typeof o.jobId !== 'string' || typeof o.requester !== 'string' || model == null || typeof model.sha256 !== 'string' || typeof model.name !== 'string' || typeof model.size !== 'number') {
      throw new ExportFormatError('the header needs jobId, requester and model { sha256, name, size }')
    }
    this.header = { jobId: o.jobId, requester: o.requester, model: { sha256: model.sha256, name: model.name, size: model.size } }
  }

  private async checkReceipt (n: number, receipt: Receipt, where: string): Promise<void> {
    const h = this.header!
    this.signatures.checked++
    if (!await verifyReceipt(receipt, async (bytes, sig) => await this.o.verify(receipt.worker, bytes, sig))) {
      this.signatures.failed++
      this.error(`line ${n}: ${where}: the receipt's signature does not verify with ${receipt.worker}'s key`)
    }
    this.job.checked++
    if (receipt.jobId !== h.jobId || receipt.modelSha256 !== h.model.sha256 || receipt.requester !== h.requester) {
      this.job.failed++
      this.error(`line ${n}: ${where}: the receipt is for job ${receipt.jobId}, model ${receipt.modelSha256}, requester ${receipt.requester}`)
    }
  }

  private async checkResult (n: number, o: Record<string, unknown>): Promise<void> {
    const task = taskIndex(o.task)
    let receipt: Receipt
    try {
      receipt = parseReceipt(o.receipt)
    } catch (err) {
      throw new ExportFormatError(`task ${task}: ${(err as Error).message}`)
    }
    const outputs = tensorsFromJson(o.outputs, `task ${task} outputs`)
    await this.checkReceipt(n, receipt, `task ${task}`)
    this.outputs.checked++
    const digest = tensorsSha256(outputs)
    if (digest !== receipt.outputsSha256) {
      this.outputs.failed++
      this.error(`line ${n}: task ${task}: the outputs hash to ${digest}, the receipt says ${receipt.outputsSha256}`)
    }
    if (this.o.inputs != null) {
      this.inputs.checked++
      const expected = this.o.inputs.get(task)
      if (expected !== receipt.inputsSha256) {
        this.inputs.failed++
        this.error(`line ${n}: task ${task}: ${expected == null ? 'the inputs file has no such task' : `its inputs hash to ${expected}, the receipt says ${receipt.inputsSha256}`}`)
      }
    }
  }

  /** Chains the line, and checks the receipt of a `result` entry like any other. */
  private async checkAudit (n: number, o: Record<string, unknown>): Promise<void> {
    if (typeof o.line !== 'string') throw new ExportFormatError('an audit line must be carried as a string')
    this.audit ??= new AuditVerifier(this.header!.jobId)
    this.audit.push(o.line)
    let entry: Record<string, unknown>
    try {
      entry = parseObject(o.line)
    } catch {
      return // reported by the chain check
    }
    if (entry.type !== 'result' || entry.receipt == null) return
    let receipt: Receipt
    try {
      receipt = parseReceipt(entry.receipt)
    } catch (err) {
      throw new ExportFormatError(`audit result entry: ${(err as Error).message}`)
    }
    await this.checkReceipt(n, receipt, 'audit result entry')
  }

  private error (message: string): void {
    this.errorCount++
    if (this.errors.length < MAX_ERRORS) this.errors.push(message)
  }
}

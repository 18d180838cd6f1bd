/** ExportVerifier on hand-made exports: what a hostile or broken export file gets told. */
import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { AuditLog } from '../../src/core/audit.js'
import { EXPORT_FORMAT, ExportVerifier, base64ToBytes, bytesToBase64, exportAuditLine, exportHeaderLine, exportResultLine } from '../../src/core/job-export.js'
import { signReceipt, tensorsSha256 } from '../../src/core/receipt.js'
import type { ExportReport } from '../../src/core/job-export.js'
import type { WireTensor } from '../../src/core/tensor.js'

const WORKER_KEY = await generateKeyPair('Ed25519')
const WORKER = peerIdFromPrivateKey(WORKER_KEY).toString()
const REQUESTER = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const MODEL = { sha256: 'ab'.repeat(32), name: 'm.onnx', size: 10 }
const OUTPUTS: WireTensor[] = [{ name: 'y', dtype: 'uint8', dims: [3], data: Uint8Array.of(1, 2, 3) }]

async function resultLine (task: number, overrides: { jobId?: string, outputs?: WireTensor[] } = {}): Promise<string> {
  const receipt = await signReceipt({
    jobId: overrides.jobId ?? 'job', taskId: `job/${task}/0`, requester: REQUESTER, worker: WORKER, modelSha256: MODEL.sha256,
    inputsSha256: tensorsSha256([]), outputsSha256: tensorsSha256(OUTPUTS), backend: 'cpu', startedAt: 1, endedAt: 2
  }, async (b) => await WORKER_KEY.sign(b))
  return exportResultLine({ task, receipt, outputs: overrides.outputs ?? OUTPUTS })
}

async function check (lines: string[]): Promise<ExportReport> {
  const v = new ExportVerifier({ verify: async (peerId, bytes, sig) => await peerIdFromString(peerId).publicKey!.verify(bytes, sig) })
  for (const line of lines) await v.push(line)
  return v.finish()
}

const header = exportHeaderLine({ jobId: 'job', model: MODEL, requester: REQUESTER })

describe('ExportVerifier', () => {
  it('passes a consistent export and reports each check', async () => {
    const audit: string[] = []
    const log = new AuditLog({ jobId: 'job', sink: (l) => { audit.push(l) } })
    log.append({ type: 'job-end', state: 'done', done: 1, failed: 0 })
    const report = await check([header, await resultLine(0), ...audit.map(exportAuditLine)])
    expect(report.errors).toEqual([])
    expect(report.checks.map(c => [c.name, c.ok])).toEqual([['format', true], ['signatures', true], ['outputs', true], ['job', true], ['audit', true]])
    expect(report.ok).toBe(true)
  })

  it('fails a file that does not start with an export header', async () => {
    const report = await check([await resultLine(0)])
    expect(report.ok).toBe(false)
    expect(report.checks).toEqual([{ name: 'format', ok: false, summary: expect.stringContaining(EXPORT_FORMAT) }])
  })

  it('fails, without throwing, on lines that are not JSON, of unknown kind, or with malformed receipts and tensors', async () => {
    const good = JSON.parse(await resultLine(0)) as Record<string, unknown>
    const report = await check([
      header,
      'not json',
      JSON.stringify({ kind: 'mystery' }),
      JSON.stringify({ ...good, receipt: { ...(good.receipt as object), signature: 'x' } }),
      JSON.stringify({ ...good, outputs: [{ name: 'y', dtype: 'uint8', dims: [4], data: bytesToBase64(Uint8Array.of(1)) }] }),
      JSON.stringify({ ...good, outputs: [{ name: 'y', dtype: 'uint8', dims: [1], data: '!!!!' }] }),
      JSON.stringify({ ...good, task: -1 }),
      JSON.stringify({ kind: 'audit', line: 5 })
    ])
    expect(report.ok).toBe(false)
    expect(report.checks[0]).toMatchObject({ name: 'format', ok: false, summary: expect.stringMatching(/7 unreadable/) })
    expect(report.errors).toEqual([
      'line 2: not JSON',
      'line 3: unknown kind "mystery"',
      'line 4: task 0: signature must be 128 lowercase hex characters',
      'line 5: task 0 outputs: tensor "y" has 1 bytes but uint8[4] needs 4',
      'line 6: task 0 outputs: tensor data is not base64',
      'line 7: task must be an index ≥ 0',
      'line 8: an audit line must be carried as a string'
    ])
  })

  it('fails a validly signed receipt of another job, and outputs other than those signed', async () => {
    const report = await check([header, await resultLine(0, { jobId: 'other' }), await resultLine(1, { outputs: [{ ...OUTPUTS[0], data: Uint8Array.of(1, 2, 4) }] })])
    expect(report.checks.find(c => c.name === 'signatures')?.ok).toBe(true)
    expect(report.checks.find(c => c.name === 'job')).toMatchObject({ ok: false, summary: '2 receipts name this job, model and requester, 1 do not' })
    expect(report.checks.find(c => c.name === 'outputs')).toMatchObject({ ok: false, summary: '2 output digests recomputed, 1 mismatched' })
  })

  it('checks input digests when given them, a missing task counting as a mismatch', async () => {
    const v = new ExportVerifier({ verify: () => true, inputs: new Map([[0, tensorsSha256([])]]) })
    for (const line of [header, await resultLine(0), await resultLine(1)]) await v.push(line)
    const report = v.finish()
    expect(report.checks.find(c => c.name === 'inputs')).toMatchObject({ ok: false, summary: '2 input digests recomputed, 1 mismatched or missing' })
    expect(report.errors).toEqual(['line 3: task 1: the inputs file has no such task'])
  })

  it('round-trips bytes through base64, large ones included', () => {
    const big = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 7919) % 256)
    expect(Buffer.from(base64ToBytes(bytesToBase64(big))).equals(big)).toBe(true)
    expect(bytesToBase64(Uint8Array.of(0xfb, 0xff))).toBe(Buffer.from([0xfb, 0xff]).toString('base64'))
    expect(() => base64ToBytes('abc')).toThrow(/not base64/)
  })
})

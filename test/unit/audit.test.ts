/**
 * The audit log as docs/PROTOCOL.md ("Audit log") specifies it: hash-chained JSONL whose hashes
 * are over exact bytes, checked here with node:crypto independently of src/core/audit.ts.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { AUDIT_VERSION, AuditFormatError, AuditLog, AuditVerifier, auditGenesis, verifyAuditLog } from '../../src/core/audit.js'
import type { AuditEntry } from '../../src/core/audit.js'

const sha = (text: string): string => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex')

const WORKER = '12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7'
const ENTRIES: AuditEntry[] = [
  { type: 'job-start', jobId: 'job-1', requester: 'me', model: { sha256: 'ab'.repeat(32), name: 'digits.onnx', size: 100 }, tasks: 2, replicas: 1 },
  { type: 'assign', task: 0, worker: WORKER, taskId: 'job-1/0/0' },
  { type: 'decided', task: 0, workers: [WORKER], outputsSha256: 'cd'.repeat(32) },
  { type: 'note', text: 'ünïcødé ✓ "quoted" \\ and a\nnewline' },
  { type: 'job-end', state: 'done', done: 2, failed: 0 }
]

function writeLog (jobId = 'job-1', entries = ENTRIES): { lines: string[], log: AuditLog } {
  const lines: string[] = []
  let t = 1_700_000_000_000
  const log = new AuditLog({ jobId, sink: (line) => { lines.push(line) }, wallClock: () => t++ })
  for (const e of entries) log.append(e)
  return { lines, log }
}

describe('AuditLog', () => {
  it('writes lines in the specified byte layout: seq, at, type, fields, prev, then the hash of the rest', () => {
    const { lines, log } = writeLog()
    expect(lines).toHaveLength(ENTRIES.length)
    let prev = sha(`${AUDIT_VERSION}\njob-1`)
    expect(auditGenesis('job-1')).toBe(prev)
    lines.forEach((line, i) => {
      expect(line).not.toContain('\n') // one line each: JSON escapes newlines in strings
      const { hash, ...rest } = JSON.parse(line) as Record<string, unknown>
      expect(Object.keys(rest)).toEqual(['seq', 'at', 'type', ...Object.keys(ENTRIES[i]).filter(k => k !== 'type'), 'prev'])
      expect(rest).toMatchObject({ seq: i, at: 1_700_000_000_000 + i, type: ENTRIES[i].type, prev })
      const body = JSON.stringify(rest)
      expect(line).toBe(`${body.slice(0, -1)},"hash":"${sha(body)}"}`)
      expect(hash).toBe(sha(body))
      prev = sha(body)
    })
    expect(log.head).toBe(prev)
    expect(log.seq).toBe(ENTRIES.length)
  })

  it('refuses entry fields the log writes itself, and an entry without a type', () => {
    const log = new AuditLog({ jobId: 'j', sink: () => {} })
    for (const key of ['seq', 'at', 'prev', 'hash']) {
      expect(() => log.append({ type: 'x', [key]: 1 })).toThrow(AuditFormatError)
    }
    expect(() => log.append({ type: '' })).toThrow(/needs a type/)
    expect(log.seq).toBe(0) // nothing was written
  })

  it('continues a resumed job\'s chain from its last line', () => {
    const first = writeLog('job-1', ENTRIES.slice(0, 2)).lines
    const more: string[] = []
    const resumed = new AuditLog({ jobId: 'job-1', sink: (l) => { more.push(l) }, after: first[first.length - 1] })
    expect(resumed.seq).toBe(2)
    for (const e of ENTRIES.slice(2)) resumed.append(e)
    expect(verifyAuditLog([...first, ...more], 'job-1')).toMatchObject({ ok: true, lines: ENTRIES.length, errors: [] })
    expect(() => new AuditLog({ jobId: 'job-1', sink: () => {}, after: '{"seq":1}' })).toThrow(AuditFormatError)
  })
})

describe('verifyAuditLog', () => {
  it('accepts an untouched log and reports its head', () => {
    const { lines, log } = writeLog()
    expect(verifyAuditLog(lines, 'job-1')).toEqual({ ok: true, lines: lines.length, head: log.head, errors: [] })
  })

  it('rejects a single changed character anywhere in any line', () => {
    const { lines } = writeLog()
    let checked = 0
    for (let l = 0; l < lines.length; l++) {
      for (let i = 0; i < lines[l].length; i++) {
        const c = lines[l][i]
        const changed = [...lines]
        changed[l] = lines[l].slice(0, i) + (c === '0' ? '1' : '0') + lines[l].slice(i + 1)
        const report = verifyAuditLog(changed, 'job-1')
        expect(report.ok, `line ${l + 1} char ${i}`).toBe(false)
        expect(report.errors.join('\n')).toMatch(new RegExp(`audit line ${l + 1}:`))
        checked++
      }
    }
    expect(checked).toBeGreaterThan(1000)
  })

  it('rejects a removed, repeated or reordered line, and names it', () => {
    const { lines } = writeLog()
    const removed = lines.filter((_, i) => i !== 2)
    expect(verifyAuditLog(removed, 'job-1').errors[0]).toMatch(/audit line 3: seq is 3, expected 2/)
    expect(verifyAuditLog([...lines.slice(0, 3), lines[2], ...lines.slice(3)], 'job-1').ok).toBe(false)
    expect(verifyAuditLog([lines[1], lines[0], ...lines.slice(2)], 'job-1').ok).toBe(false)
  })

  it('finds a rewritten line even with its own hash recomputed: the next line no longer chains to it', () => {
    const { lines } = writeLog()
    const { hash: _hash, ...rest } = JSON.parse(lines[1]) as Record<string, unknown>
    const body = JSON.stringify({ ...rest, worker: 'someone-else' })
    const forged = [...lines]
    forged[1] = `${body.slice(0, -1)},"hash":"${sha(body)}"}`
    const report = verifyAuditLog(forged, 'job-1')
    expect(report.ok).toBe(false)
    expect(report.errors).toEqual(['audit line 3: prev is not the previous line\'s hash (the chain is broken)'])
  })

  it('a log rewritten from its start is told apart only by its head: the head to publish', () => {
    const { lines, log } = writeLog()
    const rewritten = writeLog('job-1', [ENTRIES[0], { type: 'assign', task: 0, worker: 'liar', taskId: 'job-1/0/0' }]).lines
    const report = verifyAuditLog(rewritten, 'job-1')
    expect(report.ok).toBe(true)
    expect(report.head).not.toBe(log.head)
    expect(verifyAuditLog(lines.slice(0, -1), 'job-1').head).not.toBe(log.head) // a truncated log too
  })

  it('rejects the log of another job, an empty log, and lines that are not log lines', () => {
    const { lines } = writeLog()
    expect(verifyAuditLog(lines, 'job-2').errors).toEqual(['audit line 1: prev is not the previous line\'s hash (the chain is broken)'])
    expect(verifyAuditLog([], 'job-1')).toMatchObject({ ok: false, errors: ['the audit log is empty'] })
    expect(verifyAuditLog(['', 'not json'], 'job-1').errors[0]).toMatch(/audit line 1: does not end in/)
    // Ends like a log line but is not JSON.
    expect(verifyAuditLog([`{"seq":0,,"hash":"${'a'.repeat(64)}"}`], 'job-1').errors).toContain('audit line 1: is not a JSON object')
  })

  it('keeps at most 100 error messages, then counts the rest', () => {
    const v = new AuditVerifier('job-1')
    for (let i = 0; i < 250; i++) v.push('garbage')
    const report = v.finish()
    expect(report.errors).toHaveLength(101)
    expect(report.errors[100]).toBe('… and 150 more')
  })
})

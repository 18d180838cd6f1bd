/**
 * `npm run verify` on an export built from real results: a relay on 127.0.0.1, an onnxruntime-node
 * worker and a requester over direct WebRTC run held-out MNIST digits; their verified receipts,
 * outputs and a hash-chained audit log make the export, and the CLI (a child process, as a user
 * runs it) must accept it untouched and reject it with any single byte changed.
 */
import '../../src/node/polyfill.js'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AuditLog } from '../../src/core/audit.js'
import { exportAuditLine, exportHeaderLine, exportResultLine } from '../../src/core/job-export.js'
import { tensorsSha256 } from '../../src/core/receipt.js'
import { DIGITS_INPUT } from '../../src/models/digits.js'
import { Cleanup, DIGITS_MODEL_FILE, REPO_ROOT, digitsTask, heldOutDigits, startPeer, startRelay, waitForDirect } from './helpers.js'

const VERIFY_ENTRY = fileURLToPath(new URL('../../src/node/verify.ts', import.meta.url))
const JOB = 'verify-job'
const TASKS = 6

interface Run { code: number, stdout: string }

/** Runs the verify CLI as a user would; resolves with its exit status and output. */
async function verifyCli (...args: string[]): Promise<Run> {
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', VERIFY_ENTRY, ...args], { cwd: REPO_ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err == null ? 0 : (err as { code?: unknown }).code
      if (typeof code !== 'number') { reject(new Error(`verify did not exit normally: ${String(err)}\n${stderr}`)); return }
      resolve({ code, stdout: stdout + stderr })
    })
  })
}

describe('npm run verify on an export of real results', () => {
  const cleanup = new Cleanup()
  let dir: string
  let exportFile: string
  let inputsFile: string
  let lines: string[]

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verify-test-'))
    const relay = await startRelay(cleanup)
    const [worker, requester] = await Promise.all([
      startPeer(cleanup, relay.addr),
      startPeer(cleanup, relay.addr, { work: false })
    ])
    await waitForDirect(requester.node, worker.node)

    const digits = heldOutDigits().slice(0, TASKS)
    const requests = digits.map((d, i) => ({ ...digitsTask(`${JOB}/${i}/0`, d.pixels), jobId: JOB }))
    const audit: string[] = []
    const log = new AuditLog({ jobId: JOB, sink: (line) => { audit.push(line) } })
    const model = requests[0].model
    log.append({ type: 'job-start', jobId: JOB, requester: requester.node.peerId.toString(), model, tasks: TASKS, replicas: 1 })
    const results: string[] = []
    for (const [i, request] of requests.entries()) {
      log.append({ type: 'assign', task: i, worker: worker.node.peerId.toString(), taskId: request.taskId })
      const outcome = await requester.tasks.run(worker.node.peerId, request)
      log.append({ type: 'result', task: i, worker: outcome.receipt.worker, receipt: outcome.receipt })
      log.append({ type: 'decided', task: i, workers: [outcome.receipt.worker], outputsSha256: tensorsSha256(outcome.result.outputs) })
      results.push(exportResultLine({ task: i, receipt: outcome.receipt, outputs: outcome.result.outputs }))
    }
    log.append({ type: 'job-end', state: 'done', done: TASKS, failed: 0 })

    lines = [exportHeaderLine({ jobId: JOB, model, requester: requester.node.peerId.toString() }), ...results, ...audit.map(exportAuditLine)]
    exportFile = join(dir, 'export.jsonl')
    await writeFile(exportFile, lines.join('\n') + '\n')
    // The inputs as `npm run infer` takes them: one JSON object per task, keyed by input name.
    inputsFile = join(dir, 'inputs.jsonl')
    await writeFile(inputsFile, digits.map(d => JSON.stringify({ [DIGITS_INPUT]: { dims: [1, 1, 28, 28], data: Array.from(d.pixels) } })).join('\n') + '\n')
  }, 120_000)

  afterAll(async () => {
    await cleanup.run()
    if (dir != null) await rm(dir, { recursive: true, force: true })
  })

  /** Writes the export with one character of line `index` changed at `at` (from its end when negative). */
  async function tampered (name: string, index: number, at: (line: string) => number): Promise<string> {
    const changed = [...lines]
    const line = changed[index]
    const i = at(line)
    changed[index] = line.slice(0, i) + (line[i] === '0' ? '1' : '0') + line.slice(i + 1)
    expect(changed[index]).not.toBe(line)
    const file = join(dir, `${name}.jsonl`)
    await writeFile(file, changed.join('\n') + '\n')
    return file
  }

  it('accepts the untouched export, with the model and the inputs', async () => {
    const run = await verifyCli(exportFile, '--model', DIGITS_MODEL_FILE, '--inputs', inputsFile)
    expect(run.stdout).toMatch(new RegExp(`ok {3}signatures: ${TASKS * 2} receipt signatures checked, 0 invalid`)) // result lines and audit result entries
    expect(run.stdout).toMatch(new RegExp(`ok {3}outputs: ${TASKS} output digests recomputed, 0 mismatched`))
    expect(run.stdout).toMatch(/ok {3}model: the model file hashes to/)
    expect(run.stdout).toMatch(new RegExp(`ok {3}inputs: ${TASKS} input digests recomputed, 0 mismatched`))
    expect(run.stdout).toMatch(new RegExp(`ok {3}audit: ${TASKS * 3 + 2} lines, chain intact`))
    expect(run.stdout).toContain('checks out')
    expect(run.code).toBe(0)
  }, 90_000)

  it('rejects the export with one byte changed in an output, a signature or an audit line', async () => {
    const resultLine = 1
    const auditLine = lines.length - 3
    const [output, signature, audit] = await Promise.all([
      // Inside the first output's base64 data.
      tampered('output', resultLine, (l) => l.indexOf('"data":"') + 20).then(async f => await verifyCli(f)),
      tampered('signature', resultLine, (l) => l.indexOf('"signature":"') + 40).then(async f => await verifyCli(f)),
      // Inside an audit line's timestamp, far from its hash.
      tampered('audit', auditLine, (l) => l.indexOf('\\"at\\":') + 10).then(async f => await verifyCli(f))
    ])
    expect(output.stdout).toMatch(/FAIL outputs: \d+ output digests recomputed, 1 mismatched/)
    expect(output.stdout).toMatch(/line 2: task 0: the outputs hash to/)
    expect(signature.stdout).toMatch(/FAIL signatures: \d+ receipt signatures checked, 1 invalid/)
    expect(audit.stdout).toMatch(/FAIL audit: /)
    expect(audit.stdout).toMatch(/its hash does not match its content/)
    for (const run of [output, signature, audit]) {
      expect(run.stdout).toContain('does NOT check out')
      expect(run.code).toBe(1)
    }
  }, 90_000)

  it('rejects a model file with one byte changed, and inputs other than those the receipts were signed over', async () => {
    const model = new Uint8Array(await readFile(DIGITS_MODEL_FILE))
    model[model.length - 16] ^= 1
    const otherModel = join(dir, 'other.onnx')
    await writeFile(otherModel, model)
    const otherInputs = join(dir, 'other-inputs.jsonl')
    const text = await readFile(inputsFile, 'utf8')
    await writeFile(otherInputs, text.split('\n').reverse().join('\n'))
    const [modelRun, inputs] = await Promise.all([
      verifyCli(exportFile, '--model', otherModel),
      verifyCli(exportFile, '--model', DIGITS_MODEL_FILE, '--inputs', otherInputs)
    ])
    expect(modelRun.stdout).toMatch(/FAIL model: the model file hashes to [0-9a-f]{64}, the job names/)
    expect(inputs.stdout).toMatch(/FAIL inputs: \d+ input digests recomputed, [1-9]\d* mismatched/)
    expect(modelRun.code).toBe(1)
    expect(inputs.code).toBe(1)
  }, 90_000)

  it('exits 2 on bad arguments', async () => {
    const run = await verifyCli(exportFile, '--inputs', inputsFile)
    expect(run.stdout).toMatch(/--inputs needs --model/)
    expect(run.code).toBe(2)
  }, 60_000)
})

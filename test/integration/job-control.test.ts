/**
 * Job control from the command line against a real relay and one real Node worker (a child
 * process, as `npm run worker` starts it): a job that cannot progress says why and the command
 * gives up with status 1 after --give-up-after; `submit --cancel` ends a job that another
 * requester is running; the worker's start-up line states the slots its advert carries; and
 * `npm run infer` writes only results to a redirected stdout with -s, and says on stderr that
 * npm's banner is there without it.
 */
import '../../src/node/polyfill.js'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { connect } from '../../src/index.js'
import { submitMain } from '../../src/node/submit.js'
import { Cleanup, DIGITS_MODEL_FILE, REPO_ROOT, WAIT_MS, heldOutDigits, spawnWorker, startRelay, withTimeout } from './helpers.js'
import type { CliIo } from '../../src/node/cli.js'
import type { Requester } from '../../src/index.js'

const cleanup = new Cleanup()
let relayAddr: string
let workerId: string
let workerLines: string[]
let dir: string
let net: Requester

function capture (): { io: CliIo, stdout: () => string, stderr: () => string, lines: string[] } {
  const out: string[] = []
  const lines: string[] = []
  return {
    io: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => lines.push(...t.split('\n').filter(l => l !== '')) }, env: {} },
    stdout: () => out.join(''),
    stderr: () => lines.join('\n'),
    lines
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p2p-job-control-'))
  cleanup.add('temporary directory', async () => { await rm(dir, { recursive: true, force: true }) })
  relayAddr = (await startRelay(cleanup)).addr
  const worker = await spawnWorker(cleanup, relayAddr, ['--slots', '1', '--key', join(dir, 'worker.key'), '--model-cache', join(dir, 'models')])
  workerId = worker.peerId
  workerLines = worker.lines
  await worker.waitForLine(/^worker: serving with /)
  net = await connect({ relays: relayAddr, dataDir: join(dir, 'requester') })
  cleanup.add('requester', async () => { await net.close() })
  await net.waitForWorkers(1, { timeoutMs: WAIT_MS })
}, 60_000)

afterAll(async () => { await cleanup.run() })

describe('job control', () => {
  it('says at once why a replicas 3 job cannot progress with one worker, and gives up with status 1 after --give-up-after', async () => {
    const c = capture()
    const status = await submitMain(['--relay', relayAddr, '--replicas', '3', '--limit', '20', '--give-up-after', '2', '--store', join(dir, 'jobs'), '--key', join(dir, 'submit.key')], c.io)
    expect(status).toBe(1)
    const first = c.lines.findIndex(l => l.includes('cannot progress'))
    expect(c.lines[first]).toMatch(/^submit: cannot progress: needs 3 different workers, 1 available; giving up in \d+ s unless that changes \(--give-up-after 2\)$/)
    expect(c.lines.at(-1)).toMatch(/^submit: gave up: needs 3 different workers, 1 available \(no progress for 2 s\); the job is saved: continue it with --resume \S+, or end it with --cancel \S+$/)
    // The summary still went to stdout, with the compute the job used.
    expect(c.stdout()).toMatch(/compute {5}\d+\.\d s of inference/)
  }, 60_000)

  it('ends a job another requester is running with submit --cancel; the running one stops there, cancelled', async () => {
    const job = await net.submit('digits', { dataset: 'mnist-test', limit: 30 }, { replicas: 3 })
    // Blocked with every first replica back: running, idle and writing nothing — the moment a cancel from elsewhere matters.
    await withTimeout(new Promise<void>(resolve => {
      const check = (): void => {
        const p = job.progress
        if (p.blocked != null && p.inFlight === 0 && (p.perPeer[workerId] ?? 0) >= 30) { job.removeEventListener('progress', check); resolve() }
      }
      job.addEventListener('progress', check)
      check()
    }), WAIT_MS, () => `the job to be blocked and idle (${JSON.stringify(job.progress)})`)
    expect(job.blocked).toMatchObject({ code: 'too-few-workers', message: 'needs 3 different workers, 1 available' })
    // …and its last write done (every result in the stored audit log): nothing it does later would reveal the cancel.
    await vi.waitFor(async () => {
      const audit = (await net.exportLines(job.id)).map(l => JSON.parse(l) as { kind: string, line?: string }).filter(l => l.kind === 'audit')
      const results = audit.filter(l => (JSON.parse(l.line!) as { type: string }).type === 'result')
      expect(results.length).toBeGreaterThanOrEqual(30)
    }, { timeout: WAIT_MS, interval: 100 })
    const c = capture()
    expect(await submitMain(['--cancel', job.id, '--store', join(dir, 'requester', 'jobs')], c.io)).toBe(0)
    expect(c.stdout()).toMatch(new RegExp(`^job ${job.id}: cancelled; \\d+/30 result\\(s\\) kept`))
    const final = await withTimeout(job.done, WAIT_MS, 'the running job to see the cancel')
    expect(final.state).toBe('cancelled')
    expect((await net.job(job.id)).meta.state).toBe('cancelled')
  }, 60_000)

  it('has the worker state the slots its advert carries (the peer list shows the advert\'s)', async () => {
    // What the peer list and requesters read: the advert's slots.
    // Its execution slots: the advert's slots less its queued places (a batch's worth once its tasks are quick, as here after the digits above).
    const w = net.workers().find(w => w.peerId === workerId)!
    const line = workerLines.find(l => l.startsWith('worker: serving with '))!
    expect(Number(line.match(/\((\d+) running at a time/)?.[1])).toBe(w.slots - w.queueDepth)
    expect(line).toMatch(/\(1 running at a time, 1 queued so the next task starts without a network round trip\)/)
  })

  it('writes only results to a redirected stdout with npm run -s, and warns about the banner without -s', async () => {
    const inputs = join(dir, 'inputs.jsonl')
    const digits = heldOutDigits().slice(0, 3)
    await writeFile(inputs, digits.map(d => JSON.stringify({ input: { dims: [1, 1, 28, 28], data: [...d.pixels] } })).join('\n') + '\n')
    const args = ['--', '--relay', relayAddr, '--model', DIGITS_MODEL_FILE, '--inputs', inputs]
    const silent = await npmRun(['run', '-s', 'infer', ...args])
    expect(silent.code).toBe(0)
    const lines = silent.stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(3)
    for (const [i, l] of lines.entries()) expect(JSON.parse(l)).toMatchObject({ index: i })
    expect(silent.stderr).not.toMatch(/npm printed its banner/)

    // Without -s (its usage is enough: the banner comes first whatever the command does).
    const loud = await npmRun(['run', 'infer', '--', '--help'])
    expect(loud.code).toBe(0)
    expect(loud.stdout).toMatch(/^\s*> \S+ infer/)
    expect(loud.stderr).toMatch(/^infer: npm printed its banner .*npm run -s infer/m)
  }, 90_000)
})

/** Runs npm with stdout and stderr piped (not a terminal), as `> out.jsonl` would. */
async function npmRun (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  // npm test sets these for its own script: the child npm must see a plain start, as a user's shell gives it.
  const env = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith('npm_')) delete env[k]
  const child = spawn('npm', args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  cleanup.add(`npm ${args.slice(0, 3).join(' ')}`, async () => { if (child.exitCode == null && child.signalCode == null) child.kill('SIGTERM') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await withTimeout(new Promise<number | null>(resolve => { child.once('close', resolve) }), 60_000, `npm ${args.join(' ')}`)
  return { code, stdout, stderr }
}

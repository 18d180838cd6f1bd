/**
 * The library's examples (examples/library/) run as a reader runs them: child processes started
 * with `node --import tsx`, importing the package by its own name ('p2p-ai-agents'), against a
 * real relay and real onnxruntime-node workers over direct WebRTC. Each must print what its
 * header promises: one verified task, a batch in input order (and cancelled by Ctrl-C through its
 * AbortSignal), a job on disk stopped by Ctrl-C and resumed by id from a new process, and the text
 * of sample pages.
 */
import '../../src/node/polyfill.js'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Cleanup, REPO_ROOT, TaskValve, heldOutDigits, startPeer, startRelay, withTimeout } from './helpers.js'

const SAMPLES_DIR = fileURLToPath(new URL('../../public/samples/ocr/', import.meta.url))
/** Bound for one example to finish, and for a test (two examples at most): generous, this 2-core box may be shared with other suites. */
const RUN_MS = 150_000
const TEST_MS = 2 * RUN_MS + 30_000

interface Sample { file: string, lines: string[] }

interface ExampleRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string[]
  stderr: string[]
}

/**
 * Runs examples/library/<name> with `args`; `onLine` sees each stdout line as it comes (and may
 * signal the child). Resolves once the process has exited and its output is read.
 */
async function runExample (cleanup: Cleanup, name: string, args: string[], onLine?: (line: string, all: string[], interrupt: () => void) => void): Promise<ExampleRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/library/${name}`, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  cleanup.add(`example ${name}`, () => { if (child.exitCode == null && child.signalCode == null) child.kill('SIGKILL') })
  const stdout: string[] = []
  const stderr: string[] = []
  let interrupted = false
  const interrupt = (): void => {
    if (interrupted) return
    interrupted = true
    child.kill('SIGINT')
  }
  createInterface({ input: child.stdout }).on('line', line => {
    stdout.push(line)
    onLine?.(line, stdout, interrupt)
  })
  createInterface({ input: child.stderr }).on('line', line => { stderr.push(line) })
  // 'close', not 'exit': by then every line it wrote has been read.
  const closed = new Promise<ExampleRun>(resolve => { child.once('close', (code, signal) => { resolve({ code, signal, stdout, stderr }) }) })
  return await withTimeout(closed, RUN_MS, () => `example ${name} ${args.join(' ')} to finish; stdout:\n${stdout.slice(-10).join('\n')}\nstderr:\n${stderr.slice(-10).join('\n')}`)
}

const cleanup = new Cleanup()
let relayAddr: string
let dir: string
const digits = heldOutDigits()
/** On every worker: lets the Ctrl-C tests stop a run with tasks surely left. */
const valve = new TaskValve()

/** A JSONL file of `n` held-out digits as the examples (and `npm run infer`) take them. */
async function digitsFile (n: number): Promise<string> {
  const file = join(dir, `digits-${n}.jsonl`)
  await writeFile(file, Array.from({ length: n }, (_, i) => JSON.stringify({ input: { dims: [1, 1, 28, 28], data: Array.from(digits[i % digits.length]!.pixels) } })).join('\n') + '\n')
  return file
}

const argmax = (probs: number[]): number => probs.indexOf(Math.max(...probs))

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p2p-examples-'))
  cleanup.add('temp dir', async () => { await rm(dir, { recursive: true, force: true }) })
  relayAddr = (await startRelay(cleanup)).addr
  await startPeer(cleanup, relayAddr, { queue: { slots: 2 }, wrapExecutor: valve.wrap })
  await startPeer(cleanup, relayAddr, { queue: { slots: 2 }, wrapExecutor: valve.wrap })
})

afterAll(async () => { await cleanup.run() })

describe('examples/library', () => {
  it('run.ts: one task on the built-in digits model, verified, reads the drawn 7', async () => {
    const run = await runExample(cleanup, 'run.ts', ['--relay', relayAddr])
    expect(run.code, run.stderr.join('\n')).toBe(0)
    expect(run.stdout).toEqual([expect.stringMatching(/^digit 7 \(p 0\.\d{3}\), computed by 12D3Koo\w+$/)])
  }, TEST_MS)

  it('map.ts: a JSONL file through the model with replicas 2, results in input order, each agreed by two workers', async () => {
    const n = 60
    const run = await runExample(cleanup, 'map.ts', ['--relay', relayAddr, '--model', 'digits', '--inputs', await digitsFile(n), '--replicas', '2'])
    expect(run.code, run.stderr.join('\n')).toBe(0)
    const results = run.stdout.map(l => JSON.parse(l) as { index: number, outputs: Array<{ name: string, data: number[] }>, agreedBy: string[] })
    expect(results.map(r => r.index)).toEqual([...Array(n).keys()])
    let right = 0
    for (const r of results) {
      expect(new Set(r.agreedBy).size).toBe(2)
      if (argmax(r.outputs.find(t => t.name === 'probs')!.data) === digits[r.index]!.label) right++
    }
    expect(right / n).toBeGreaterThan(0.9) // the model scores about 98 % on held-out digits
    expect(run.stderr.at(-1)).toMatch(new RegExp(`^${n}/${n} done`))
  }, TEST_MS)

  it('map.ts: Ctrl-C aborts the batch through its AbortSignal; what was printed is a prefix in input order', async () => {
    const n = 3000
    // From the 10th line on, the workers start no task until the valve opens: the batch cannot end
    // before the Ctrl-C lands, however fast the machine.
    let run: ExampleRun
    try {
      run = await runExample(cleanup, 'map.ts', ['--relay', relayAddr, '--inputs', await digitsFile(n)], (_, all, interrupt) => { if (all.length >= 10) { valve.close(); interrupt() } })
    } finally {
      valve.open()
    }
    expect(run.code, run.stderr.join('\n')).toBe(130)
    expect(run.stderr).toContain('cancelled')
    const indices = run.stdout.map(l => (JSON.parse(l) as { index: number }).index)
    expect(indices.length).toBeGreaterThanOrEqual(10)
    expect(indices.length).toBeLessThan(n)
    expect(indices).toEqual([...Array(indices.length).keys()])
  }, TEST_MS)

  it('job.ts: a job on disk stopped by Ctrl-C, then resumed by id from a new process, ends with every task', async () => {
    const total = 3000
    const data = join(dir, 'job-data')
    // Once it says 200 are done, the workers start no task until the valve opens: the job cannot end
    // before the Ctrl-C lands, however fast the machine.
    let first: ExampleRun
    try {
      first = await runExample(cleanup, 'job.ts', ['--relay', relayAddr, '--data', data, '--limit', String(total)], (line, _, interrupt) => {
        const m = /^(\d+)\/\d+$/.exec(line)
        if (m != null && Number(m[1]) >= 200) { valve.close(); interrupt() }
      })
    } finally {
      valve.open()
    }
    expect(first.code, first.stderr.join('\n')).toBe(130)
    const id = /^job (\S+)$/.exec(first.stdout[0]!)?.[1]
    expect(id).toBeDefined()
    const stopped = /^\w+ at (\d+)\/3000; continue with --resume (\S+)$/.exec(first.stdout.at(-1)!)
    expect(stopped?.[2]).toBe(id)
    expect(Number(stopped![1])).toBeLessThan(total)

    const second = await runExample(cleanup, 'job.ts', ['--relay', relayAddr, '--data', data, '--resume', id!])
    expect(second.code, second.stderr.join('\n')).toBe(0)
    expect(second.stdout[0]).toBe(`job ${id}`)
    const done = /^done: 3000 tasks, (\d+) decided before this run$/.exec(second.stdout.at(-2)!)
    expect(done, second.stdout.join('\n')).not.toBeNull()
    expect(Number(done![1])).toBeGreaterThanOrEqual(200)
    // The first 3000 of the interleaved test set hold about 300 of each digit; the model is right on about 98 %.
    const counts = [...second.stdout.at(-1)!.matchAll(/(\d)×(\d+)/g)].map(m => Number(m[2]))
    expect(counts).toHaveLength(10)
    expect(counts.reduce((a, b) => a + b, 0)).toBe(total)
    for (const c of counts) expect(c).toBeGreaterThan(250)
  }, TEST_MS)

  it('ocr.ts: reads sample pages to the exact text they were rendered from', async () => {
    const samples = JSON.parse(await readFile(SAMPLES_DIR + 'samples.json', 'utf8')) as Sample[]
    const files = ['note.png', 'settings.png']
    const run = await runExample(cleanup, 'ocr.ts', ['--relay', relayAddr, ...files.map(f => SAMPLES_DIR + f)])
    expect(run.code, run.stderr.join('\n')).toBe(0)
    for (const file of files) {
      const start = run.stdout.indexOf(`# ${SAMPLES_DIR + file}`)
      expect(start, `${file}'s heading`).toBeGreaterThanOrEqual(0)
      const boxes = run.stdout.indexOf('boxes:', start)
      expect(run.stdout.slice(start + 1, boxes)).toEqual(samples.find(s => s.file === file)!.lines)
      const next = run.stdout.findIndex((l, i) => i > boxes && l.startsWith('# '))
      const boxLines = run.stdout.slice(boxes + 1, next === -1 ? undefined : next)
      expect(boxLines.length).toBeGreaterThan(0)
      for (const l of boxLines) expect(l).toMatch(/^ {2}[01]\.\d\d( -?\d+,-?\d+){4} \S/)
    }
  }, TEST_MS)
})

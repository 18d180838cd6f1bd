/**
 * The command-line requesters as functions (src/node/cli.ts, submit.ts, infer.ts, ocr.ts), run
 * in-process with captured streams: the shared flags and their checks, exit statuses, and that
 * every bad argument, model, input line or page is refused with status 2 before any connection
 * is made (the relay address given here has nothing listening behind it).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CliExit, commonArgs, exitStatus, isEntryPoint, npmBannerWarning, runCommand } from '../../src/node/cli.js'
import { FileJobStore } from '../../src/node/file-job-store.js'
import { RequesterError } from '../../src/node/requester-errors.js'
import { submitMain } from '../../src/node/submit.js'
import { inferMain } from '../../src/node/infer.js'
import { ocrMain } from '../../src/node/ocr.js'
import { dynamicAddMul } from '../../src/models/test-models.js'
import type { CliIo } from '../../src/node/cli.js'

/** A well-formed relay multiaddr with nothing listening: any attempt to connect would fail with status 1, not 2. */
const RELAY = '/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'

function capture (env: Record<string, string> = {}, interrupt?: AbortSignal): { io: CliIo, stdout: () => string, stderr: () => string } {
  const out: string[] = []
  const err: string[] = []
  return {
    io: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) }, env, interrupt },
    stdout: () => out.join(''),
    stderr: () => err.join('')
  }
}

function exitOf (fn: () => unknown): CliExit {
  try {
    fn()
  } catch (err) {
    if (err instanceof CliExit) return err
    throw err
  }
  throw new Error('did not fail')
}

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'p2p-cli-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('common flags', () => {
  const usage = 'usage: test'

  it('takes --relay, else RELAY_ADDR (comma-separated), and turns the rest into numbers', () => {
    expect(commonArgs({ relay: [RELAY], replicas: '2', workers: '3', 'wait-timeout': '1.5', 'give-up-after': '2.5', 'spot-check': '0.2', diversity: 'strict' }, { RELAY_ADDR: 'ignored' }, usage))
      .toEqual({ relays: [RELAY], replicas: 2, workers: 3, waitTimeoutMs: 1500, giveUpAfterMs: 2500, spotCheck: 0.2, diversity: 'strict' })
    expect(commonArgs({ relay: [RELAY] }, {}, usage).giveUpAfterMs).toBe(60_000)
    expect(commonArgs({}, { RELAY_ADDR: `${RELAY}, ${RELAY}` }, usage).relays).toEqual([RELAY, RELAY])
  })

  it('refuses each bad flag with status 2 and a one-line reason', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{}, /^--relay is required \(or set RELAY_ADDR\)\nusage: test$/],
      [{ relay: ['/ip4/127.0.0.1/tcp/9/ws'] }, /needs \/p2p\/<relay peer id>/],
      [{ relay: [RELAY], replicas: '4' }, /^--replicas must be 1, 2 or 3$/],
      [{ relay: [RELAY], workers: '-1' }, /^--workers must be a whole number/],
      [{ relay: [RELAY], 'wait-timeout': '0' }, /^--wait-timeout must be a number of seconds above 0/],
      [{ relay: [RELAY], 'give-up-after': '-1' }, /^--give-up-after must be a number of seconds ≥ 0/],
      [{ relay: [RELAY], 'give-up-after': 'soon' }, /^--give-up-after must be a number of seconds ≥ 0/],
      [{ relay: [RELAY], 'spot-check': '1.5' }, /^--spot-check must be a share between 0 and 1/],
      [{ relay: [RELAY], diversity: 'loose' }, /^--diversity must be one of standard, strict, lan/]
    ]
    for (const [values, message] of cases) {
      const exit = exitOf(() => commonArgs(values, {}, usage))
      expect(exit.status).toBe(2)
      expect(exit.message).toMatch(message)
    }
  })
})

describe('exit statuses', () => {
  it('maps the library\'s error codes: bad input 2, a run that failed 1, interrupted 130', () => {
    expect(exitStatus(new RequesterError('bad-input', 'x'))).toBe(2)
    expect(exitStatus(new RequesterError('unknown-job', 'x'))).toBe(2)
    expect(exitStatus(new RequesterError('relay-unreachable', 'x'))).toBe(1)
    expect(exitStatus(new RequesterError('no-workers', 'x'))).toBe(1)
    expect(exitStatus(new RequesterError('cancelled', 'x'))).toBe(130)
    expect(exitStatus(new CliExit(2, 'x'))).toBe(2)
    expect(exitStatus(new Error('x'))).toBe(1)
  })

  it('prints a failure as "<command>: <message>" on stderr', async () => {
    const c = capture()
    expect(await runCommand('demo', c.io, async () => { throw new RequesterError('no-workers', 'only 0 worker(s) joined') })).toBe(1)
    expect(c.stderr()).toBe('demo: only 0 worker(s) joined\n')
    expect(c.stdout()).toBe('')
  })

  it('is the entry point only for the file node was started with', () => {
    expect(isEntryPoint(import.meta.url)).toBe(false)
    expect(isEntryPoint(new URL('../../src/node/submit.ts', import.meta.url).href)).toBe(false)
  })
})

describe('the commands, in-process', () => {
  it('print their usage on --help (status 0) and refuse an unknown flag with it (status 2)', async () => {
    for (const [main, name] of [[submitMain, 'submit'], [inferMain, 'infer'], [ocrMain, 'ocr']] as const) {
      const help = capture()
      expect(await main(['--help'], help.io)).toBe(0)
      expect(help.stdout()).toMatch(new RegExp(`^usage: ${name} --relay <multiaddr>`))
      const bad = capture()
      expect(await main(['--relay', RELAY, '--no-such-flag'], bad.io)).toBe(2)
      expect(bad.stderr()).toMatch(new RegExp(`^${name}: Unknown option '--no-such-flag'[^]*usage: ${name} `))
    }
  })

  it('submit refuses another model, a bad --limit and an unknown dataset before connecting', async () => {
    for (const [args, message] of [
      [['--model', 'resnet'], /^submit: unknown model "resnet" \(available: digits\)\n$/],
      [['--limit', '0'], /^submit: --limit must be a whole number above 0, got "0"\n$/],
      [['--dataset', 'cifar'], /^submit: .*cifar/]
    ] as const) {
      const c = capture({ RELAY_ADDR: RELAY })
      expect(await submitMain([...args], c.io)).toBe(2)
      expect(c.stderr()).toMatch(message)
    }
  })

  it('infer checks every input line against the model before connecting, naming the line at fault', async () => {
    const model = join(dir, 'add-mul.onnx')
    await writeFile(model, dynamicAddMul())
    const inputs = join(dir, 'inputs.jsonl')
    await writeFile(inputs, '{"a": [[1]], "b": [[1]]}\n{"a": [[1]], "b": [[1]]}\n{"a": [1, 2], "b": [[1, 2]]}\n')
    const c = capture()
    expect(await inferMain(['--relay', RELAY, '--model', model, '--inputs', inputs], c.io)).toBe(2)
    expect(c.stderr()).toMatch(/^infer: .*inputs\.jsonl:3: input 'a': expected 2 dimensions/)
  })

  it('infer refuses a file that is not a model and an empty inputs file', async () => {
    const notModel = join(dir, 'not-a-model.onnx')
    await writeFile(notModel, 'hello')
    const empty = join(dir, 'empty.jsonl')
    await writeFile(empty, '\n')
    const a = capture()
    expect(await inferMain(['--relay', RELAY, '--model', notModel, '--inputs', empty], a.io)).toBe(2)
    expect(a.stderr()).toMatch(/^infer: not-a-model\.onnx: not a readable ONNX model/)
    const model = join(dir, 'add-mul.onnx')
    await writeFile(model, dynamicAddMul())
    const b = capture()
    expect(await inferMain(['--relay', RELAY, '--model', model, '--inputs', empty], b.io)).toBe(2)
    expect(b.stderr()).toBe(`infer: ${empty} has no input lines\n`)
  })

  it('ocr reads every page before connecting: a missing or non-PNG file is status 2', async () => {
    const text = join(dir, 'page.png')
    await writeFile(text, 'not a png')
    const a = capture()
    expect(await ocrMain(['--relay', RELAY, join(dir, 'missing.png')], a.io)).toBe(2)
    expect(a.stderr()).toMatch(/^ocr: cannot read .*missing\.png: ENOENT/)
    const b = capture()
    expect(await ocrMain(['--relay', RELAY, text], b.io)).toBe(2)
    expect(b.stderr()).toMatch(/^ocr: .*page\.png\b.*\bPNG\b/)
    const c = capture()
    expect(await ocrMain(['--relay', RELAY], c.io)).toBe(2)
    expect(c.stderr()).toMatch(/^ocr: no pages given\nusage: ocr/)
  })
})

describe('npm banner', () => {
  // npm 11 passes its log level on as npm_config_loglevel ('silent' with -s) and the script's name as npm_lifecycle_event.
  it('warns only when started by npm run <command> without -s and stdout is not a terminal', () => {
    const out = { write: () => true }
    expect(npmBannerWarning('infer', { env: { npm_lifecycle_event: 'infer' }, stdout: out })).toMatch(/npm run -s infer/)
    expect(npmBannerWarning('infer', { env: { npm_lifecycle_event: 'infer', npm_config_loglevel: 'warn' }, stdout: out })).toMatch(/banner/)
    expect(npmBannerWarning('infer', { env: { npm_lifecycle_event: 'infer', npm_config_loglevel: 'silent' }, stdout: out })).toBeUndefined()
    expect(npmBannerWarning('infer', { env: { npm_lifecycle_event: 'infer' }, stdout: { ...out, isTTY: true } })).toBeUndefined()
    // Spawned by another script (npm test): that script's banner is not in this command's output.
    expect(npmBannerWarning('infer', { env: { npm_lifecycle_event: 'test' }, stdout: out })).toBeUndefined()
    expect(npmBannerWarning('infer', { env: {}, stdout: out })).toBeUndefined()
  })

  it('says so on stderr, never on stdout', async () => {
    const c = capture({ npm_lifecycle_event: 'submit' })
    expect(await submitMain(['--help'], c.io)).toBe(0)
    expect(c.stderr()).toMatch(/^submit: npm printed its banner .*npm run -s submit/)
    expect(c.stdout()).toMatch(/^usage: submit/)
  })
})

describe('submit --cancel', () => {
  const job = (jobId: string, state: 'running' | 'done') => ({ jobId, modelId: 'digits', model: { sha256: 'a'.repeat(64), size: 1, name: 'digits' }, datasetId: 'mnist-test', taskCount: 4, replicas: 3, adaptive: false, state, createdAt: 1, updatedAt: 1 })

  it('ends a stored job for good without a relay, and refuses an unknown or finished one', async () => {
    const store = join(dir, 'cancel-jobs')
    const jobs = new FileJobStore(store)
    await jobs.putJob(job('j-run', 'running'))
    await jobs.putJob(job('j-done', 'done'))
    const ok = capture()
    expect(await submitMain(['--cancel', 'j-run', '--store', store], ok.io)).toBe(0)
    expect(ok.stdout()).toMatch(/^job j-run: cancelled; 0\/4 result\(s\) kept/)
    expect((await new FileJobStore(store).getJob('j-run'))!.state).toBe('cancelled')
    const again = capture()
    expect(await submitMain(['--cancel', 'j-run', '--store', store], again.io)).toBe(1)
    expect(again.stderr()).toMatch(/job j-run is already cancelled/)
    const done = capture()
    expect(await submitMain(['--cancel', 'j-done', '--store', store], done.io)).toBe(1)
    expect(done.stderr()).toMatch(/already done/)
    const unknown = capture()
    expect(await submitMain(['--cancel', 'nope', '--store', store], unknown.io)).toBe(2)
    expect(unknown.stderr()).toMatch(/no job nope/)
  })
})

/**
 * What the command-line requesters (`npm run submit`, `infer`, `ocr`) share, so each is a thin
 * layer over the library: the common flags (--relay / RELAY_ADDR, --replicas, --workers,
 * --wait-timeout, --give-up-after, --spot-check, --diversity, --help), connecting, waiting for
 * workers, saying why a job cannot progress, Ctrl-C, and one way to fail with an exit status
 * (0 ok, 1 a run that did not succeed, gave up or no relay, 2 bad arguments or input,
 * 130 interrupted).
 *
 * Only results (or a command's summary) go to stdout; messages go to stderr. `npm run <command>`
 * without -s prints npm's own banner into stdout too: a command started that way with stdout
 * redirected says so on stderr.
 *
 * Each command is a function `(argv, io) => Promise<exit status>` that never exits the process
 * itself, so tests run it in-process with their own streams and interrupt signal; runIfMain makes
 * it the process's command when its file is the entry point.
 */
import './polyfill.js'
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { connect } from './requester.js'
import { RequesterError } from './requester-errors.js'
import { RELAY_OPTION, relayList } from './relay-args.js'
import { DEFAULT_SPOT_CHECK } from '../core/verification.js'
import { DIVERSITY_MODES, isDiversityMode } from '../core/diversity.js'
import type { ParseArgsConfig } from 'node:util'
import type { ConnectOptions, Requester } from './requester.js'
import type { RequesterErrorCode } from './requester-errors.js'
import type { DiversityMode } from '../core/diversity.js'
import type { JobBlocked } from '../core/job-blocked.js'

export interface CliStream {
  write: (text: string) => unknown
  isTTY?: boolean
}

export interface CliIo {
  stdout: CliStream
  stderr: CliStream
  env: Record<string, string | undefined>
  /** Aborted on Ctrl-C or SIGTERM: the command stops cleanly and answers 130. */
  interrupt?: AbortSignal
}

export type CliMain = (argv: string[], io?: CliIo) => Promise<number>

export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2
export const EXIT_INTERRUPTED = 130

/** A command's end with a one-line reason (printed as `<command>: <message>`) and an exit status. */
export class CliExit extends Error {
  constructor (readonly status: number, message: string) {
    super(message)
    this.name = 'CliExit'
  }
}

export function fail (message: string, status = EXIT_FAILED): never {
  throw new CliExit(status, message)
}

export function processIo (interrupt?: AbortSignal): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, interrupt }
}

/** A command's own output lines (stdout) and messages (stderr). */
export class Cli {
  constructor (readonly name: string, readonly io: CliIo) {}

  out (line: string): void {
    this.io.stdout.write(line + '\n')
  }

  err (line: string): void {
    this.io.stderr.write(line + '\n')
  }

  /** A message prefixed with the command's name. */
  say (line: string): void {
    this.err(`${this.name}: ${line}`)
  }

  get interrupted (): boolean {
    return this.io.interrupt?.aborted === true
  }

  /** Calls `stop` once on Ctrl-C (at once if it already came); returns the detach. */
  onInterrupt (stop: () => void): () => void {
    const signal = this.io.interrupt
    if (signal == null) return () => {}
    if (signal.aborted) {
      stop()
      return () => {}
    }
    signal.addEventListener('abort', stop, { once: true })
    return () => { signal.removeEventListener('abort', stop) }
  }
}

const USAGE_EXIT: ReadonlySet<RequesterErrorCode> = new Set(['bad-request', 'bad-input', 'bad-model', 'bad-image', 'unknown-model', 'unknown-job', 'too-large'])

/** The exit status for an error a command did not handle itself. */
export function exitStatus (err: unknown): number {
  if (err instanceof CliExit) return err.status
  if (err instanceof RequesterError) return err.code === 'cancelled' ? EXIT_INTERRUPTED : USAGE_EXIT.has(err.code) ? EXIT_USAGE : EXIT_FAILED
  return EXIT_FAILED
}

/** Runs a command's body; a failure is printed as `<name>: <message>` and answered with its exit status. */
export async function runCommand (name: string, io: CliIo, body: (cli: Cli) => Promise<number>): Promise<number> {
  const cli = new Cli(name, io)
  const banner = npmBannerWarning(name, io)
  if (banner != null) cli.say(banner)
  try {
    return await body(cli)
  } catch (err) {
    cli.say(err instanceof Error ? err.message : String(err))
    return exitStatus(err)
  }
}

/**
 * npm (11) prints a banner ("> pkg@version infer" and the command line) on stdout before a script
 * runs, unless its log level is silent (`npm run -s`), which it passes on as npm_config_loglevel.
 * Started by `npm run <name>` that way with stdout not a terminal (redirected to a file or a
 * pipe), the results there begin with that banner: say so, once, on stderr.
 */
export function npmBannerWarning (name: string, io: Pick<CliIo, 'env' | 'stdout'>): string | undefined {
  if (io.env.npm_lifecycle_event !== name || io.env.npm_config_loglevel === 'silent' || io.stdout.isTTY === true) return undefined
  return `npm printed its banner ("> …${name}" lines) into stdout ahead of this command's output; for clean output use npm run -s ${name} -- … (or node --import tsx src/node/${name}.ts …)`
}

/** Default for --give-up-after: seconds a job may be unable to progress before a command stops. */
export const DEFAULT_GIVE_UP_S = 60

export const COMMON_OPTIONS = {
  relay: RELAY_OPTION,
  replicas: { type: 'string', default: '1' },
  workers: { type: 'string', default: '1' },
  'wait-timeout': { type: 'string', default: '30' },
  'give-up-after': { type: 'string', default: String(DEFAULT_GIVE_UP_S) },
  'spot-check': { type: 'string', default: String(DEFAULT_SPOT_CHECK) },
  diversity: { type: 'string', default: 'standard' },
  help: { type: 'boolean', short: 'h', default: false }
} as const

export const VERIFICATION_USAGE = `[--spot-check 0..1 (default ${DEFAULT_SPOT_CHECK})] [--diversity ${DIVERSITY_MODES.join('|')}]
              [--give-up-after seconds (default ${DEFAULT_GIVE_UP_S}): stop, exit 1, once the job could not progress that long]`

/** parseArgs over `config`; an unknown or malformed flag fails with status 2 and the usage. */
export function parseCli<T extends ParseArgsConfig> (config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config)
  } catch (err) {
    return fail(`${(err as Error).message}\n${usage}`, EXIT_USAGE)
  }
}

export interface CommonArgs {
  relays: string[]
  replicas: number
  /** Workers to wait for before starting. */
  workers: number
  waitTimeoutMs: number
  /** How long a job may be unable to progress before the command stops (exit 1, with the reason). */
  giveUpAfterMs: number
  spotCheck: number
  diversity: DiversityMode
}

type CommonValues = { relay?: string[], replicas?: string, workers?: string, 'wait-timeout'?: string, 'give-up-after'?: string, 'spot-check'?: string, diversity?: string }

/** The common flags, checked; a bad one fails with status 2 and the usage. */
export function commonArgs (values: CommonValues, env: CliIo['env'], usage: string): CommonArgs {
  const bad = (message: string): never => fail(`${message}\n${usage}`, EXIT_USAGE)
  let relays: string[] = []
  try {
    relays = relayList(values.relay, env.RELAY_ADDR)
  } catch (err) {
    bad((err as Error).message)
  }
  if (relays.length === 0) bad('--relay is required (or set RELAY_ADDR)')
  const replicas = Number(values.replicas ?? 1)
  if (![1, 2, 3].includes(replicas)) fail('--replicas must be 1, 2 or 3', EXIT_USAGE)
  const workers = Number(values.workers ?? 1)
  if (!(Number.isSafeInteger(workers) && workers >= 0)) bad(`--workers must be a whole number, got "${values.workers}"`)
  const waitTimeout = Number(values['wait-timeout'] ?? 30)
  if (!(waitTimeout > 0 && Number.isFinite(waitTimeout))) bad(`--wait-timeout must be a number of seconds above 0, got "${values['wait-timeout']}"`)
  const giveUp = Number(values['give-up-after'] ?? DEFAULT_GIVE_UP_S)
  if (!(giveUp >= 0 && Number.isFinite(giveUp))) bad(`--give-up-after must be a number of seconds ≥ 0, got "${values['give-up-after']}"`)
  const spotCheck = Number(values['spot-check'] ?? DEFAULT_SPOT_CHECK)
  if (!(spotCheck >= 0 && spotCheck <= 1)) bad(`--spot-check must be a share between 0 and 1, got "${values['spot-check']}"`)
  const diversity = values.diversity ?? 'standard'
  if (!isDiversityMode(diversity)) bad(`--diversity must be one of ${DIVERSITY_MODES.join(', ')}, got "${diversity}"`)
  return { relays, replicas, workers, waitTimeoutMs: waitTimeout * 1000, giveUpAfterMs: giveUp * 1000, spotCheck, diversity: diversity as DiversityMode }
}

/** Connects as a requester with the common settings; 'relay-unreachable' fails with status 1. */
export async function connectCli (args: CommonArgs, options: Omit<ConnectOptions, 'relays' | 'spotCheck' | 'diversity'>): Promise<Requester> {
  return await connect({ ...options, relays: args.relays, spotCheck: args.spotCheck, diversity: args.diversity })
}

/** Waits until --workers workers advertise (saying so when it has to wait); Ctrl-C stops the wait. */
export async function waitForWorkers (cli: Cli, net: Requester, args: CommonArgs): Promise<void> {
  if (net.workers().filter(w => !w.paused).length < args.workers) cli.err(`waiting for ${args.workers} worker(s)…`)
  await net.waitForWorkers(args.workers, { timeoutMs: args.waitTimeoutMs, signal: cli.io.interrupt })
}

/**
 * Says on stderr why a job cannot progress as soon as it is known (and when that changes or
 * clears), with when the command gives up. `read` is polled on every progress event; returns
 * that listener. `before` runs first (a progress bar ends its line).
 */
export function blockedReporter (cli: Cli, read: () => JobBlocked | undefined, giveUpAfterMs: number, before?: () => void): () => void {
  let shown: string | undefined
  return () => {
    const b = read()
    const text = b?.message
    if (text === shown) return
    before?.()
    if (b == null) {
      cli.say('progressing again')
    } else {
      const left = Math.max(0, Math.ceil((b.sinceMs + giveUpAfterMs - Date.now()) / 1000))
      cli.say(`cannot progress: ${b.message}; giving up in ${left} s unless that changes (--give-up-after ${Math.round(giveUpAfterMs / 1000)})`)
    }
    shown = text
  }
}

/** Whether `moduleUrl` (import.meta.url) is the file node was started with. */
export function isEntryPoint (moduleUrl: string): boolean {
  const entry = process.argv[1]
  if (entry == null) return false
  try {
    return pathToFileURL(realpathSync(entry)).href === moduleUrl
  } catch {
    return false
  }
}

/**
 * Runs `main` as this process's command when `moduleUrl` is the entry point: the first Ctrl-C or
 * SIGTERM aborts io.interrupt (the command stops cleanly), a second one exits at once; the
 * process exits with main's status (the network may hold handles open otherwise).
 */
export function runIfMain (moduleUrl: string, main: CliMain): void {
  if (!isEntryPoint(moduleUrl)) return
  const controller = new AbortController()
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED)
    controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  main(process.argv.slice(2), processIo(controller.signal)).then(
    (status) => process.exit(status),
    (err: unknown) => {
      console.error(err)
      process.exit(EXIT_FAILED)
    })
}

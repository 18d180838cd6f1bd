/**
 * What the command-line requesters (`npm run submit`, `infer`, `ocr`) share, so each is a thin
 * layer over the library: the common flags (--relay / RELAY_ADDR, --replicas, --workers,
 * --wait-timeout, --spot-check, --diversity, --help), connecting, waiting for workers, Ctrl-C,
 * and one way to fail with an exit status (0 ok, 1 a run that did not succeed or no relay,
 * 2 bad arguments or input, 130 interrupted).
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
  try {
    return await body(cli)
  } catch (err) {
    cli.say(err instanceof Error ? err.message : String(err))
    return exitStatus(err)
  }
}

export const COMMON_OPTIONS = {
  relay: RELAY_OPTION,
  replicas: { type: 'string', default: '1' },
  workers: { type: 'string', default: '1' },
  'wait-timeout': { type: 'string', default: '30' },
  'spot-check': { type: 'string', default: String(DEFAULT_SPOT_CHECK) },
  diversity: { type: 'string', default: 'standard' },
  help: { type: 'boolean', short: 'h', default: false }
} as const

export const VERIFICATION_USAGE = `[--spot-check 0..1 (default ${DEFAULT_SPOT_CHECK})] [--diversity ${DIVERSITY_MODES.join('|')}]`

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
  spotCheck: number
  diversity: DiversityMode
}

type CommonValues = { relay?: string[], replicas?: string, workers?: string, 'wait-timeout'?: string, 'spot-check'?: string, diversity?: string }

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
  const spotCheck = Number(values['spot-check'] ?? DEFAULT_SPOT_CHECK)
  if (!(spotCheck >= 0 && spotCheck <= 1)) bad(`--spot-check must be a share between 0 and 1, got "${values['spot-check']}"`)
  const diversity = values.diversity ?? 'standard'
  if (!isDiversityMode(diversity)) bad(`--diversity must be one of ${DIVERSITY_MODES.join(', ')}, got "${diversity}"`)
  return { relays, replicas, workers, waitTimeoutMs: waitTimeout * 1000, spotCheck, diversity: diversity as DiversityMode }
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

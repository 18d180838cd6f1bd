/**
 * Starts `relay/main.ts` as a child process on free ports (demo, e2e, bench): with `--serve dist`
 * (startAppServer: the relay plus the built app) or a relay alone (startRelay), optionally linked
 * to other relays with `--bootstrap`.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface RelayProcess {
  /** The relay's multiaddr on loopback, with /p2p/<its peer id>. */
  relayAddr: string
  /** The relay's peer id. */
  peerId: string
  process: ChildProcess
  /** Everything the process printed, for error reports. */
  output(): string
  stop(): Promise<void>
}

export interface AppServer extends RelayProcess {
  /** Where the app is served (http://127.0.0.1:<port>/). */
  url: string
}

export interface RelayOptions {
  /** Relay key file, so a restarted relay keeps its peer id (default: a fresh one per start). */
  keyFile?: string
  wsPort?: number
  /** Other relays to link to (`--bootstrap`, repeated). */
  bootstrap?: string[]
  timeoutMs?: number
}

export interface AppServerOptions extends RelayOptions {
  httpPort?: number
}

let started = 0

/**
 * The relay and the built app (`--serve dist`, or the build in P2P_APP_DIR, relative to the repository: several checkouts'
 * worth of builds side by side, as when tests of different changes run at once).
 */
export async function startAppServer (options: AppServerOptions = {}): Promise<AppServer> {
  const dir = ROOT + (process.env.P2P_APP_DIR ?? 'dist')
  if (!existsSync(dir + '/index.html')) throw new Error(`${dir}/ is missing: run \`npm run build\` first`)
  const { relay, url } = await spawnRelay(options, ['--serve', dir, '--http-port', String(options.httpPort ?? 0)], /Open (http:\/\/\S+) /)
  return { ...relay, url: url!.replace('localhost', '127.0.0.1') }
}

/** A relay alone, serving no app (a second relay of the network, linked with `bootstrap`). */
export async function startRelay (options: RelayOptions = {}): Promise<RelayProcess> {
  return (await spawnRelay(options, [], undefined)).relay
}

async function spawnRelay (options: RelayOptions, extra: string[], urlPattern: RegExp | undefined): Promise<{ relay: RelayProcess, url?: string }> {
  const args = [
    '--import', 'tsx', ROOT + 'relay/main.ts',
    '--host', '127.0.0.1',
    '--port', String(options.wsPort ?? 0),
    '--key', options.keyFile ?? join(tmpdir(), `p2p-ai-agents-relay-${process.pid}-${Date.now()}-${++started}.key`),
    ...(options.bootstrap ?? []).flatMap(b => ['--bootstrap', b]),
    ...extra
  ]
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, P2P_EXIT_WITH_PARENT: '1' } })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const timeoutMs = options.timeoutMs ?? 20_000

  const found = await new Promise<{ url?: string, relayAddr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM')
      reject(new Error(`relay did not start within ${timeoutMs} ms:\n${out}`))
    }, timeoutMs)
    const check = (): void => {
      const r = /relay listening on (\S+)/.exec(out)
      const u = urlPattern?.exec(out)
      if (r != null && (urlPattern == null || u != null)) {
        clearTimeout(timer)
        child.off('exit', onExit)
        resolve({ url: u?.[1], relayAddr: r[1] })
      }
    }
    const onExit = (code: number | null): void => {
      clearTimeout(timer)
      reject(new Error(`relay exited with code ${code}:\n${out}`))
    }
    child.stdout.on('data', check)
    child.once('exit', onExit)
  })

  const relay: RelayProcess = {
    relayAddr: found.relayAddr,
    peerId: found.relayAddr.split('/p2p/').at(-1)!,
    process: child,
    output: () => out,
    stop: async () => {
      if (child.exitCode != null || child.signalCode != null) return
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
  }
  return { relay, url: found.url }
}

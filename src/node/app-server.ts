/** Starts `relay/main.ts --serve dist` as a child process on free ports (demo, e2e, bench). */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface AppServer {
  url: string
  relayAddr: string
  process: ChildProcess
  /** Everything the server printed, for error reports. */
  output(): string
  stop(): Promise<void>
}

export interface AppServerOptions {
  /** Relay key file, so a restarted relay keeps its peer id. */
  keyFile?: string
  wsPort?: number
  httpPort?: number
  timeoutMs?: number
}

export async function startAppServer (options: AppServerOptions = {}): Promise<AppServer> {
  if (!existsSync(ROOT + 'dist/index.html')) throw new Error('dist/ is missing: run `npm run build` first')
  const args = [
    '--import', 'tsx', ROOT + 'relay/main.ts',
    '--host', '127.0.0.1',
    '--port', String(options.wsPort ?? 0),
    '--http-port', String(options.httpPort ?? 0),
    '--serve', ROOT + 'dist',
    '--key', options.keyFile ?? join(tmpdir(), `p2p-ai-agents-relay-${process.pid}-${Date.now()}.key`)
  ]
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, P2P_EXIT_WITH_PARENT: '1' } })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })

  const { url, relayAddr } = await new Promise<{ url: string, relayAddr: string }>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`server did not start within ${options.timeoutMs ?? 20000} ms:\n${out}`)) }, options.timeoutMs ?? 20_000)
    const check = (): void => {
      const u = /Open (http:\/\/\S+) /.exec(out)
      const r = /relay listening on (\S+)/.exec(out)
      if (u != null && r != null) {
        clearTimeout(timer)
        resolve({ url: u[1], relayAddr: r[1] })
      }
    }
    child.stdout.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with code ${code}:\n${out}`))
    })
  })

  return {
    url: url.replace('localhost', '127.0.0.1'),
    relayAddr,
    process: child,
    output: () => out,
    stop: async () => {
      if (child.exitCode != null) return
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
  }
}

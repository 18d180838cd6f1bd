/**
 * The relay's command line (`relay/main.ts`) as a child process: usage errors, identities,
 * linking to a --bootstrap relay, /config.json and /metrics, and TLS (wss relay, https app).
 *
 * Self-contained (no shared helpers): every wait is on a child's output, its exit, or a polled
 * condition with a bounded timeout; every child and node started is stopped in afterEach.
 */
import '../../src/node/polyfill.js'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLibp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import type { ChildProcess } from 'node:child_process'
import type { Libp2p } from '@libp2p/interface'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const WAIT_MS = 20_000

// ---------------------------------------------------------------- waiting

async function withTimeout<T> (promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`timed out after ${ms} ms waiting for ${what()}`)) }, ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `check` until it returns a value other than undefined, within `ms`. */
async function until<T> (check: () => Promise<T | undefined>, ms: number, what: () => string): Promise<T> {
  const deadline = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}${last != null ? ` (last error: ${String(last)})` : ''}`)
    await new Promise(resolve => setTimeout(resolve, 100)) // poll interval, not synchronisation
  }
}

// ---------------------------------------------------------------- relay processes

interface RelayProcess {
  child: ChildProcess
  output: () => string
  /** Resolves with the first match of `re` in the output (stdout and stderr). */
  waitFor: (re: RegExp) => Promise<RegExpExecArray>
  exited: Promise<number | null>
}

const children: ChildProcess[] = []
const nodes: Libp2p[] = []
const dirs: string[] = []

function childEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, P2P_EXIT_WITH_PARENT: '1' }
  for (const k of ['RELAY_HOST', 'RELAY_PORT', 'RELAY_KEY', 'RELAY_BOOTSTRAP', 'RELAY_TLS_CERT', 'RELAY_TLS_KEY', 'RELAY_ICE', 'APP_DIR', 'HTTP_PORT', 'NODE_TLS_REJECT_UNAUTHORIZED']) delete env[k]
  return env
}

function spawnRelay (args: string[], env: NodeJS.ProcessEnv = {}): RelayProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'relay/main.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...childEnv(), ...env }
  })
  children.push(child)
  let out = ''
  const listeners = new Set<() => void>()
  const onData = (d: Buffer): void => {
    out += d.toString()
    for (const l of [...listeners]) l()
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exited = new Promise<number | null>(resolve => { child.once('exit', code => { resolve(code) }) })
  const waitFor = async (re: RegExp): Promise<RegExpExecArray> => await withTimeout(new Promise<RegExpExecArray>((resolve, reject) => {
    const check = (): void => {
      const m = re.exec(out)
      if (m != null) { listeners.delete(check); resolve(m) }
    }
    listeners.add(check)
    check()
    void exited.then(code => {
      listeners.delete(check)
      const m = re.exec(out)
      if (m != null) resolve(m)
      else reject(new Error(`relay exited (code ${code}) before printing ${re}:\n${out}`))
    })
  }), WAIT_MS, () => `${re} in relay output:\n${out}`)
  return { child, output: () => out, waitFor, exited }
}

/** Runs the relay to its exit (a usage error): its exit code and everything it printed. */
async function runToExit (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const r = spawnRelay(args)
  let stdout = ''
  let stderr = ''
  r.child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  r.child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await withTimeout(r.exited, WAIT_MS, () => `relay ${args.join(' ')} to exit:\n${r.output()}`)
  return { code, stdout, stderr }
}

interface StartedRelay extends RelayProcess {
  peerId: string
  addr: string
  /** Base URL of the app server, when started with --serve. */
  url?: string
}

async function startRelay (args: string[], env: NodeJS.ProcessEnv = {}): Promise<StartedRelay> {
  const r = spawnRelay(['--host', '127.0.0.1', '--port', '0', ...args], env)
  const [, peerId] = await r.waitFor(/relay peer id (\S+)/)
  const [, addr] = await r.waitFor(/relay listening on (\S+)/)
  const url = args.includes('--serve') ? (await r.waitFor(/Open (https?:\/\/\S+?)\/? /))[1] : undefined
  return { ...r, peerId, addr, url: url?.replace('localhost', '127.0.0.1') }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode != null || child.signalCode != null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGTERM')
  try {
    await withTimeout(exited, 10_000, () => 'relay to exit after SIGTERM')
  } catch {
    child.kill('SIGKILL')
    await exited
  }
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { try { await n.stop() } catch {} }))
  await Promise.all(children.splice(0).map(stopChild))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir (): string {
  const d = mkdtempSync(join(tmpdir(), 'relay-cli-'))
  dirs.push(d)
  return d
}

/** A directory the app server can serve (the tests need /config.json and /metrics, not the app). */
function appDir (): string {
  const d = tempDir()
  writeFileSync(join(d, 'index.html'), '<!doctype html><title>test</title>')
  return d
}

// ---------------------------------------------------------------- HTTP(S)

async function getText (url: string): Promise<string> {
  if (url.startsWith('https:')) {
    // A self-signed certificate: skip verification for this request only.
    return await new Promise((resolve, reject) => {
      const req = httpsRequest(url, { rejectUnauthorized: false }, res => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => { body += d })
        res.on('end', () => { res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`)) })
      })
      req.on('error', reject)
      req.end()
    })
  }
  const res = await fetch(url)
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
  return await res.text()
}

function metric (text: string, name: string): number | undefined {
  const m = new RegExp(`^p2p_ai_agents_${name} (\\S+)$`, 'm').exec(text)
  return m == null ? undefined : Number(m[1])
}

/** Waits until the relay serving `url` reports at least `n` linked relays. */
async function waitForLinks (url: string, n: number): Promise<number> {
  let last = ''
  return await until(async () => {
    last = await getText(`${url}/metrics`)
    const links = metric(last, 'relay_links')
    return links != null && links >= n ? links : undefined
  }, WAIT_MS, () => `relay_links >= ${n} at ${url}/metrics; last:\n${last}`)
}

// ---------------------------------------------------------------- tests

const STACK_LINE = /^\s+at /m

describe('relay command line', () => {
  it('rejects an unknown flag with one line, the usage line and exit status 2', async () => {
    const { code, stdout, stderr } = await runToExit(['--no-such-flag'])
    expect(code).toBe(2)
    expect(stdout).toBe('')
    const lines = stderr.trim().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^relay: .*--no-such-flag/)
    expect(lines[1]).toMatch(/^usage: relay /)
    expect(stderr).not.toMatch(STACK_LINE)
  })

  it('rejects bad values with one line and exit status 2', async () => {
    const cases = [
      ['--port', 'ninety'],
      ['--bootstrap', 'not-a-multiaddr'],
      ['--bootstrap', '/ip4/127.0.0.1/tcp/9090/ws'], // no /p2p/<id>
      ['--tls-cert', 'only-a-cert.pem'],
      ['--ice', 'http://not-ice']
    ]
    const results = await Promise.all(cases.map(runToExit))
    cases.forEach((args, i) => {
      const { code, stderr } = results[i]
      expect(code, args.join(' ')).toBe(2)
      const lines = stderr.trim().split('\n')
      expect(lines, stderr).toHaveLength(2)
      expect(lines[0]).toMatch(/^relay: /)
      expect(lines[1]).toMatch(/^usage: relay /)
      expect(stderr).not.toMatch(STACK_LINE)
    })
    expect(results[2].stderr).toMatch(/no \/p2p\/<peer id>/)
  })

  it('prints the usage on --help and exits 0', async () => {
    const { code, stdout } = await runToExit(['--help'])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^usage: relay .*--bootstrap/)
  })

  it('gives relays started with --port 0 their own identities, kept in no file, and exits 0 on SIGTERM', async () => {
    const [a, b] = await Promise.all([startRelay([]), startRelay([])])
    expect(a.peerId).not.toBe(b.peerId)
    expect(a.addr).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/ws/p2p/${a.peerId}$`))
    expect(existsSync(join(ROOT, '.data/relay-0.key'))).toBe(false)

    a.child.kill('SIGTERM')
    expect(await withTimeout(a.exited, WAIT_MS, () => `relay to exit after SIGTERM:\n${a.output()}`)).toBe(0)
  })

  it('links to a --bootstrap relay and lists it in /config.json with the ICE servers', async () => {
    const first = await startRelay(['--serve', appDir(), '--http-port', '0'])
    const second = await startRelay([
      '--bootstrap', first.addr,
      '--serve', appDir(), '--http-port', '0',
      '--ice', 'stun:stun.example.org:3478,turn:alice:s%3Acret@turn.example.org:3478?transport=tcp'
    ])

    // The second dials the first; the first learns of the second from its advert and counts it too.
    expect(await waitForLinks(second.url!, 1)).toBeGreaterThanOrEqual(1)
    expect(await waitForLinks(first.url!, 1)).toBeGreaterThanOrEqual(1)

    const metrics = await getText(`${first.url!}/metrics`)
    for (const name of ['connections', 'discovery_peers', 'relay_links', 'discovery_adverts_received_total', 'discovery_adverts_published_total', 'discovery_adverts_rejected_total']) {
      expect(metric(metrics, name), `${name} in\n${metrics}`).toBeTypeOf('number')
    }
    expect(metrics).not.toMatch(/directory_peers/)

    const config = JSON.parse(await getText(`${second.url!}/config.json`))
    expect(config).toEqual({
      relay: second.addr,
      relays: [second.addr, first.addr],
      iceServers: [
        { urls: 'stun:stun.example.org:3478' },
        { urls: 'turn:turn.example.org:3478?transport=tcp', username: 'alice', credential: 's:cret' }
      ]
    })
    const firstConfig = JSON.parse(await getText(`${first.url!}/config.json`))
    expect(firstConfig).toEqual({ relay: first.addr, relays: [first.addr], iceServers: [] })
  })

  describe('with a TLS certificate', () => {
    let certFile = ''
    let keyFile = ''

    beforeAll(() => {
      const d = mkdtempSync(join(tmpdir(), 'relay-cli-tls-'))
      certFile = join(d, 'c.pem')
      keyFile = join(d, 'k.pem')
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' })
      return () => { rmSync(d, { recursive: true, force: true }) }
    })

    it('listens on wss, serves the app over https, and a Node peer can dial it', async () => {
      const relay = await startRelay(['--tls-cert', certFile, '--tls-key', keyFile, '--serve', appDir(), '--http-port', '0'])
      expect(relay.addr).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/tls/ws/p2p/${relay.peerId}$`))
      expect(relay.url).toMatch(/^https:\/\//)

      const config = JSON.parse(await getText(`${relay.url!}/config.json`))
      expect(config.relay).toBe(relay.addr)
      expect(config.relays).toEqual([relay.addr])
      // Reached by name, the relay names itself the same way (the certificate names the host).
      const byName = JSON.parse(await getText(`${relay.url!.replace('127.0.0.1', 'localhost')}/config.json`))
      expect(byName.relay).toMatch(new RegExp(`^/dns4/localhost/tcp/\\d+/tls/ws/p2p/${relay.peerId}$`))

      const node = await createLibp2p({
        transports: [webSockets()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()]
      })
      nodes.push(node)
      // The certificate is self-signed: Node's TLS (under `ws`, the WebSocket libp2p dials with)
      // verifies unless NODE_TLS_REJECT_UNAUTHORIZED=0, which it reads at each connect. Set it in
      // this process only, only around this dial.
      const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
      try {
        const conn = await withTimeout(node.dial(multiaddr(relay.addr), { signal: AbortSignal.timeout(WAIT_MS) }), WAIT_MS, () => `dialing ${relay.addr}`)
        expect(conn.remotePeer.toString()).toBe(relay.peerId)
      } finally {
        if (before == null) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
        else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before
      }
    })

    it('links a relay to a wss --bootstrap relay', async () => {
      const first = await startRelay(['--tls-cert', certFile, '--tls-key', keyFile, '--serve', appDir(), '--http-port', '0'])
      // The second relay verifies the first's certificate when it dials: self-signed here, so that
      // child process (only) runs with verification off.
      const second = await startRelay(['--bootstrap', first.addr, '--serve', appDir(), '--http-port', '0'], { NODE_TLS_REJECT_UNAUTHORIZED: '0' })
      expect(await waitForLinks(second.url!, 1)).toBeGreaterThanOrEqual(1)
      expect(await waitForLinks(first.url!, 1)).toBeGreaterThanOrEqual(1)
    })
  })
})

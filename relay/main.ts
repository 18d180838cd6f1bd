/**
 * `npm run relay`: the libp2p relay alone. `npm start`: the relay plus the built app, served with
 * cross-origin isolation headers. Prints where to connect; stops cleanly on Ctrl-C / SIGTERM.
 *
 * Several relays make one network: start each with `--bootstrap <multiaddr of another>` (repeatable,
 * or RELAY_BOOTSTRAP=a,b). With `--tls-cert`/`--tls-key` the relay listens on wss and the app is
 * served over https with the same certificate. Bad flags or values print one line and the usage
 * line, and exit with status 2.
 */
import '../src/node/polyfill.js'
import { parseArgs } from 'node:util'
import { networkInterfaces } from 'node:os'
import { existsSync, readFileSync } from 'node:fs'
import { isIPv4 } from 'node:net'
import { createSecureContext } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { WebSockets, WebSocketsSecure } from '@multiformats/multiaddr-matcher'
import type { PrivateKey } from '@libp2p/interface'
import { loadOrCreateKey } from '../src/node/key-file.js'
import { DEFAULT_INBOUND_PER_SECOND, startRelayNode } from './relay-node.js'
import { DEFAULT_CONNECTIONS_PER_ADDRESS, DEFAULT_PENDING_PER_ADDRESS } from './admission.js'
import { startStaticServer } from './static-server.js'
import type { IceServer } from './static-server.js'

const USAGE = 'usage: relay [--host 0.0.0.0] [--port 9090] [--key .data/relay-<port>.key] [--bootstrap <multiaddr>]... ' +
  '[--tls-cert cert.pem --tls-key key.pem] [--ice stun:host:3478,turn:user:pass@host:3478] [--max-joins-per-ip 50] ' +
  '[--max-handshakes-per-ip 32] [--max-conns-per-ip 256] ' +
  '[--serve dist --http-port 8080]'
const ENV_HELP = '  env: RELAY_HOST, RELAY_PORT, RELAY_KEY, RELAY_BOOTSTRAP (comma-separated), RELAY_TLS_CERT, RELAY_TLS_KEY, ' +
  'RELAY_ICE, RELAY_MAX_JOINS_PER_IP, RELAY_MAX_HANDSHAKES_PER_IP, RELAY_MAX_CONNS_PER_IP, APP_DIR, HTTP_PORT\n' +
  '  per IP address (an IPv6 /64): new connections a second, handshakes in progress, connections held (loopback exempt)\n' +
  '  identity: --key/RELAY_KEY, else .data/relay-<port>.key, else (with --port 0) a fresh key for this run only'

/** A bad command line: one line saying what, the usage line, exit status 2. Never a stack trace. */
function usageError (message: string): never {
  console.error(`relay: ${message}`)
  console.error(USAGE)
  process.exit(2)
}

/** An empty environment variable counts as unset. */
function env (name: string): string | undefined {
  const v = process.env[name]
  return v == null || v.trim() === '' ? undefined : v
}

function splitList (values: Array<string | undefined>): string[] {
  return values.flatMap(v => (v ?? '').split(',')).map(s => s.trim()).filter(s => s !== '')
}

function intArg (flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    usageError(`--${flag} must be an integer from ${min} to ${max}, got '${value}'`)
  }
  return Number(value)
}

/** A relay to link to: a WebSocket (ws or wss) or dnsaddr multiaddr that names its peer with /p2p/<id>. */
function checkBootstrap (addr: string): string {
  let ma
  try {
    ma = multiaddr(addr)
  } catch (err) {
    usageError(`--bootstrap '${addr}' is not a multiaddr: ${oneLine(err)}`)
  }
  const id = ma.getComponents().findLast(c => c.name === 'p2p')?.value
  if (id == null) usageError(`--bootstrap '${addr}' has no /p2p/<peer id>`)
  try {
    peerIdFromString(id)
  } catch {
    usageError(`--bootstrap '${addr}' has an invalid peer id '${id}'`)
  }
  const dnsaddr = ma.getComponents()[0]?.name === 'dnsaddr'
  if (!dnsaddr && !WebSockets.matches(ma) && !WebSocketsSecure.matches(ma)) {
    usageError(`--bootstrap '${addr}' is not a relay address (…/tcp/<port>/ws/p2p/<id> or …/tls/ws/p2p/<id>)`)
  }
  return addr
}

/**
 * STUN/TURN URLs for the page. `turn:user:pass@host:port` (and turns:) carries its credentials,
 * which become the RTCIceServer's username and credential (percent-decoded).
 */
function parseIce (url: string): IceServer {
  const m = /^(stuns?|turns?):(.+)$/.exec(url)
  if (m == null) usageError(`--ice '${url}' is not a stun:, stuns:, turn: or turns: URL`)
  const [, scheme, rest] = m
  const at = rest.lastIndexOf('@')
  if (at < 0) {
    if (scheme.startsWith('turn')) usageError(`--ice '${url}': a TURN server needs credentials (${scheme}:user:pass@host:port)`)
    return { urls: url }
  }
  if (!scheme.startsWith('turn')) usageError(`--ice '${url}': only TURN URLs take user:pass@`)
  const userinfo = rest.slice(0, at)
  const colon = userinfo.indexOf(':')
  if (colon <= 0 || at === rest.length - 1) usageError(`--ice '${url}' should look like ${scheme}:user:pass@host:port`)
  try {
    return {
      urls: `${scheme}:${rest.slice(at + 1)}`,
      username: decodeURIComponent(userinfo.slice(0, colon)),
      credential: decodeURIComponent(userinfo.slice(colon + 1))
    }
  } catch {
    usageError(`--ice '${url}': bad percent-encoding in user:pass`)
  }
}

function oneLine (err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]
}

function readPem (flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    usageError(`cannot read --${flag} ${path}: ${oneLine(err)}`)
  }
}

let parsed
try {
  parsed = parseArgs({
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string', default: env('RELAY_HOST') ?? '0.0.0.0' },
      port: { type: 'string', default: env('RELAY_PORT') ?? '9090' },
      'http-port': { type: 'string', default: env('HTTP_PORT') ?? '8080' },
      serve: { type: 'string', default: env('APP_DIR') },
      key: { type: 'string', default: env('RELAY_KEY') },
      bootstrap: { type: 'string', multiple: true },
      'tls-cert': { type: 'string', default: env('RELAY_TLS_CERT') },
      'tls-key': { type: 'string', default: env('RELAY_TLS_KEY') },
      ice: { type: 'string', default: env('RELAY_ICE') },
      'max-joins-per-ip': { type: 'string', default: env('RELAY_MAX_JOINS_PER_IP') ?? String(DEFAULT_INBOUND_PER_SECOND) },
      'max-handshakes-per-ip': { type: 'string', default: env('RELAY_MAX_HANDSHAKES_PER_IP') ?? String(DEFAULT_PENDING_PER_ADDRESS) },
      'max-conns-per-ip': { type: 'string', default: env('RELAY_MAX_CONNS_PER_IP') ?? String(DEFAULT_CONNECTIONS_PER_ADDRESS) },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
} catch (err) {
  usageError(oneLine(err))
}
const { values } = parsed

if (values.help) {
  console.log(`${USAGE}\n${ENV_HELP}`)
  process.exit(0)
}

if (!isIPv4(values.host)) usageError(`--host must be an IPv4 address (0.0.0.0 for all interfaces), got '${values.host}'`)
const port = intArg('port', values.port, 0, 65535)
const httpPort = intArg('http-port', values['http-port'], 0, 65535)
const maxJoins = intArg('max-joins-per-ip', values['max-joins-per-ip'], 1, 1_000_000)
const admission = {
  pendingPerAddress: intArg('max-handshakes-per-ip', values['max-handshakes-per-ip'], 1, 1_000_000),
  connectionsPerAddress: intArg('max-conns-per-ip', values['max-conns-per-ip'], 1, 1_000_000)
}
// --bootstrap replaces RELAY_BOOTSTRAP (like every flag replaces its variable).
const bootstrap = [...new Set(splitList(values.bootstrap ?? [env('RELAY_BOOTSTRAP')]).map(checkBootstrap))]
const iceServers = splitList([values.ice]).map(parseIce)

let tls: { cert: string, key: string } | undefined
if ((values['tls-cert'] == null) !== (values['tls-key'] == null)) usageError('--tls-cert and --tls-key go together: give both or neither')
if (values['tls-cert'] != null && values['tls-key'] != null) {
  tls = { cert: readPem('tls-cert', values['tls-cert']), key: readPem('tls-key', values['tls-key']) }
  try {
    createSecureContext(tls) // a key that does not match the certificate, or a file that is not PEM
  } catch (err) {
    usageError(`--tls-cert/--tls-key: ${oneLine(err)}`)
  }
}
const secure = tls != null

/**
 * The relay's identity. Several relays started from one checkout must not share a peer id by
 * accident, so the default key file is per port; with --port 0 (a port chosen by the OS, as tests
 * and tools do) a fresh key is used for this run only.
 */
async function relayKey (): Promise<PrivateKey> {
  if (values.key != null) return await loadOrCreateKey(values.key)
  if (port === 0) return await generateKeyPair('Ed25519')
  const path = `.data/relay-${port}.key`
  // Before per-port files the default was .data/relay.key, on the default port 9090: keep that peer id.
  if (port === 9090 && !existsSync(path) && existsSync('.data/relay.key')) return await loadOrCreateKey('.data/relay.key')
  return await loadOrCreateKey(path)
}

if (values.serve != null && !existsSync(values.serve)) {
  console.error(`app directory ${values.serve} not found: run \`npm run build\` first`)
  process.exit(1)
}

let relay: Awaited<ReturnType<typeof startRelayNode>>
try {
  relay = await startRelayNode({ host: values.host, port, privateKey: await relayKey(), inboundConnectionThreshold: maxJoins, admission, bootstrap, tls })
} catch (err) {
  console.error(`relay: cannot start: ${oneLine(err)}`)
  process.exit(1)
}
const relayId = relay.node.peerId.toString()

let http: Awaited<ReturnType<typeof startStaticServer>> | undefined
// Listen for signals before printing that we are up: until a listener exists, SIGTERM kills the
// process outright, and whoever reads the address may send it at once.
let stopping = false
async function shutdown (signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  console.log(`\n${signal}: shutting down`)
  // A peer that never lets go must not keep the process alive.
  setTimeout(() => {
    console.error('relay: shutdown timed out')
    process.exit(1)
  }, 10_000).unref()
  http?.closeAllConnections()
  try {
    await Promise.all([
      new Promise<void>(resolve => { if (http == null) resolve(); else http.close(() => { resolve() }) }),
      relay.stop()
    ])
  } catch (err) {
    console.error(`relay: error while stopping: ${oneLine(err)}`)
    process.exit(1)
  }
  process.exit(0)
}
// shutdown() catches what stopping throws; a failure outside that (a closed stdout) still ends the process.
const stopOn = (signal: string): void => {
  shutdown(signal).catch((err: unknown) => {
    console.error(`relay: error while stopping: ${oneLine(err)}`)
    process.exit(1)
  })
}
process.on('SIGINT', () => { stopOn('SIGINT') })
process.on('SIGTERM', () => { stopOn('SIGTERM') })

// With --port 0 the OS picks the port: report the one actually bound.
const wsPort = Number(relay.node.getMultiaddrs()[0]?.getComponents().find(c => c.name === 'tcp')?.value ?? port)

/**
 * The relay multiaddr a browser should dial, given the hostname it used to reach us:
 * `/ip4/<ip>/tcp/<port>/ws/p2p/<id>`, or with TLS `/…/tcp/<port>/tls/ws/p2p/<id>` (what
 * @libp2p/websockets dials as wss://). A host name becomes /dns4/<name>; over TLS it stays a name
 * (localhost too), since the certificate names the host rather than its address.
 */
function relayAddrFor (hostname: string): string {
  if (hostname === 'localhost' && !secure) hostname = '127.0.0.1'
  const proto = isIPv4(hostname) ? 'ip4' : hostname.includes(':') ? 'ip6' : 'dns4'
  return `/${proto}/${hostname}/tcp/${wsPort}/${secure ? 'tls/ws' : 'ws'}/p2p/${relayId}`
}

function lanAddresses (): string[] {
  if (values.host !== '0.0.0.0') return [values.host]
  return Object.values(networkInterfaces()).flat()
    .filter(i => i != null && i.family === 'IPv4' && !i.internal)
    .map(i => i!.address)
}

const local = values.host === '0.0.0.0' ? '127.0.0.1' : values.host
console.log(`relay peer id ${relayId}`)
console.log(`relay listening on ${relayAddrFor(local)}`)
for (const ip of lanAddresses().filter(ip => ip !== local)) console.log(`               and ${relayAddrFor(ip)}`)

if (values.serve != null) {
  const discovery = relay.node.services.discovery
  try {
    http = await startStaticServer({
      root: values.serve,
      host: values.host,
      port: httpPort,
      relayAddrFor,
      otherRelays: bootstrap,
      iceServers,
      tls,
      metrics: () => ({
        connections: relay.node.getConnections().length,
        discovery_peers: discovery.table.size,
        relay_links: relay.links.connected.length,
        discovery_adverts_received_total: discovery.stats.received,
        discovery_adverts_published_total: discovery.stats.published,
        discovery_adverts_rejected_total: discovery.stats.rejected,
        relay_connections_refused_per_address_total: relay.admission.refused
      })
    })
  } catch (err) {
    console.error(`relay: cannot serve the app on port ${httpPort}: ${oneLine(err)}`)
    await relay.stop()
    process.exit(1)
  }
  const scheme = secure ? 'https' : 'http'
  const appHost = values.host === '0.0.0.0' ? 'localhost' : values.host
  const boundPort = (http.address() as AddressInfo).port
  console.log(`\nOpen ${scheme}://${appHost}:${boundPort}/ in two browser tabs.`)
  for (const ip of lanAddresses()) console.log(`Other devices on your network: ${scheme}://${ip}:${boundPort}/ (see README: LAN)`)
}

// Started by a tool (tests, bench, demo): stop when that process dies without stopping us first.
if (process.env.P2P_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) stopOn('parent gone') }, 1000).unref()
}

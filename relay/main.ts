/**
 * `npm run relay`: the libp2p relay alone. `npm start`: the relay plus the built app, served with
 * cross-origin isolation headers. Prints where to connect; stops cleanly on Ctrl-C / SIGTERM.
 */
import '../src/node/polyfill.js'
import { parseArgs } from 'node:util'
import { networkInterfaces } from 'node:os'
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { loadOrCreateKey } from '../src/node/key-file.js'
import { DEFAULT_INBOUND_PER_SECOND, startRelayNode } from './relay-node.js'
import { startStaticServer } from './static-server.js'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: process.env.RELAY_HOST ?? '0.0.0.0' },
    port: { type: 'string', default: process.env.RELAY_PORT ?? '9090' },
    'http-port': { type: 'string', default: process.env.HTTP_PORT ?? '8080' },
    serve: { type: 'string', default: process.env.APP_DIR },
    key: { type: 'string', default: process.env.RELAY_KEY ?? '.data/relay.key' },
    'max-joins-per-ip': { type: 'string', default: process.env.RELAY_MAX_JOINS_PER_IP ?? String(DEFAULT_INBOUND_PER_SECOND) },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

if (values.help) {
  console.log(`usage: relay [--host 0.0.0.0] [--port 9090] [--key .data/relay.key] [--max-joins-per-ip 50] [--serve dist --http-port 8080]
  env: RELAY_HOST, RELAY_PORT, RELAY_KEY, RELAY_MAX_JOINS_PER_IP, APP_DIR, HTTP_PORT`)
  process.exit(0)
}

const port = Number(values.port)
const httpPort = Number(values['http-port'])
const privateKey = await loadOrCreateKey(values.key)
const relay = await startRelayNode({ host: values.host, port, privateKey, inboundConnectionThreshold: Number(values['max-joins-per-ip']) })
const relayId = relay.node.peerId.toString()
// With --port 0 the OS picks the port: report the one actually bound.
const wsPort = Number(relay.node.getMultiaddrs()[0]?.getComponents().find(c => c.name === 'tcp')?.value ?? port)

/** The relay multiaddr a browser should dial, given the hostname it used to reach us. */
function relayAddrFor (hostname: string): string {
  if (hostname === 'localhost') hostname = '127.0.0.1'
  const proto = /^[\d.]+$/.test(hostname) ? 'ip4' : hostname.includes(':') ? 'ip6' : 'dns4'
  return `/${proto}/${hostname}/tcp/${wsPort}/ws/p2p/${relayId}`
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

let http: Awaited<ReturnType<typeof startStaticServer>> | undefined
if (values.serve != null) {
  if (!existsSync(values.serve)) {
    console.error(`app directory ${values.serve} not found: run \`npm run build\` first`)
    process.exit(1)
  }
  http = await startStaticServer({
    root: values.serve,
    host: values.host,
    port: httpPort,
    relayAddrFor,
    metrics: () => ({
      connections: relay.node.getConnections().length,
      directory_peers: relay.directory.size
    })
  })
  const appHost = values.host === '0.0.0.0' ? 'localhost' : values.host
  const boundPort = (http.address() as AddressInfo).port
  console.log(`\nOpen http://${appHost}:${boundPort}/ in two browser tabs.`)
  for (const ip of lanAddresses()) console.log(`Other devices on your network: http://${ip}:${boundPort}/ (see README: LAN)`)
}

let stopping = false
async function shutdown (signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  console.log(`\n${signal}: shutting down`)
  http?.closeAllConnections()
  await Promise.all([
    new Promise<void>(resolve => { if (http == null) resolve(); else http.close(() => { resolve() }) }),
    relay.node.stop()
  ])
  process.exit(0)
}
process.on('SIGINT', () => { void shutdown('SIGINT') })
process.on('SIGTERM', () => { void shutdown('SIGTERM') })
// Started by a tool (tests, bench, demo): stop when that process dies without stopping us first.
if (process.env.P2P_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) void shutdown('parent gone') }, 1000).unref()
}

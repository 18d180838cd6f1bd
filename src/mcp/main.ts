/**
 * `npm run -s mcp -- --relay <multiaddr> [--data .data/mcp] [--spot-check x] [--diversity m]`:
 * the network as tools for an AI agent, over the Model Context Protocol on stdin/stdout (a client
 * such as Claude Desktop starts this process). Logs go to stderr; stdout carries protocol
 * messages only (npm's `-s` keeps its banner off it). Exits when stdin closes, on SIGINT or
 * SIGTERM, stopping running jobs so that they continue on the next start.
 *
 * Exit status: 0 after a clean close, 1 when closing hung or the peer could not start, 2 for bad arguments.
 */
import { protocolOut } from './protocol-stdout.js'
import { parseArgs } from 'node:util'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { connect, RequesterError } from '../index.js'
import { RELAY_OPTION, relayList } from '../node/relay-args.js'
import { MAX_MESSAGE_BYTES } from './limits.js'
import { createMcpServer } from './server.js'
import pkg from '../../package.json'
import type { ConnectOptions } from '../index.js'

const USAGE = `usage: npm run -s mcp -- --relay <multiaddr> [--data .data/mcp] [--spot-check 0..1] [--diversity standard|strict|lan]
  Model Context Protocol on stdin/stdout, logs on stderr. env: RELAY_ADDR`

/** Longest a close may take before the process exits anyway. */
const CLOSE_MS = 10_000

const log = (message: string): void => { process.stderr.write(`mcp: ${message}\n`) }

function fail (message: string, status = 2): never {
  log(message)
  process.exit(status)
}

function args (): { relays: string[], data: string, spotCheck?: number, diversity?: string } {
  try {
    const { values } = parseArgs({
      options: {
        relay: RELAY_OPTION,
        data: { type: 'string', default: '.data/mcp' },
        'spot-check': { type: 'string' },
        diversity: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false }
      }
    })
    if (values.help) {
      process.stderr.write(`${USAGE}\n`)
      process.exit(0)
    }
    const relays = relayList(values.relay)
    if (relays.length === 0) throw new Error('--relay is required (or set RELAY_ADDR)')
    return { relays, data: values.data, spotCheck: values['spot-check'] == null ? undefined : Number(values['spot-check']), diversity: values.diversity }
  } catch (err) {
    return fail(`${(err as Error).message}\n${USAGE}`)
  }
}

const { relays, data, spotCheck, diversity } = args()
// Without waiting for a relay: the client expects the handshake at once, and list_workers shows the relays' state.
// connect() checks the spot-check share and the diversity mode ('bad-request').
const requester = await connect({ relays, dataDir: data, spotCheck, diversity: diversity as ConnectOptions['diversity'], noWait: true })
  .catch((err: Error) => err instanceof RequesterError && err.code === 'bad-request' ? fail(`${err.message}\n${USAGE}`) : fail(err.message, 1))
requester.addEventListener('worker-joined', (e) => { log(`worker joined ${(e as CustomEvent<{ peerId: string }>).detail.peerId}`) })
requester.addEventListener('worker-left', (e) => { log(`worker left ${(e as CustomEvent<{ peerId: string }>).detail.peerId}`) })
const relayStates = new Map<string, string>()
requester.peer.relays.addEventListener('change', () => {
  for (const v of requester.peer.relays.views) {
    if (relayStates.get(v.addr) === v.state) continue
    relayStates.set(v.addr, v.state)
    log(`relay ${v.addr} ${v.state}${v.error != null ? ` (${v.error})` : ''}`)
  }
})

const server = createMcpServer(requester, { log, version: pkg.version })

let closing: Promise<void> | undefined
function shutdown (why: string): void {
  closing ??= (async () => {
    log(`${why}: closing`)
    setTimeout(() => {
      log(`still closing after ${CLOSE_MS / 1000} s; exiting`)
      process.exit(1)
    }, CLOSE_MS).unref()
    await server.close().catch((err: Error) => { log(`closing the MCP session: ${err.message}`) })
    await requester.close().catch((err: Error) => { log(`leaving the network: ${err.message}`) })
    process.exit(0)
  })()
}

process.stdin.on('end', () => { shutdown('stdin closed') })
process.on('SIGINT', () => { shutdown('SIGINT') })
process.on('SIGTERM', () => { shutdown('SIGTERM') })
// The client went away mid-answer: nobody is left to talk to.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { shutdown(`stdout ${err.code ?? err.message}`) })
protocolOut.on('error', (err: NodeJS.ErrnoException) => { shutdown(`stdout ${err.code ?? err.message}`) })
// A line that is not a JSON-RPC message is skipped (and said here); one longer than MAX_MESSAGE_BYTES closes the session.
server.server.onerror = (err) => { log(`protocol: ${err.message.split('\n')[0]!}`) }
server.server.onclose = () => { shutdown('session closed') }

await server.connect(new StdioServerTransport(process.stdin, protocolOut, { maxBufferSize: MAX_MESSAGE_BYTES }))
log(`ready (peer ${requester.peerId}, data ${data}); relays ${relays.join(', ')}`)

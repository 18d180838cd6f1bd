/**
 * `npm run gateway -- --relay <multiaddr> [--port 8787] [--host 127.0.0.1] [--token-file F]
 * [--data .data/gateway] [--spot-check x] [--diversity m] [--max-body-mb N]`: the HTTP API
 * (README, "HTTP API"). Prints its URL on stdout once listening; Ctrl-C or SIGTERM stops it
 * cleanly (running jobs resume when it starts again on the same --data).
 *
 * Exit status: 0 after a clean stop, 1 when the relay is unreachable or the port is taken,
 * 2 for bad arguments (a non-loopback --host without --token-file among them).
 */
import '../node/polyfill.js'
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { RequesterError } from '../index.js'
import { RELAY_OPTION, relayList } from '../node/relay-args.js'
import { GatewayError } from './errors.js'
import { isLoopback } from './auth.js'
import { DEFAULT_MAX_BODY_BYTES } from './limits.js'
import { startGateway } from './server.js'
import type { Gateway } from './server.js'

const MiB = 1024 * 1024
const USAGE = `usage: gateway --relay <multiaddr> [--port 8787] [--host 127.0.0.1] [--token-file FILE] [--data .data/gateway]
               [--spot-check 0..1] [--diversity standard|strict|lan] [--max-body-mb ${DEFAULT_MAX_BODY_BYTES / MiB}]
  env: RELAY_ADDR
  A --host other than loopback needs --token-file (a file holding the bearer token, at least 16 characters).`

function fail (message: string, status: number): never {
  console.error(`gateway: ${message}`)
  process.exit(status)
}

let parsed
try {
  parsed = parseArgs({
    options: {
      relay: RELAY_OPTION,
      port: { type: 'string', default: '8787' },
      host: { type: 'string', default: '127.0.0.1' },
      'token-file': { type: 'string' },
      data: { type: 'string', default: '.data/gateway' },
      'spot-check': { type: 'string' },
      diversity: { type: 'string' },
      'max-body-mb': { type: 'string', default: String(DEFAULT_MAX_BODY_BYTES / MiB) },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`, 2)
}
const { values } = parsed
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
let relays: string[] = []
try {
  relays = relayList(values.relay)
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`, 2)
}
if (relays.length === 0) fail(`--relay is required (or set RELAY_ADDR)\n${USAGE}`, 2)
const port = Number(values.port)
if (!(Number.isSafeInteger(port) && port >= 0 && port <= 65535)) fail(`--port must be 0 to 65535, got "${values.port}"`, 2)
const maxBodyMb = Number(values['max-body-mb'])
if (!(maxBodyMb > 0 && maxBodyMb <= 1024)) fail(`--max-body-mb must be above 0 and at most 1024, got "${values['max-body-mb']}"`, 2)
const spotCheck = values['spot-check'] == null ? undefined : Number(values['spot-check'])
if (spotCheck !== undefined && !(spotCheck >= 0 && spotCheck <= 1)) fail(`--spot-check must be a share between 0 and 1, got "${values['spot-check']}"`, 2)
const diversity = values.diversity
if (diversity != null && !['standard', 'strict', 'lan'].includes(diversity)) fail(`--diversity must be standard, strict or lan, got "${diversity}"`, 2)
if (values['token-file'] == null && !isLoopback(values.host)) {
  fail(`--host ${values.host} is not a loopback address: anyone who can reach it could use the network through you, so give --token-file`, 2)
}
let token: string | undefined
if (values['token-file'] != null) {
  token = (await readFile(values['token-file'], 'utf8').catch((err: NodeJS.ErrnoException) => fail(`cannot read --token-file ${values['token-file']}: ${err.code ?? err.message}`, 2))).trim()
  if (token === '') fail(`--token-file ${values['token-file']} is empty`, 2)
}

let gateway: Gateway
try {
  gateway = await startGateway({
    relays,
    host: values.host,
    port,
    token,
    dataDir: values.data,
    spotCheck,
    diversity: diversity as 'standard' | 'strict' | 'lan' | undefined,
    maxBodyBytes: Math.floor(maxBodyMb * MiB),
    log: (line) => { console.error(`gateway: ${line}`) }
  })
} catch (err) {
  if (err instanceof GatewayError || (err instanceof RequesterError && err.code === 'bad-request')) fail(err.message, 2)
  const code = (err as NodeJS.ErrnoException).code
  fail(code === 'EADDRINUSE' ? `port ${port} on ${values.host} is taken` : (err as Error).message, 1)
}

let stopping = false
const stop = (): void => {
  // A second signal does not wait for the clean stop.
  if (stopping) process.exit(130)
  stopping = true
  console.error('gateway: stopping (running jobs resume on the next start)')
  gateway.close().then(() => { process.exit(0) }, (err: unknown) => {
    console.error(`gateway: ${(err as Error).message}`)
    process.exit(1)
  })
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
// Only now: until a listener exists, a SIGTERM sent on reading the URL would kill us outright.
console.log(gateway.url)

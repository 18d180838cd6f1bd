/**
 * Keeps stdout for MCP messages: a client reads every line there as JSON-RPC, so one stray
 * console.log (ours or a dependency's) would break the session. Imported first by main.ts: from
 * then on process.stdout.write goes to stderr, and only `protocolOut` reaches the real stdout.
 */
import { Writable } from 'node:stream'

const stdout = process.stdout
const writeStdout = stdout.write.bind(stdout)

/** The real stdout, for the MCP transport alone. */
export const protocolOut = new Writable({
  write (chunk: Buffer, _encoding, callback) {
    writeStdout(chunk, (err) => { callback(err ?? null) })
  }
})

stdout.write = process.stderr.write.bind(process.stderr) as typeof stdout.write

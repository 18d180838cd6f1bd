/**
 * A batch: every line of a JSONL file through a model (a built-in name or an .onnx path), each
 * result printed as JSON in input order as soon as it is decided, progress on stderr. The file is
 * read as the network takes inputs, so it may be larger than memory. Ctrl-C cancels through an
 * AbortSignal.
 *
 *   node --import tsx examples/library/map.ts --relay <multiaddr> --model my.onnx --inputs inputs.jsonl [--replicas 2]
 *
 * Each input line is a JSON object keyed by input name, as `npm run infer` takes them.
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { connect, RequesterError } from 'p2p-ai-agents'

const { values } = parseArgs({
  options: {
    relay: { type: 'string' },
    model: { type: 'string', default: 'digits' },
    inputs: { type: 'string' },
    replicas: { type: 'string', default: '1' }
  }
})
const relay = values.relay ?? process.env.RELAY_ADDR
if (relay == null || values.inputs == null) throw new Error('give --relay <multiaddr> (or RELAY_ADDR) and --inputs <file.jsonl>')

async function * jsonLines (path: string): AsyncGenerator<string> {
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    if (line.trim() !== '') yield line
  }
}

const controller = new AbortController()
process.once('SIGINT', () => { controller.abort() })

const net = await connect({ relays: relay, dataDir: null })
try {
  await net.waitForWorkers(1)
  const results = net.map(values.model, jsonLines(values.inputs), {
    replicas: Number(values.replicas),
    signal: controller.signal,
    onProgress: p => { process.stderr.write(`${p.done}/${p.submitted} done, ${p.inFlight} in flight, ${p.tasksPerSec.toFixed(0)} tasks/s\n`) }
  })
  for await (const r of results) console.log(JSON.stringify(r))
} catch (err) {
  if (!(err instanceof RequesterError && err.code === 'cancelled')) throw err
  console.error('cancelled')
  process.exitCode = 130
} finally {
  await net.close()
}
// libp2p's WebRTC for Node (node-datachannel) can keep a process alive after close(): end it here.
process.exit()

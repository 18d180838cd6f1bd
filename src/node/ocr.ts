/**
 * `npm run ocr -- --relay <multiaddr> page1.png page2.png … [--out result.json|result.txt]`:
 * reads text from PNG pages with the network's workers (PP-OCRv4 detection, then recognition of
 * every line, as two batch jobs), printing progress on stderr and the text on stdout.
 * Pre- and post-processing run here; workers only run the two ONNX models.
 *
 * Exit status: 0 when every page was read, 1 when a page failed or the relay is unreachable,
 * 2 for bad arguments or unreadable files.
 */
import './polyfill.js'
import { readFile, writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { parseArgs } from 'node:util'
import { RELAY_OPTION, requiredRelays } from './relay-args.js'
import { startNodePeer, MODELS_DIR } from './node-peer.js'
import { decodePng } from './png.js'
import { waitForWorkers } from './cli-workers.js'
import { ensureOcrModels } from './ocr-assets.js'
import { runOcrBatch } from '../net/ocr-job.js'
import { Reputation } from '../core/reputation.js'
import { nodeVerification } from './local-inference.js'
import { VERIFICATION_OPTIONS, VERIFICATION_USAGE, verificationArgs } from './verification-args.js'
import { parseDictionary } from '../ocr/recognize.js'
import type { RgbaImage } from '../ocr/image.js'

const USAGE = `usage: ocr --relay <multiaddr> <page.png>... [--replicas 1-3] [--workers N] [--out result.json|result.txt]
           ${VERIFICATION_USAGE}
  env: RELAY_ADDR`

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    relay: RELAY_OPTION,
    replicas: { type: 'string', default: '1' },
    ...VERIFICATION_OPTIONS,
    workers: { type: 'string', default: '1' },
    'wait-timeout': { type: 'string', default: '30' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

function fail (message: string, code = 1): never {
  console.error(`ocr: ${message}`)
  process.exit(code)
}

if (values.help) { console.log(USAGE); process.exit(0) }
const relays = requiredRelays(values.relay, (message) => fail(`${message}\n${USAGE}`, 2))
if (positionals.length === 0) fail(`no pages given\n${USAGE}`, 2)
const replicas = Number(values.replicas)
if (![1, 2, 3].includes(replicas)) fail('--replicas must be 1, 2 or 3', 2)
const verification = verificationArgs(values, (message) => fail(`${message}\n${USAGE}`, 2))

const pages: RgbaImage[] = []
for (const file of positionals) {
  try {
    pages.push(decodePng(new Uint8Array(await readFile(file))))
  } catch (err) {
    fail(`${file}: not a readable PNG (${(err as Error).message})`, 2)
  }
}
ensureOcrModels()
const dict = parseDictionary(await readFile(MODELS_DIR + 'ocr-keys.txt', 'utf8'))

const peer = await startNodePeer({ relays, work: false })
  .catch((err: Error) => fail(`cannot reach the relay ${relays.join(', ')}: ${err.message.split('\n')[0]}`))
await waitForWorkers(peer, Number(values.workers), Number(values['wait-timeout'])).catch((err: Error) => fail(err.message))

const t0 = Date.now()
let last = 0
const results = await runOcrBatch(pages, dict, {
  tasks: peer.tasks,
  adverts: peer.discovery.table,
  reputation: new Reputation(),
  replicas,
  verify: nodeVerification(peer, verification),
  onProgress: (p) => {
    if (Date.now() - last < 1000 && p.phase !== 'done') return
    last = Date.now()
    const what = p.phase === 'detect' ? `finding text ${p.job.done}/${p.job.total} pages` : p.phase === 'recognize' ? `reading ${p.lines} lines: ${p.job.done}/${p.job.total} batches` : 'done'
    console.error(`ocr: ${what}`)
  }
})
const seconds = (Date.now() - t0) / 1000
console.error(`ocr: ${pages.length} page(s) in ${seconds.toFixed(1)} s (${(pages.length / seconds * 60).toFixed(1)} pages/min)`)

for (const [i, r] of results.entries()) {
  console.log(`# ${positionals[i]}${r.error != null ? ` (${r.error})` : ''}`)
  console.log(r.text)
}
if (values.out != null) {
  const json = values.out.endsWith('.json')
  const body = json
    ? JSON.stringify(results.map((r, i) => ({ page: basename(positionals[i]), text: r.text, lines: r.lines.map(l => ({ text: l.text, score: l.score, box: l.box })), error: r.error })), null, 2)
    : results.map((r, i) => `# ${positionals[i]}\n${r.text}`).join('\n\n') + '\n'
  await writeFile(values.out, body)
  console.error(`ocr: written to ${values.out}`)
}
await peer.stop()
process.exit(results.some(r => r.error != null) ? 1 : 0)

/**
 * Text from page images: the PP-OCRv4 models run on the network's workers; cutting the page
 * into lines and reading the characters happen here. Prints each page's text, then every box read
 * with its score.
 *
 *   node --import tsx examples/library/ocr.ts --relay <multiaddr> public/samples/ocr/note.png [more.png …]
 */
import { parseArgs } from 'node:util'
import { connect } from 'p2p-ai-agents'

const { values, positionals: files } = parseArgs({ allowPositionals: true, options: { relay: { type: 'string' } } })
const relay = values.relay ?? process.env.RELAY_ADDR
if (relay == null || files.length === 0) throw new Error('give --relay <multiaddr> (or RELAY_ADDR) and one or more PNG files')

const net = await connect({ relays: relay, dataDir: null })
try {
  await net.waitForWorkers(1)
  // Paths, PNG bytes or decoded RGBA images.
  const pages = await net.ocr(files, {
    onProgress: p => { console.error(`${p.phase}: ${p.job.done}/${p.job.total}`) }
  })
  for (const [i, page] of pages.entries()) {
    console.log(`# ${files[i]}${page.error != null ? ` (${page.error})` : ''}`)
    console.log(page.text)
    // Each box read: the recogniser's confidence, the box's four corners in page pixels, its text.
    console.log('boxes:')
    for (const line of page.lines) console.log(`  ${line.score.toFixed(2)} ${line.box.map(p => `${Math.round(p.x)},${Math.round(p.y)}`).join(' ')} ${line.text}`)
  }
} finally {
  await net.close()
}
// libp2p's WebRTC for Node (node-datachannel) can keep a process alive after close(): end it here.
process.exit()

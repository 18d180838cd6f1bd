/**
 * One task: the built-in digits model on a digit drawn in text, run and verified on the network.
 *
 *   npm run relay                      # prints its multiaddr
 *   npm run worker -- --relay <multiaddr>
 *   node --import tsx examples/library/run.ts --relay <multiaddr>     # or RELAY_ADDR=<multiaddr>
 */
import { parseArgs } from 'node:util'
import { connect } from 'p2p-ai-agents'

const { values } = parseArgs({ options: { relay: { type: 'string' } } })
const relay = values.relay ?? process.env.RELAY_ADDR
if (relay == null) throw new Error('give --relay <multiaddr> or set RELAY_ADDR')

// 28 × 28, white on black, as MNIST draws them.
const SEVEN = [
  '', '', '', '', '',
  '      ################',
  '      ################',
  '                  ####',
  '                 ####',
  '                 ###',
  '                ####',
  '               ####',
  '               ###',
  '              ####',
  '             ####',
  '             ###',
  '            ####',
  '           ####',
  '           ###',
  '          ####',
  '          ###',
  '         ####',
  '', '', '', '', '', ''
]
const pixels = Float32Array.from(SEVEN.map(row => row.padEnd(28)).join(''), c => (c === '#' ? 1 : 0))

// dataDir: null keeps nothing on disk (a fresh identity, jobs in memory).
const net = await connect({ relays: relay, dataDir: null })
try {
  await net.waitForWorkers(1)
  // Inputs are keyed by the model's input names: { dims, data } or nested arrays.
  const out = await net.run('digits', { input: { dims: [1, 1, 28, 28], data: pixels } })
  const probs = out.outputs!.find(t => t.name === 'probs')!.data as number[]
  const digit = probs.indexOf(Math.max(...probs))
  console.log(`digit ${digit} (p ${probs[digit]!.toFixed(3)}), computed by ${out.agreedBy!.join(', ')}`)
} finally {
  await net.close()
}
// libp2p's WebRTC for Node (node-datachannel) can keep a process alive after close(): end it here.
process.exit()

/**
 * Cold start vs warm of the OCR models on a fresh worker tab, two builds A/B in the same run:
 * `node --import tsx scripts/bench-cold-ab.ts --a dist-before --b dist --rounds 3` serves each
 * build from its own relay and alternates them round by round (the order flips every round), each
 * round being scripts/bench-models.ts's cold section with one fresh tab (built-in det, rec as a
 * custom model sent over WebRTC). Prints the medians with their spread per build.
 */
import '../src/node/polyfill.js'
import { parseArgs } from 'node:util'
import { startAppServer } from '../src/node/app-server.js'
import { launchChromium } from '../src/node/chromium.js'
import { benchModels } from './bench-models.js'
import { fmt, summarize } from './stats.js'
import type { AppServer } from '../src/node/app-server.js'

const { values } = parseArgs({ options: { a: { type: 'string' }, b: { type: 'string', default: 'dist' }, rounds: { type: 'string', default: '3' } } })
if (values.a == null) throw new Error('--a <build dir> is required (e.g. a build of the baseline commit)')
const builds = [values.a, values.b]
const ROUNDS = Number(values.rounds)
const KEYS = ['detFirstRoundTripMs', 'detFirstLoadMs', 'detWarmRoundTripMs', 'recFirstRoundTripMs', 'recFirstLoadMs', 'transferMs', 'recWarmRoundTripMs'] as const

const servers: AppServer[] = []
const browser = await launchChromium()
const stop = async (): Promise<void> => {
  await browser.close().catch(() => {})
  for (const s of servers) await s.stop().catch(() => {})
}
process.once('SIGINT', () => { void stop().finally(() => process.exit(130)) })
process.once('SIGTERM', () => { void stop().finally(() => process.exit(143)) })
try {
  for (const dir of builds) {
    process.env.P2P_APP_DIR = dir
    servers.push(await startAppServer({ timeoutMs: 120_000 }))
  }
  console.log(`node --import tsx scripts/bench-cold-ab.ts --a ${builds[0]} --b ${builds[1]} --rounds ${ROUNDS}`)
  const rows: Array<Array<Record<string, number>>> = [[], []]
  for (let round = 0; round < ROUNDS; round++) {
    for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
      let r: Record<string, unknown>
      try {
        r = await benchModels({ browser, url: servers[i].url, coldOnly: true, transfers: 1, log: () => {} })
      } catch (err) {
        // A loaded machine can drop a round (a tab's connection); the others still count.
        console.log(`round ${round + 1} ${builds[i]}: failed (${(err as Error).message.split('\n')[0]})`)
        continue
      }
      const row = (r.coldVsWarm as { rounds: Array<Record<string, number>> }).rounds[0]
      rows[i].push(row)
      console.log(`round ${round + 1} ${builds[i]}: det first ${row.detFirstRoundTripMs.toFixed(0)} ms (load ${row.detFirstLoadMs.toFixed(0)}), warm ${row.detWarmRoundTripMs.toFixed(0)} ms; rec first ${row.recFirstRoundTripMs.toFixed(0)} ms (load ${row.recFirstLoadMs.toFixed(0)}, transfer ${row.transferMs.toFixed(0)}), warm ${row.recWarmRoundTripMs.toFixed(0)} ms`)
    }
  }
  for (const k of KEYS) console.log(`${k.padEnd(22)} ${builds.map((b, i) => `${b}: ${rows[i].length === 0 ? 'no round' : fmt(summarize(rows[i].map(x => x[k])), 'ms', 0)}`).join('   ')}`)
} finally {
  await stop()
}
process.exit(0)

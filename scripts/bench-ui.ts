/**
 * The page's own latency (issue #12, item 2): one warm digit task from tab A to tab B, timed in tab A
 * with performance.now(), two ways in the same run, alternated per round:
 *  - UI: a real click (CDP mouse events: press, one frame, release) on Recognise after a digit drawn with real pointer events on
 *    the pad → the new result card shows `data-status=done` in the DOM (seen by a MutationObserver);
 *    timed from the click event (its timestamp) to the observer's callback. The card's own round trip
 *    (tab.run) splits it: "page" is everything outside tab.run (reading the pad, preprocessing,
 *    Svelte's render of the card).
 *  - API: `window.p2pAgents.runDigits(pixels, 1, B)`, timed around the call.
 * Tab B is a background tab (A is in front), as when a volunteer's tab serves a requester.
 * `--profile DIR` also records a CPU profile of both tabs over one UI round (CDP Profiler) and
 * prints each tab's top self-time functions; the .cpuprofile files open in DevTools.
 * Run alone: `P2P_APP_DIR=dist-x node --import tsx scripts/bench-ui.ts [--rounds 6] [--tasks 50]`.
 */
import '../src/node/polyfill.js'
import { mkdir, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { startAppServer } from '../src/node/app-server.js'
import { launchChromium } from '../src/node/chromium.js'
import { heldOutDigits } from '../src/node/mnist.js'
import { openTab, PAD_SIZE, waitForWorker } from '../src/node/page-driver.js'
import { fmt, summarize } from './stats.js'
import type { Summary } from './stats.js'
import type { Browser, CDPSession, Page } from 'playwright-core'
import '../src/browser/scripting.js'

export interface UiBenchOptions {
  browser: Browser
  url: string
  /** Alternating rounds (one UI block and one API block each). */
  rounds: number
  /** Tasks per block. */
  tasks: number
  /** Where to write CPU profiles of one extra UI round (both tabs); none when undefined. */
  profileDir?: string
  log: (label: string, text: string) => void
}

export interface UiBenchResult {
  command: string
  /** Click → result card in the DOM, ms. */
  ui: Summary
  /** tab.run's own round trip for the UI's tasks, ms. */
  uiRoundTrip: Summary
  /** UI time outside tab.run (pad read, preprocessing, render), ms. */
  uiPage: Summary
  /** Around window.p2pAgents.runDigits(…, 1, B), ms. */
  api: Summary
  /** tab.run's own round trip for the API's tasks, ms. */
  apiRoundTrip: Summary
  /** Per-round p50s, for the spread over rounds. */
  roundsUi: number[]
  roundsApi: number[]
  /** Network + framing, and the worker tab's queue and hops, over the UI's tasks. */
  network: Summary
  workerSide: Summary
  inference: Summary
  profiles?: Record<string, Array<{ fn: string, selfMs: number }>>
  /** Main-thread time per task by timeline event, per tab. */
  trace?: Record<string, Record<string, number>>
}

interface Sample { totalMs: number, roundTripMs: number, networkMs: number, workerSideMs: number, inferenceMs: number }

declare global {
  interface Window {
    /** Installed by this bench in tab A: benchUiArm() before a click, then benchUiNext() resolves with that click's task's timings. */
    benchUiNext?: () => Promise<Sample>
  }
}

export async function benchUi (options: UiBenchOptions): Promise<UiBenchResult> {
  const { browser, url, rounds, tasks, log } = options
  const command = `P2P_APP_DIR=${process.env.P2P_APP_DIR ?? 'dist'} node --import tsx scripts/bench-ui.ts --rounds ${rounds} --tasks ${tasks}${options.profileDir != null ? ` --profile ${options.profileDir}` : ''}`
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  try {
    const b = await openTab(context, url)
    const a = await openTab(context, url)
    await a.page.bringToFront()
    await waitForWorker(a.page, b.peerId)
    await drawDigit(a.page)
    await a.page.locator('[data-testid=target-select]').selectOption(b.peerId)
    await installProbe(a.page)
    const button = await a.page.locator('[data-testid=submit-digit]').boundingBox()
    if (button == null) throw new Error('the Recognise button is not on screen')
    const at = { x: button.x + button.width / 2, y: button.y + button.height / 2 }
    const pixels = Array.from(heldOutDigits()[0].pixels)

    const uiOnce = async (): Promise<Sample> => {
      // Armed before the click: the card the click adds is the one waited for.
      await a.page.evaluate('window.benchUiArm()')
      // A person's click holds the button for tens of milliseconds: press, let the page handle the
      // press and draw a frame, release. (mouse.click sends both at once, so the release would
      // queue behind the press's own handling and that would count as the click's time.)
      await a.page.mouse.move(at.x, at.y)
      await a.page.mouse.down()
      await a.page.evaluate('new Promise(resolve => requestAnimationFrame(() => resolve()))')
      await a.page.mouse.up()
      return await a.page.evaluate(async () => await window.benchUiNext!())
    }
    const apiOnce = async (): Promise<{ ms: number, roundTripMs: number }> => await a.page.evaluate(async ([px, id]) => {
      const t0 = performance.now()
      const [run] = await window.p2pAgents.runDigits(px, 1, { kind: 'peer', peerId: id })
      return { ms: performance.now() - t0, roundTripMs: run.roundTripMs }
    }, [pixels, b.peerId] as const)

    // Warm-up: the dial, the worker's session, the page's first renders.
    for (let i = 0; i < 10; i++) { await uiOnce(); await apiOnce() }

    const ui: Sample[] = []
    const api: number[] = []
    const apiRoundTrip: number[] = []
    const roundsUi: number[] = []
    const roundsApi: number[] = []
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so a drift of the machine's load is shared.
      const blocks = r % 2 === 0 ? ['ui', 'api'] : ['api', 'ui']
      for (const block of blocks) {
        const times: number[] = []
        for (let i = 0; i < tasks; i++) {
          if (block === 'ui') {
            const s = await uiOnce()
            ui.push(s)
            times.push(s.totalMs)
          } else {
            const { ms, roundTripMs } = await apiOnce()
            api.push(ms)
            apiRoundTrip.push(roundTripMs)
            times.push(ms)
          }
        }
        ;(block === 'ui' ? roundsUi : roundsApi).push(summarize(times).p50)
      }
    }

    const result: UiBenchResult = {
      command,
      ui: summarize(ui.map(s => s.totalMs)),
      uiRoundTrip: summarize(ui.map(s => s.roundTripMs)),
      uiPage: summarize(ui.map(s => s.totalMs - s.roundTripMs)),
      api: summarize(api),
      apiRoundTrip: summarize(apiRoundTrip),
      roundsUi,
      roundsApi,
      network: summarize(ui.map(s => s.networkMs)),
      workerSide: summarize(ui.map(s => s.workerSideMs)),
      inference: summarize(ui.map(s => s.inferenceMs))
    }
    const spread = (xs: number[]): string => `round p50s ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)} ms`
    log('UI: click → result in the DOM', `${fmt(result.ui)}; ${spread(roundsUi)}`)
    log('  of which tab.run round trip', fmt(result.uiRoundTrip))
    log('  of which the page (read, render)', fmt(result.uiPage))
    log('  network + framing', fmt(result.network))
    log('  worker tab (queue, hops)', fmt(result.workerSide))
    log('  inference', fmt(result.inference, 'ms', 3))
    log('API: p2pAgents.runDigits(…, 1)', `${fmt(result.api)}; ${spread(roundsApi)}`)
    log('  of which tab.run round trip', fmt(result.apiRoundTrip))
    log('UI / API (p50)', `${(result.ui.p50 / result.api.p50).toFixed(2)}×`)

    if (options.profileDir != null) {
      result.profiles = await profileRound(options.profileDir, [['requester', a.page], ['worker', b.page]], uiOnce, tasks, log)
      result.trace = await traceRound(browser, options.profileDir, [['requester', a.page], ['worker', b.page]], uiOnce, tasks, log)
    }
    return result
  } finally {
    await context.close().catch(() => {})
  }
}

/** Draws a "1" on the pad with real pointer events (press, move, release). */
async function drawDigit (page: Page): Promise<void> {
  const pad = await page.locator('[data-testid=digit-pad]').boundingBox()
  if (pad == null) throw new Error('the digit pad is not on screen')
  const s = pad.width / PAD_SIZE
  await page.mouse.move(pad.x + 140 * s, pad.y + 50 * s)
  await page.mouse.down()
  await page.mouse.move(pad.x + 140 * s, pad.y + 230 * s, { steps: 12 })
  await page.mouse.up()
}

/**
 * In tab A: after `benchUiArm()`, `benchUiNext()` resolves once the result card of the next Recognise press shows done,
 * with the time from that press's click event (its own timestamp: the button's handler starts the task on click) to the DOM change.
 */
async function installProbe (page: Page): Promise<void> {
  // A string, not a function: the bench runs under tsx, whose helper names would not exist in the page.
  await page.evaluate(`(() => {
    const button = document.querySelector('[data-testid=submit-digit]')
    let pressedAt = 0
    button.addEventListener('click', (e) => { pressedAt = e.timeStamp }, { capture: true })
    let next
    window.benchUiArm = () => {
      const before = document.querySelector('[data-testid=result]')?.dataset.taskId
      next = new Promise((resolve, reject) => {
        const observer = new MutationObserver(() => {
          const card = document.querySelector('[data-testid=result]')
          if (card == null || card.dataset.taskId === before || card.dataset.status === 'running') return
          const at = performance.now()
          observer.disconnect()
          if (card.dataset.status !== 'done') { reject(new Error('task failed: ' + card.textContent)); return }
          const t = JSON.parse(card.dataset.timings)
          resolve({ totalMs: at - pressedAt, roundTripMs: t.roundTripMs, networkMs: t.networkMs, workerSideMs: t.totalMs - t.inferenceMs, inferenceMs: t.inferenceMs })
        })
        observer.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status', 'data-task-id'] })
      })
    }
    window.benchUiNext = () => next
  })()`)
}

/** Main-thread events of the rendering pipeline and of script, as Chromium's timeline names them. */
const TIMELINE = new Set(['EventDispatch', 'FunctionCall', 'TimerFire', 'RunMicrotasks', 'FireAnimationFrame', 'UpdateLayoutTree', 'Layout', 'PrePaint', 'Paint', 'Layerize', 'Commit', 'HitTest', 'ParseHTML', 'MajorGC', 'MinorGC', 'v8.evaluateModule', 'v8.run', 'XHRReadyStateChange', 'v8.callFunction'])

/**
 * A Chromium trace (devtools.timeline) of `tasks` UI tasks: each page's main thread, time per task
 * in the top-level events above (script by what ran it, style, layout, paint), and the busy total.
 */
async function traceRound (browser: Browser, dir: string, pages: Array<[string, Page]>, uiOnce: () => Promise<Sample>, tasks: number, log: UiBenchOptions['log']): Promise<Record<string, Record<string, number>>> {
  await browser.startTracing(undefined, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute', 'blink.user_timing', '__metadata'] })
  // Each page marks itself: the mark's process is that page's renderer.
  for (const [name, page] of pages) await page.evaluate(`performance.mark('bench-ui:${name}')`)
  for (let i = 0; i < tasks; i++) await uiOnce()
  const buffer = await browser.stopTracing()
  await writeFile(`${dir}/trace.json`, buffer)
  type Event = { name: string, ph: string, pid: number, tid: number, ts: number, dur?: number, args?: { name?: string } }
  const events = (JSON.parse(buffer.toString('utf8')) as { traceEvents: Event[] }).traceEvents
  const pidOf = new Map<number, string>()
  for (const e of events) if (e.name.startsWith('bench-ui:')) pidOf.set(e.pid, e.name.slice('bench-ui:'.length))
  const mainThread = new Map<number, number>()
  for (const e of events) if (e.name === 'thread_name' && e.args?.name === 'CrRendererMain' && pidOf.has(e.pid)) mainThread.set(e.pid, e.tid)
  const out: Record<string, Record<string, number>> = {}
  for (const [pid, name] of pidOf) {
    const tid = mainThread.get(pid)
    const own = events.filter(e => e.pid === pid && e.tid === tid && e.ph === 'X' && e.dur != null && TIMELINE.has(e.name)).sort((x, y) => x.ts - y.ts)
    const sums: Record<string, number> = {}
    let end = -Infinity
    for (const e of own) {
      // Top-level only: what nests inside a counted event is its own time already.
      if (e.ts < end) continue
      end = e.ts + e.dur!
      sums[e.name] = (sums[e.name] ?? 0) + e.dur! / 1000 / tasks
    }
    sums.total = Object.values(sums).reduce((x, y) => x + y, 0)
    out[name] = sums
    log(`trace: ${name} tab main thread, ms/task`, Object.entries(sums).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', '))
  }
  return out
}

/** CPU profiles of each page over `tasks` UI tasks: top self time per function, and the files. */
async function profileRound (dir: string, pages: Array<[string, Page]>, uiOnce: () => Promise<Sample>, tasks: number, log: UiBenchOptions['log']): Promise<Record<string, Array<{ fn: string, selfMs: number }>>> {
  await mkdir(dir, { recursive: true })
  const sessions: Array<[string, CDPSession]> = []
  for (const [name, page] of pages) {
    const cdp = await page.context().newCDPSession(page)
    await cdp.send('Profiler.enable')
    await cdp.send('Profiler.setSamplingInterval', { interval: 100 })
    await cdp.send('Profiler.start')
    sessions.push([name, cdp])
  }
  for (let i = 0; i < tasks; i++) await uiOnce()
  const out: Record<string, Array<{ fn: string, selfMs: number }>> = {}
  for (const [name, cdp] of sessions) {
    const { profile } = await cdp.send('Profiler.stop')
    await cdp.detach().catch(() => {})
    await writeFile(`${dir}/${name}.cpuprofile`, JSON.stringify(profile))
    out[name] = topSelf(profile, 20, tasks)
    log(`profile: ${name} tab, self ms/task`, '')
    for (const f of out[name]) console.log(`    ${f.selfMs.toFixed(3).padStart(8)}  ${f.fn}`)
  }
  return out
}

type Profile = Awaited<ReturnType<CDPSession['send']>> & { nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number } }>, samples?: number[], timeDeltas?: number[] }

/** Self time per function (summed over the profile's nodes), per task. */
function topSelf (profile: unknown, n: number, tasks: number): Array<{ fn: string, selfMs: number }> {
  const p = profile as Profile
  const byId = new Map(p.nodes.map(node => [node.id, node]))
  const self = new Map<string, number>()
  const samples = p.samples ?? []
  const deltas = p.timeDeltas ?? []
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i])
    if (node == null) continue
    const f = node.callFrame
    const file = f.url.split('/').pop() ?? ''
    const key = `${f.functionName === '' ? '(anonymous)' : f.functionName} ${file}${file !== '' ? `:${f.lineNumber + 1}` : ''}`
    // A sample's time is the delta to the next one.
    self.set(key, (self.get(key) ?? 0) + (deltas[i + 1] ?? 0) / 1000)
  }
  return [...self].sort((x, y) => y[1] - x[1]).slice(0, n).map(([fn, ms]) => ({ fn, selfMs: ms / tasks }))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '6' },
      tasks: { type: 'string', default: '50' },
      profile: { type: 'string' },
      out: { type: 'string' }
    }
  })
  const log = (label: string, text: string): void => { console.log(`${label.padEnd(36)} ${text}`) }
  const server = await startAppServer()
  const browser = await launchChromium()
  const stop = async (): Promise<void> => {
    await browser.close().catch(() => {})
    await server.stop()
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void stop().finally(() => process.exit(130)) })
  try {
    const result = await benchUi({ browser, url: server.url, rounds: Number(values.rounds), tasks: Number(values.tasks), profileDir: values.profile, log })
    console.log(`\ncommand: ${result.command}`)
    if (values.out != null) await writeFile(values.out, JSON.stringify(result, null, 2))
  } finally {
    await stop()
  }
  process.exit(0)
}

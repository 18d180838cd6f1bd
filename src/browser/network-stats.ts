/**
 * What the network dashboard charts and lists beyond the tab's own snapshot: tasks this tab served
 * and sent, the network's task rate from peers' adverts, round trips this tab measured per worker,
 * relay round trips and the served relay's /metrics. Fed by events (work events, round trips,
 * adverts); the page reads a snapshot at most once a second, so a busy tab costs a counter
 * increment per task, never a render.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { TaskSeries } from '../core/stats/task-series.js'
import { CounterDeltas } from '../core/stats/counter-deltas.js'
import { pingConnection } from '../net/rtt.js'
import { parseMetrics } from '../core/stats/metrics-text.js'
import type { Clock } from '../core/clock.js'
import type { CounterDelta } from '../core/stats/counter-deltas.js'
import type { SeriesColumns, SeriesPoint } from '../core/stats/task-series.js'
import type { AdvertEvent, GoneEvent } from '../core/discovery/table.js'
import type { WorkEvent } from '../core/work-queue.js'
import type { RoundTrip } from '../net/task-service.js'
import type { TabPeer } from './tab-peer.js'

/** Wall-clock time: the charts' axis shows the time of day. */
const wallClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}

/** How often relay round trips and the served relay's /metrics are read while the dashboard shows. */
const RELAY_POLL_MS = 5000
/** Largest /metrics answer read (a relay's is a few hundred bytes). */
const MAX_METRICS_BYTES = 64 * 1024
/**
 * Most tasks (done + failed) one peer is believed to finish per second, counted over at least a
 * second: a node worker with many slots on a tiny model runs a few thousand. An advert whose totals
 * grew faster is a lie (or totals restarted from a larger value) and charts nothing: a peer
 * alternating its totals between 0 and 2^53 − 1 would otherwise add ~9e15 tasks per advert and
 * flatten every real line. Its totals still become the baseline for its next advert.
 */
export const MAX_PEER_TASKS_PER_SEC = 10_000
/** Worker × model round-trip averages kept (most recently used stay). */
const MAX_MEASURED = 1024

export interface Measured {
  /** Exponential average of round trips, ms. */
  ms: number
  tasks: number
}

export interface StatsSnapshot {
  served: SeriesColumns
  sent: SeriesColumns
  network: SeriesColumns
  last: { served: SeriesPoint, sent: SeriesPoint, network: SeriesPoint }
  /** Largest tasks/s in each series' window (0 when nothing ran). */
  peak: { served: number, sent: number, network: number }
}

export class NetworkStats {
  /** Tasks this tab ran for others (and for itself): latency is the worker-side total (queue, load, inference). */
  readonly served = new TaskSeries({ clock: wallClock })
  /** Tasks this tab sent to other peers: latency is the round trip. */
  readonly sent = new TaskSeries({ clock: wallClock })
  /** Every peer's served tasks as their adverts' totals grow, plus this tab's own. */
  readonly network = new TaskSeries({ clock: wallClock })
  /** Round trips per worker and model sha256, as this tab measured them. */
  readonly measured = new Map<string, Measured>()
  /** Relay peer id → round trip of its connection, ms. */
  readonly relayRtt = new Map<string, number>()
  /** The page's own relay's /metrics, name → value (without the common prefix). */
  metrics: Record<string, number> | undefined
  metricsError: string | undefined
  /** Peer id of the relay that served this page (from /config.json), whose /metrics those are. */
  servingRelay: string | undefined
  private readonly deltas = new CounterDeltas()
  private tab?: TabPeer
  private pollTimer?: ReturnType<typeof setInterval>
  private watchers = 0

  /** Starts listening to a started tab: its round trips and the adverts it hears. */
  attach (tab: TabPeer): void {
    if (this.tab != null) return
    this.tab = tab
    tab.tasks.onRoundTrip(r => { this.onRoundTrip(r) })
    tab.adverts.addEventListener('advert', (evt) => {
      const { peerId, advert } = (evt as CustomEvent<AdvertEvent>).detail
      const now = wallClock.now()
      const d = this.deltas.update(peerId, advert.tasksDone ?? 0, advert.tasksFailed ?? 0, now)
      if (d != null && plausible(d)) this.network.addCounts(d.ok, d.failed, d.fromMs, d.toMs)
    })
    tab.adverts.addEventListener('gone', (evt) => { this.deltas.forget((evt as CustomEvent<GoneEvent>).detail.peerId) })
  }

  /** Feed every WorkEvent of this tab's queue here. */
  onWork (e: WorkEvent): void {
    if (e.state !== 'done' && e.state !== 'failed') return
    const ok = e.state === 'done'
    const ms = e.result?.timings.totalMs ?? (e.startedAt != null && e.endedAt != null ? e.endedAt - e.startedAt : undefined)
    this.served.record(ok, ms)
    this.network.record(ok)
  }

  private onRoundTrip (r: RoundTrip): void {
    // A busy worker refused the task before running it: it goes to another worker, nothing finished.
    if (r.code === 'busy') return
    this.sent.record(r.ok, r.ms)
    if (!r.ok) return
    const key = `${r.worker} ${r.modelSha256}`
    const before = this.measured.get(key)
    this.measured.delete(key)
    this.measured.set(key, before == null ? { ms: r.ms, tasks: 1 } : { ms: before.ms + 0.2 * (r.ms - before.ms), tasks: before.tasks + 1 })
    if (this.measured.size > MAX_MEASURED) this.measured.delete(this.measured.keys().next().value!)
  }

  /** Round trips this tab measured to `worker`, per model sha256. */
  measuredFor (worker: string): Array<{ sha256: string } & Measured> {
    const out: Array<{ sha256: string } & Measured> = []
    for (const [key, m] of this.measured) {
      const [peer, sha256] = key.split(' ')
      if (peer === worker) out.push({ sha256, ...m })
    }
    return out
  }

  snapshot (): StatsSnapshot {
    const served = this.served.columns()
    const sent = this.sent.columns()
    const network = this.network.columns()
    const peak = (c: SeriesColumns): number => c.tasksPerSec.reduce((a, b) => Math.max(a, b), 0)
    return {
      served,
      sent,
      network,
      last: { served: this.served.last(), sent: this.sent.last(), network: this.network.last() },
      peak: { served: peak(served), sent: peak(sent), network: peak(network) }
    }
  }

  /**
   * While a dashboard shows (count of watchers): relay round trips and the served relay's /metrics
   * every few seconds. Returns how to stop watching.
   */
  watch (onUpdate: () => void): () => void {
    this.watchers++
    if (this.watchers === 1) {
      const poll = (): void => { this.pollRelays().then(onUpdate, () => {}) }
      poll()
      this.pollTimer = setInterval(poll, RELAY_POLL_MS)
    }
    let stopped = false
    return () => {
      if (stopped) return
      stopped = true
      if (--this.watchers === 0) clearInterval(this.pollTimer)
    }
  }

  private async pollRelays (): Promise<void> {
    const tab = this.tab
    if (tab?.node == null) return
    await Promise.all([
      ...tab.relays.map(async r => {
        let conns
        try {
          conns = tab.node.getConnections(peerIdFromString(r.peerId)).filter(c => c.status === 'open')
        } catch {
          return
        }
        if (conns.length === 0) {
          this.relayRtt.delete(r.peerId)
          return
        }
        try {
          this.relayRtt.set(r.peerId, await pingConnection(conns[0], 4000))
        } catch {
          // Display only: a slow answer on a loaded machine says nothing certain about the relay.
        }
      }),
      this.readMetrics()
    ])
  }

  private async readMetrics (): Promise<void> {
    try {
      if (this.servingRelay == null) {
        const config = await fetch(new URL('/config.json', location.href), { signal: AbortSignal.timeout(4000) })
        const relay = config.ok ? (await config.json() as { relay?: unknown }).relay : undefined
        if (typeof relay === 'string') this.servingRelay = /\/p2p\/([1-9A-HJ-NP-Za-km-z]{20,100})$/.exec(relay)?.[1]
      }
      const res = await fetch(new URL('/metrics', location.href), { cache: 'no-store', signal: AbortSignal.timeout(4000) })
      if (!res.ok) throw new Error(`GET /metrics: ${res.status}`)
      this.metrics = parseMetrics(await readText(res, MAX_METRICS_BYTES))
      this.metricsError = undefined
    } catch (err) {
      this.metrics = undefined
      this.metricsError = (err as Error).message
    }
  }
}

/** Whether a peer's advertised growth is one it could have worked (see MAX_PEER_TASKS_PER_SEC). */
function plausible (d: CounterDelta): boolean {
  return d.ok + d.failed <= MAX_PEER_TASKS_PER_SEC * Math.max(1, (d.toMs - d.fromMs) / 1000)
}

/**
 * The first `maxBytes` of a response's body as text; the rest is never read (the stream is
 * cancelled), so an endless or huge body costs at most that much.
 */
async function readText (res: Response, maxBytes: number): Promise<string> {
  const reader = res.body?.getReader()
  if (reader == null) return ''
  const decoder = new TextDecoder()
  let text = ''
  let size = 0
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read()
      if (done) break
      const chunk = value.subarray(0, maxBytes - size)
      size += chunk.byteLength
      text += decoder.decode(chunk, { stream: true })
    }
  } finally {
    reader.cancel().catch(() => {}) // nothing left to read, or past the cap: either way done with it
  }
  return text + decoder.decode()
}

/** One per page: created at load so it counts from the tab's first task, whether the dashboard is open or not. */
export const networkStats = new NetworkStats()

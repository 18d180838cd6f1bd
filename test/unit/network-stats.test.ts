/** The page's stats feed: what counts as a sent, served and network task (Date mocked: the charts' axis is wall time). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MAX_PEER_TASKS_PER_SEC, NetworkStats } from '../../src/browser/network-stats.js'
import { AdvertTable } from '../../src/core/discovery/table.js'
import { NOT_A_WORKER } from '../../src/core/discovery/advert.js'
import { TaskError } from '../../src/core/errors.js'
import { FakeClock } from '../helpers/fake-clock.js'
import type { RoundTrip } from '../../src/net/task-service.js'
import type { TabPeer } from '../../src/browser/tab-peer.js'
import type { WorkEvent } from '../../src/core/work-queue.js'

const SHA = 'ab'.repeat(32)

function setup (): { stats: NetworkStats, roundTrip: (r: Partial<RoundTrip>) => void, table: AdvertTable } {
  let listener: ((r: RoundTrip) => void) | undefined
  const table = new AdvertTable({ clock: new FakeClock(0), minIntervalMs: 0 })
  const tab = { tasks: { onRoundTrip: (fn: (r: RoundTrip) => void) => { listener = fn; return () => {} } }, adverts: table } as unknown as TabPeer
  const stats = new NetworkStats()
  stats.attach(tab)
  return { stats, table, roundTrip: (r) => { listener!({ worker: 'w1', taskId: 't', modelSha256: SHA, ok: true, ms: 10, ...r }) } }
}

let seq = 0
function advertise (table: AdvertTable, peerId: string, tasksDone: number, tasksFailed = 0): void {
  table.accept(peerId, { seq: ++seq, leaving: false, advert: { ...NOT_A_WORKER, kind: 'tab', worker: true, tasksDone, tasksFailed } }, new Uint8Array())
}

describe('NetworkStats', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['Date'] }); vi.setSystemTime(1_000_000) })
  afterEach(() => { vi.useRealTimers() })

  it('charts sent tasks with their round trips, leaves busy refusals out, and keeps a per-worker average', () => {
    const { stats, roundTrip } = setup()
    roundTrip({ ms: 10 })
    roundTrip({ ms: 20 })
    roundTrip({ ok: false, code: 'busy', ms: 1 }) // refused before running: the task goes elsewhere
    roundTrip({ ok: false, code: 'timeout', ms: 30_000 })
    vi.setSystemTime(1_001_000)
    const sent = stats.snapshot().last.sent
    expect(sent.tasksPerSec * 5).toBeCloseTo(3) // three finished tasks in the 5-s window
    expect(sent.successRate).toBeCloseTo(2 / 3)
    expect(stats.measuredFor('w1')).toEqual([{ sha256: SHA, ms: 12, tasks: 2 }])
    expect(stats.measuredFor('w2')).toEqual([])
  })

  it('charts the network from adverts\' growing totals (first advert a baseline) plus this tab\'s own served tasks', () => {
    const { stats, table } = setup()
    advertise(table, 'p1', 1000) // tasks from before we listened: not charted
    vi.setSystemTime(1_004_000)
    advertise(table, 'p1', 1036, 4) // 40 tasks over the last 4 s
    stats.onWork({ taskId: 'x', jobId: 'j', requester: 'r', model: 'm', sha256: SHA, state: 'done', result: { taskId: 'x', outputs: [], backend: 'b', threads: 1, timings: { queueMs: 1, loadMs: 0, inferenceMs: 2, totalMs: 3 } } } as WorkEvent)
    stats.onWork({ taskId: 'y', jobId: 'j', requester: 'r', model: 'm', sha256: SHA, state: 'failed', error: new TaskError('timeout', 'slow') } as WorkEvent)
    stats.onWork({ taskId: 'z', jobId: 'j', requester: 'r', model: 'm', sha256: SHA, state: 'running' } as WorkEvent)
    vi.setSystemTime(1_005_000)
    const snap = stats.snapshot()
    // 40 advertised over 4 s and 2 served here, in a 5-s window.
    expect(snap.last.network.tasksPerSec * 5).toBeCloseTo(42)
    expect(snap.last.network.successRate).toBeCloseTo(37 / 42)
    expect(snap.last.served.tasksPerSec * 5).toBeCloseTo(2)
    expect(snap.last.served.successRate).toBeCloseTo(0.5)
    expect(snap.peak.network).toBeGreaterThan(0)
  })

  it('starts a new baseline for a peer that left and came back (its totals restarted)', () => {
    const { stats, table } = setup()
    advertise(table, 'p1', 500)
    table.accept('p1', { seq: ++seq, leaving: true, advert: { ...NOT_A_WORKER } }, new Uint8Array())
    vi.setSystemTime(1_001_000)
    advertise(table, 'p1', 510)
    vi.setSystemTime(1_002_000)
    expect(stats.snapshot().last.network.tasksPerSec).toBe(0)
  })

  it('charts nothing for an advert whose totals grew faster than a peer can work (MAX_PEER_TASKS_PER_SEC, over at least a second)', () => {
    const { stats, table } = setup()
    // A lying peer alternating its totals between 0 and 2^53 − 1: every rise is ~9e15 tasks.
    for (let i = 0; i < 6; i++) {
      vi.setSystemTime(1_000_000 + i * 200)
      advertise(table, 'liar', i % 2 === 0 ? 0 : Number.MAX_SAFE_INTEGER)
    }
    expect(stats.snapshot().peak.network).toBe(0)
    // An honest peer at exactly the cap over 2 s is charted whole.
    advertise(table, 'fast', 0)
    vi.setSystemTime(1_003_000)
    advertise(table, 'fast', 2 * MAX_PEER_TASKS_PER_SEC)
    expect(stats.snapshot().last.network.tasksPerSec * 5).toBeCloseTo(2 * MAX_PEER_TASKS_PER_SEC)
  })

  it('reads at most 64 KB of the relay\'s /metrics, however long its body (the rest is never fetched)', async () => {
    let pulled = 0
    // 1 MB (a bounded stand-in for an endless body: the old read took all of it).
    const endless = new ReadableStream<Uint8Array>({
      pull (controller) {
        if (pulled >= 1024 * 1024) {
          controller.close()
          return
        }
        const chunk = new TextEncoder().encode(pulled === 0 ? 'p2p_ai_agents_connections 3\n' : '#'.repeat(4095) + '\n')
        pulled += chunk.byteLength
        controller.enqueue(chunk)
      }
    }, { highWaterMark: 0 })
    vi.stubGlobal('location', { href: 'http://relay.test/' })
    vi.stubGlobal('fetch', async (url: URL) => url.pathname === '/metrics' ? new Response(endless) : new Response('{}'))
    try {
      const stats = new NetworkStats()
      stats.attach({ tasks: { onRoundTrip: () => () => {} }, adverts: new AdvertTable({ clock: new FakeClock(0) }), node: {}, relays: [] } as unknown as TabPeer)
      let stop = (): void => {}
      await new Promise<void>(resolve => { stop = stats.watch(resolve) })
      stop()
      expect(stats.metricsError).toBeUndefined()
      expect(stats.metrics).toEqual({ connections: 3 })
      expect(pulled).toBeLessThanOrEqual(64 * 1024 + 4096)
    } finally {
      vi.unstubAllGlobals()
    }
  })
})

/** When a peer publishes its advert: soon after a change, never too often, else on a jittered heartbeat. */
import { describe, expect, it } from 'vitest'
import { DEFAULT_HEARTBEAT_MS, DEFAULT_MIN_PUBLISH_INTERVAL_MS, PublishPacer } from '../../src/core/discovery/pacer.js'
import { seededRandom } from '../../src/core/random.js'
import { FakeClock } from '../helpers/fake-clock.js'
import type { PacerOptions } from '../../src/core/discovery/pacer.js'

const START = 50_000

/** A pacer on a fake clock that records the clock time (relative to START) of each publication. */
function setup (options: Omit<PacerOptions, 'clock'> = {}): { clock: FakeClock, pacer: PublishPacer, at: number[], advanceTo: (t: number) => void } {
  const clock = new FakeClock(START)
  const at: number[] = []
  const pacer = new PublishPacer(() => { at.push(clock.now() - START) }, { clock, ...options })
  const advanceTo = (t: number): void => { clock.advance(START + t - clock.now()) }
  return { clock, pacer, at, advanceTo }
}

/** Gaps between successive entries. */
const gaps = (xs: number[]): number[] => xs.slice(1).map((x, i) => x - xs[i])

describe('publish pacer', () => {
  it('publishes nothing before start, and once right at start', () => {
    const { pacer, at, advanceTo } = setup({ jitter: 0 })
    pacer.changed()
    advanceTo(100_000)
    expect(at).toEqual([])
    pacer.start()
    advanceTo(100_000) // no time passes
    expect(at).toEqual([100_000])
  })

  it('turns many changes within the minimum interval into exactly one publication at its end', () => {
    const { pacer, at, advanceTo } = setup({ jitter: 0, minIntervalMs: 1000, heartbeatMs: 30_000 })
    pacer.start()
    advanceTo(0)
    expect(at).toEqual([0])
    for (const t of [1, 10, 200, 500, 700, 999]) {
      advanceTo(t)
      pacer.changed()
      pacer.changed()
    }
    advanceTo(999)
    expect(at).toEqual([0])
    advanceTo(1000)
    expect(at).toEqual([0, 1000])
    advanceTo(30_999)
    expect(at).toEqual([0, 1000]) // nothing more until the heartbeat after that publication
    advanceTo(31_000)
    expect(at).toEqual([0, 1000, 31_000])
  })

  it('waits out the minimum interval for a change just after a publication, and publishes at once when it has passed', () => {
    const { pacer, at, advanceTo } = setup({ jitter: 0, minIntervalMs: 1000, heartbeatMs: 30_000 })
    pacer.start()
    advanceTo(300)
    pacer.changed()
    advanceTo(999)
    expect(at).toEqual([0])
    advanceTo(1000)
    expect(at).toEqual([0, 1000])
    advanceTo(2500)
    pacer.changed()
    advanceTo(2500) // long enough after the last: now
    expect(at).toEqual([0, 1000, 2500])
    advanceTo(2600)
    pacer.changed()
    advanceTo(10_000)
    expect(at).toEqual([0, 1000, 2500, 3500])
  })

  it('with jitter 0 and no changes, publishes exactly every heartbeatMs', () => {
    const { pacer, at, advanceTo } = setup({ jitter: 0, heartbeatMs: 5000 })
    pacer.start()
    advanceTo(60_000)
    expect(at).toEqual(Array.from({ length: 13 }, (_, i) => i * 5000))
  })

  it('uses the documented defaults: 1 s minimum interval, 30 s heartbeat', () => {
    const { pacer, at, advanceTo } = setup({ jitter: 0 })
    pacer.start()
    advanceTo(10)
    pacer.changed()
    advanceTo(DEFAULT_HEARTBEAT_MS + DEFAULT_MIN_PUBLISH_INTERVAL_MS)
    expect(at).toEqual([0, DEFAULT_MIN_PUBLISH_INTERVAL_MS, DEFAULT_MIN_PUBLISH_INTERVAL_MS + DEFAULT_HEARTBEAT_MS])
    expect([DEFAULT_MIN_PUBLISH_INTERVAL_MS, DEFAULT_HEARTBEAT_MS]).toEqual([1000, 30_000])
  })

  it('with jitter 0.1, places each heartbeat by random(): 0 → -10 %, 0.5 → on time, 1 → +10 %', () => {
    const draws = [0, 1, 0.5, 0.75, 0.25]
    let n = 0
    const { pacer, at, advanceTo } = setup({ jitter: 0.1, heartbeatMs: 30_000, random: () => draws[n++ % draws.length] })
    pacer.start()
    advanceTo(200_000)
    // One draw per publication, for the heartbeat after it.
    expect(at.slice(0, 6)).toEqual([0, 27_000, 60_000, 90_000, 121_500, 150_000])
    expect(gaps(at).slice(0, 5)).toEqual([27_000, 33_000, 30_000, 31_500, 28_500])
  })

  it('with jitter, spreads heartbeats over the whole ±jitter band and never outside it', () => {
    const { pacer, at, advanceTo } = setup({ jitter: 0.1, heartbeatMs: 10_000, random: seededRandom(7) })
    pacer.start()
    advanceTo(2_000_000)
    const g = gaps(at)
    expect(g.length).toBeGreaterThan(150)
    for (const gap of g) {
      expect(gap).toBeGreaterThanOrEqual(9000)
      expect(gap).toBeLessThanOrEqual(11_000)
    }
    // Not in lockstep: both halves of the band are used.
    expect(g.some(x => x < 9500)).toBe(true)
    expect(g.some(x => x > 10_500)).toBe(true)
  })

  it('restarts the heartbeat from a change-driven publication', () => {
    const { pacer, at, advanceTo } = setup({ jitter: 0, minIntervalMs: 1000, heartbeatMs: 10_000 })
    pacer.start()
    advanceTo(7000)
    pacer.changed()
    advanceTo(7000)
    advanceTo(30_000)
    expect(at).toEqual([0, 7000, 17_000, 27_000])
  })

  it('a change due before the heartbeat replaces it rather than adding to it', () => {
    const { clock, pacer, at, advanceTo } = setup({ jitter: 0, minIntervalMs: 1000, heartbeatMs: 10_000 })
    pacer.start()
    advanceTo(9500)
    pacer.changed()
    expect(clock.pendingTimers).toBe(1)
    advanceTo(12_000)
    expect(at).toEqual([0, 9500])
  })

  it('stop() cancels a pending publication and the heartbeat, and ignores later changes', () => {
    const { clock, pacer, at, advanceTo } = setup({ jitter: 0.1, minIntervalMs: 1000, heartbeatMs: 5000, random: () => 0.5 })
    pacer.start()
    advanceTo(100)
    pacer.changed() // due at 1000
    pacer.stop()
    expect(clock.pendingTimers).toBe(0)
    advanceTo(1_000_000)
    expect(at).toEqual([0])
    pacer.changed()
    expect(clock.pendingTimers).toBe(0)
    advanceTo(2_000_000)
    expect(at).toEqual([0])
  })

  it('stop() before the first publication publishes nothing', () => {
    const { clock, pacer, at, advanceTo } = setup()
    pacer.start()
    pacer.stop()
    expect(clock.pendingTimers).toBe(0)
    advanceTo(1_000_000)
    expect(at).toEqual([])
  })

  it('after a restart, still never publishes sooner than the minimum interval after the last publication', () => {
    const { pacer, at, advanceTo } = setup({ jitter: 0, minIntervalMs: 1000, heartbeatMs: 10_000 })
    pacer.start()
    advanceTo(400)
    pacer.stop()
    pacer.start()
    advanceTo(999)
    expect(at).toEqual([0])
    advanceTo(1000)
    expect(at).toEqual([0, 1000])
    advanceTo(11_000)
    expect(at).toEqual([0, 1000, 11_000])
  })

  it('keeps the minimum interval between any two publications under a storm of changes', () => {
    const rand = seededRandom(99)
    const { pacer, at, advanceTo } = setup({ jitter: 0.1, minIntervalMs: 1000, heartbeatMs: 5000, random: rand })
    pacer.start()
    let t = 0
    for (let i = 0; i < 2000; i++) {
      t += Math.floor(rand() * 400)
      advanceTo(t)
      pacer.changed()
    }
    advanceTo(t + 10_000)
    expect(Math.min(...gaps(at))).toBeGreaterThanOrEqual(1000)
    // Changes keep coming, so publications follow them closely, one per interval.
    expect(at.length).toBeGreaterThan(t / 1500)
    expect(Math.max(...gaps(at).slice(0, -2))).toBeLessThan(1400)
  })
})

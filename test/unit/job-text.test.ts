import { describe, expect, it } from 'vitest'
import { blockedFor, etaText, formatDuration, shownState } from '../../src/ui/jobs/job-text.js'
import { peerLabel } from '../../src/core/error-text.js'
import { peerName, shortPeerId } from '../../src/core/peer-name.js'

const running = { done: 100, total: 10_000, failed: 0, tasksPerSec: 400, etaSeconds: 24.75 }

describe('etaText', () => {
  it('gives an estimate while the job progresses steadily', () => {
    expect(etaText(running)).toBe('ETA 25 s')
    expect(etaText({ ...running, etaSeconds: 600 })).toBe('ETA 10 min')
  })

  it('says nothing when the job is blocked, has no rate, or trickles (the relay-down "ETA 11990 s")', () => {
    // The figures of a batch with the relay down: ten thousand tasks left at 0.83 tasks/s.
    expect(etaText({ done: 8, total: 10_000, failed: 0, tasksPerSec: 0.8335, etaSeconds: 11990 })).toBeUndefined()
    expect(etaText({ ...running, tasksPerSec: 0, etaSeconds: Number.POSITIVE_INFINITY })).toBeUndefined()
    expect(etaText({ ...running, blocked: { code: 'too-few-workers', message: 'needs 3 different workers, 2 available', sinceMs: 0 } })).toBeUndefined()
    expect(etaText({ ...running, tasksPerSec: 2, etaSeconds: 90_000 })).toBeUndefined()
    expect(etaText({ ...running, done: 10_000 })).toBeUndefined()
  })
})

describe('job words', () => {
  it('says how long a job has been blocked', () => {
    expect(blockedFor({ code: 'no-worker', message: 'x', sinceMs: 1000 }, 13_400)).toBe('for 12 s')
    expect(blockedFor({ code: 'no-worker', message: 'x', sinceMs: 0 }, 300_000)).toBe('for 5 min')
  })

  it('shows a paused or stopped job as such, and terminal states as they are', () => {
    expect(shownState('running', true, undefined)).toBe('paused')
    expect(shownState('running', false, 'this tab')).toBe('running')
    expect(shownState('queued', false, 'this tab')).toBe('queued') // starting: reading its parts
    expect(shownState('running', false, undefined)).toBe('stopped')
    expect(shownState('done', true, undefined)).toBe('done')
  })

  it('shows a job another tab of the browser runs as such, whatever its record says (no Pause or Resume here)', () => {
    expect(shownState('running', false, 'another tab')).toBe('running in another tab')
    expect(shownState('running', true, 'another tab')).toBe('running in another tab')
    expect(shownState('cancelled', false, 'another tab')).toBe('cancelled')
  })

  it('names workers as everywhere else: this tab, or the peer\'s readable name next to its short id', () => {
    expect(peerLabel('self')).toBe('this tab')
    const id = '12D3KooWGzBmnwYJoEmhyq2vP4J1e4cRnDqhTm9ASNZXQ1vR5sUq'
    expect(peerLabel(id)).toBe(`peer ${peerName(id)} (${shortPeerId(id)})`)
    expect(formatDuration(1234)).toBe('1.2 s')
    expect(formatDuration(184_000)).toBe('3 min 4 s')
  })
})

import { describe, expect, it } from 'vitest'
import { SubmissionList } from '../../src/ui/submission-list.js'
import { FakeClock } from '../helpers/fake-clock.js'
import type { ListedTask } from '../../src/ui/submission-list.js'

type Row = ListedTask & { prediction?: number }

function list (max = 50): { results: SubmissionList<Row>, clock: FakeClock, renders: Row[][] } {
  const clock = new FakeClock()
  const renders: Row[][] = []
  const results = new SubmissionList<Row>({ clock, max, graceMs: 100, onChange: (rows) => { renders.push([...rows]) } })
  return { results, clock, renders }
}

describe('the Results list (SubmissionList)', () => {
  it('a task that answers within the grace renders once, with its answer: no running card before it', () => {
    const { results, clock, renders } = list()
    results.add({ taskId: 't1', status: 'running' })
    clock.advance(99)
    results.update('t1', { status: 'done', prediction: 7 })
    clock.advance(1000)
    expect(renders).toEqual([[{ taskId: 't1', status: 'done', prediction: 7 }]])
    expect(clock.pendingTimers).toBe(0)
  })

  it('a slower task shows as running after the grace, then its answer replaces it', () => {
    const { results, clock, renders } = list()
    results.add({ taskId: 't1', status: 'running' })
    clock.advance(100)
    results.update('t1', { status: 'failed' })
    expect(renders).toEqual([[{ taskId: 't1', status: 'running' }], [{ taskId: 't1', status: 'failed' }]])
  })

  it('keeps rows in the order tasks started, whichever answers first, behind nothing kept from before', () => {
    const { results, clock } = list()
    results.restore([{ taskId: 'old', status: 'done' }])
    results.add({ taskId: 'first', status: 'running' })
    results.add({ taskId: 'second', status: 'running' })
    results.update('second', { status: 'done' })
    expect(results.rows.map(r => r.taskId)).toEqual(['second', 'old'])
    results.update('first', { status: 'done' })
    expect(results.rows.map(r => r.taskId)).toEqual(['second', 'first', 'old'])
    clock.advance(1000)
    expect(results.rows.map(r => r.status)).toEqual(['done', 'done', 'done'])
  })

  it('keeps at most `max` rows, and a task pushed out never shows up later', () => {
    const { results, clock } = list(2)
    results.add({ taskId: 'a', status: 'running' })
    results.add({ taskId: 'b', status: 'running' })
    results.add({ taskId: 'c', status: 'running' })
    clock.advance(100)
    expect(results.rows.map(r => r.taskId)).toEqual(['c', 'b'])
    results.update('a', { status: 'done' })
    expect(results.rows.map(r => r.taskId)).toEqual(['c', 'b'])
  })
})

/** BackendPicker.executeMany: a batch goes whole to the model's chosen backend, one task at a time before the choice. */
import { describe, expect, it } from 'vitest'
import { BackendPicker } from '../../src/core/backend-picker.js'
import { TaskError } from '../../src/core/errors.js'
import type { BackendCandidate } from '../../src/core/backend-picker.js'
import type { TaskRequest } from '../../src/core/task-types.js'
import type { BatchOutcome, ExecutionResult } from '../../src/core/work-queue.js'

const request = (taskId: string): TaskRequest => ({ taskId, jobId: 'j', model: { sha256: 'a'.repeat(64), size: 1, name: 'm' }, inputs: [], timeoutMs: 0, outputNames: [] })

function candidate (name: string, calls: string[]): BackendCandidate {
  const result = (): ExecutionResult => ({ outputs: [], loadMs: 0, inferenceMs: 1, backend: name, threads: 1 })
  return {
    name,
    execute: async (r) => {
      calls.push(`${name} execute ${r.taskId}`)
      if (r.taskId === 'bad') throw new TaskError('bad-request', 'no such input')
      return result()
    },
    executeMany: async (rs): Promise<BatchOutcome[]> => {
      calls.push(`${name} executeMany ${rs.map(r => r.taskId).join(',')}`)
      return rs.map(() => result())
    }
  }
}

describe('BackendPicker.executeMany', () => {
  it('hands the whole batch to the only backend', async () => {
    const calls: string[] = []
    const picker = new BackendPicker([candidate('cpu', calls)])
    const out = await picker.executeMany([request('a'), request('b')], 'peer')
    expect(calls).toEqual(['cpu executeMany a,b'])
    expect(out).toHaveLength(2)
  })

  it('runs a batch one task at a time while the model has no backend chosen; a failing task fails alone', async () => {
    const calls: string[] = []
    const picker = new BackendPicker([candidate('one', calls), candidate('two', calls)], { warmups: 1, trials: 1 })
    const out = await picker.executeMany([request('bad'), request('b')], 'peer')
    expect((out[0] as TaskError).code).toBe('bad-request')
    expect(out[1]).not.toBeInstanceOf(Error)
    expect(calls.some(c => c.includes('executeMany'))).toBe(false)
  })
})

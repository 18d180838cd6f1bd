/** Reading the TaskError a call fails with, for assertions. */
import { expect } from 'vitest'
import { TaskError } from '../../src/core/errors.js'

/** `code: message` of the TaskError that `fn` throws (anything else is rethrown). */
export function failure (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof TaskError)) throw err
    return `${err.code}: ${err.message}`
  }
  throw new Error('expected an error')
}

/** The code of the TaskError that `p` rejects with. */
export async function codeOf (p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(TaskError)
    return (err as TaskError).code
  }
  throw new Error('expected a rejection')
}

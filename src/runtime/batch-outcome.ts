/**
 * A batch's outcomes as they cross from where onnxruntime ran them (a Web Worker, an inference
 * process) back to the peer: an Error would lose its code on the way, and a task the batch's
 * output bound left unrun (NotRunInBatch) comes back `again`, to be run alone.
 */
import { TaskError, toTaskError } from '../core/errors.js'
import { NotRunInBatch } from './ort-runner.js'
import type { OrtRunner } from './ort-runner.js'
import type { BackendCandidate } from '../core/backend-picker.js'
import type { TaskErrorCode } from '../core/errors.js'
import type { TaskRequest } from '../core/task-types.js'
import type { BatchOutcome, ExecutionResult } from '../core/work-queue.js'

export type CrossingOutcome = { result: ExecutionResult } | { error: { code: TaskErrorCode, message: string } } | { again: true }

export function crossing (outcome: BatchOutcome): CrossingOutcome {
  if (outcome instanceof NotRunInBatch) return { again: true }
  if (outcome instanceof Error) return { error: { code: outcome.code, message: outcome.message } }
  return { result: outcome }
}

/** The outcomes back as the peer's, each task left unrun run alone (one after another) by `runAlone`. */
export async function landed (outcomes: readonly CrossingOutcome[], requests: readonly TaskRequest[], runAlone: (request: TaskRequest) => Promise<ExecutionResult>): Promise<BatchOutcome[]> {
  const answers: BatchOutcome[] = []
  for (const [i, o] of outcomes.entries()) {
    if ('result' in o) answers.push(o.result)
    else if ('error' in o) answers.push(new TaskError(o.error.code, o.error.message))
    else answers.push(await runAlone(requests[i]).catch((err: unknown) => toTaskError(err, 'inference-failed')))
  }
  return answers
}

/** An OrtRunner in this very process as a backend candidate: the tasks of a batch its output bound left unrun run alone after it. */
export function runnerCandidate (runner: OrtRunner): BackendCandidate {
  return {
    name: runner.backend,
    execute: async (request, from) => await runner.execute(request, from),
    executeMany: async (requests, from) => await landed((await runner.executeMany(requests, from)).map(crossing), requests, async (request) => await runner.execute(request, from)),
    release: async (sha) => { await runner.release(sha) }
  }
}

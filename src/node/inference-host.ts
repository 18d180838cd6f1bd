/**
 * Child-process entry of an InferencePool: onnxruntime-node runs here, away from the worker's
 * libp2p node, so a model that exhausts memory or runs past its deadline costs only this process
 * (the pool kills it and starts another). One task (or one batch of tasks, see OrtRunner.executeMany)
 * at a time; model bytes come from the parent.
 */
import { Worker } from 'node:worker_threads'
import * as ort from 'onnxruntime-node'
import { OrtRunner } from '../runtime/ort-runner.js'
import { crossing } from '../runtime/batch-outcome.js'
import { TaskError, toTaskError } from '../core/errors.js'
import { DEFAULT_LIMITS } from '../core/limits.js'
import { compactTensor, nodeBackendName } from './inference-protocol.js'
import type { FromHost, HostConfig, ToHost, WireOutcome } from './inference-protocol.js'
import type { ModelFetcher, OrtModule } from '../runtime/ort-runner.js'
import type { BatchOutcome, ExecutionResult } from '../core/work-queue.js'

const send = (m: FromHost): void => { process.send?.(m) }

if (process.send == null) {
  console.error('inference-host: started without an IPC channel; it is run by the worker (src/node/inference-pool.ts)')
  process.exit(2)
}
// The parent is gone (stopped, crashed, killed): never outlive it. It may have gone while this
// module's imports (onnxruntime) were loading, before the event could be heard.
process.on('disconnect', () => { process.exit(0) })
if (!process.connected) process.exit(0)
// onnxruntime blocks this thread for a whole run (minutes, for a hostile model), so 'disconnect'
// would wait for it: a watcher thread notices the parent's death (this process re-parented)
// meanwhile and ends the process at once.
new Worker(
  "const { workerData } = require('node:worker_threads'); setInterval(() => { if (process.ppid !== workerData) process.kill(process.pid, 'SIGKILL') }, 200)",
  { eval: true, workerData: process.ppid, execArgv: [] }
).unref()

const config = JSON.parse(process.argv[2] ?? '{}') as HostConfig

const modelWaits = new Map<number, { resolve: (b: Uint8Array) => void, reject: (e: TaskError) => void }>()
let nextModelId = 0
const fetchModel: ModelFetcher = async (ref, from) => await new Promise<Uint8Array>((resolve, reject) => {
  const id = ++nextModelId
  modelWaits.set(id, { resolve, reject })
  send({ type: 'model', id, ref, from })
})

const runners = new Map((config.threads ?? [1]).map(n => [n, new OrtRunner(ort as unknown as OrtModule, fetchModel, {
  backend: nodeBackendName(n),
  threads: n,
  sessionOptions: { intraOpNumThreads: n, interOpNumThreads: 1 },
  sessionBudgetBytes: config.sessionBudgetBytes,
  maxBatchOutputBytes: config.maxOutputBytes
})]))

/** A result ready to cross the IPC channel: compact outputs, refused if no frame could carry them. */
function sendable (result: ExecutionResult): ExecutionResult {
  const bytes = result.outputs.reduce((n, t) => n + t.data.byteLength, 0)
  const max = config.maxOutputBytes ?? DEFAULT_LIMITS.maxFrameBytes
  if (bytes > max) throw new TaskError('inference-failed', `outputs are ${bytes} bytes, over the ${max}-byte frame limit`)
  return { ...result, outputs: result.outputs.map(compactTensor) }
}

/** A task of a batch as it crosses back; one the batch's output bound left unrun comes back `again` (the parent runs it alone). */
function wireOutcome (outcome: BatchOutcome): WireOutcome {
  const crossed = crossing(outcome)
  if (!('result' in crossed)) return crossed
  try {
    return { result: sendable(crossed.result) }
  } catch (err) {
    const e = toTaskError(err)
    return { error: { code: e.code, message: e.message } }
  }
}

async function execute (m: Extract<ToHost, { type: 'execute' | 'executeMany' }>): Promise<void> {
  const runner = runners.get(m.threads)
  try {
    if (runner == null) throw new TaskError('inference-failed', `no onnxruntime runner with ${m.threads} threads here`)
    if (m.type === 'executeMany') {
      const outcomes = await runner.executeMany(m.requests, m.requester)
      send({ type: 'results', id: m.id, outcomes: outcomes.map(wireOutcome), sessions: runner.cachedModels })
    } else {
      send({ type: 'result', id: m.id, result: sendable(await runner.execute(m.request, m.requester)), sessions: runner.cachedModels })
    }
  } catch (err) {
    const e = toTaskError(err)
    send({ type: 'error', id: m.id, error: { code: e.code, message: e.message }, sessions: runner?.cachedModels ?? [] })
  }
}

process.on('message', (m: ToHost) => {
  switch (m.type) {
    case 'execute':
    case 'executeMany':
      // execute() answers every outcome itself; only the answer can fail, when the IPC channel is
      // closed: the parent is gone, and so is any reason to stay.
      execute(m).catch(() => { process.exit(0) })
      return
    case 'release':
      void runners.get(m.threads)?.release(m.sha256).catch(() => {})
      return
    case 'model': {
      const wait = modelWaits.get(m.id)
      modelWaits.delete(m.id)
      if ('error' in m) wait?.reject(new TaskError(m.error.code, m.error.message))
      else wait?.resolve(m.bytes)
    }
  }
})

send({ type: 'ready' })

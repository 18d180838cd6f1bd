/**
 * Child-process entry of an InferencePool: onnxruntime-node runs here, away from the worker's
 * libp2p node, so a model that exhausts memory or runs past its deadline costs only this process
 * (the pool kills it and starts another). One task at a time; model bytes come from the parent.
 */
import { Worker } from 'node:worker_threads'
import * as ort from 'onnxruntime-node'
import { OrtRunner } from '../runtime/ort-runner.js'
import { TaskError, toTaskError } from '../core/errors.js'
import { DEFAULT_LIMITS } from '../core/limits.js'
import { compactTensor, nodeBackendName } from './inference-protocol.js'
import type { FromHost, HostConfig, ToHost } from './inference-protocol.js'
import type { ModelFetcher, OrtModule } from '../runtime/ort-runner.js'

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
  sessionBudgetBytes: config.sessionBudgetBytes
})]))

async function execute (m: Extract<ToHost, { type: 'execute' }>): Promise<void> {
  const runner = runners.get(m.threads)
  try {
    if (runner == null) throw new TaskError('inference-failed', `no onnxruntime runner with ${m.threads} threads here`)
    const result = await runner.execute(m.request, m.requester)
    const bytes = result.outputs.reduce((n, t) => n + t.data.byteLength, 0)
    const max = config.maxOutputBytes ?? DEFAULT_LIMITS.maxFrameBytes
    if (bytes > max) throw new TaskError('inference-failed', `outputs are ${bytes} bytes, over the ${max}-byte frame limit`)
    send({ type: 'result', id: m.id, result: { ...result, outputs: result.outputs.map(compactTensor) }, sessions: runner.cachedModels })
  } catch (err) {
    const e = toTaskError(err)
    send({ type: 'error', id: m.id, error: { code: e.code, message: e.message }, sessions: runner?.cachedModels ?? [] })
  }
}

process.on('message', (m: ToHost) => {
  switch (m.type) {
    case 'execute':
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

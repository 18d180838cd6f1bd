/**
 * `npm run worker -- --relay <multiaddr>`: a headless Node worker on onnxruntime-node.
 *
 *   node --import tsx src/node/worker.ts --relay <multiaddr> [--key file] [--threads n] [--slots n]
 *        [--model-cache dir] [--model-cache-mb n] [--max-model-mb n] [--max-memory-mb n] [--session-budget-mb n]
 *        [--batch n] [--quiet]
 *
 * `--model-cache-mb` (default 2048) is the disk the model cache may use; past it the least
 * recently used models are deleted (fetched again if a task needs them).
 *
 * Inference runs in child processes, one per slot; the worker advertises one slot more than
 * --slots (a task waiting queued, so the next starts without a network round trip), and says so. `--max-memory-mb` (default 2048) caps the
 * resident memory of each: a model that uses more fails its task with `inference-failed` and its
 * process is restarted, while the other slots carry on. `--session-budget-mb` (default 256) is
 * how many MB of models each process keeps loaded; past it the least recently used are unloaded.
 * `--batch` (default DEFAULT_BATCH_TASKS) is the most waiting tasks of one requester a slot runs in
 * one inference call (stacked where the model has a free batch dimension); 1 runs each alone. Env
 * P2P_BATCH sets it when the flag is absent. `--quiet` prints no line per task started or done
 * (failures still print): at thousands of tasks a second the lines cost more than the tasks.
 *
 * Joins the network through the relay (also read from RELAY_ADDR), serves tasks over direct
 * WebRTC and prints one line per task it starts and finishes. Output, one event per line:
 *
 *   worker <peerId> joined <relay>
 *   task <taskId> running: <model> for <requester>
 *   task <taskId> done: <model> for <requester> in <total> ms (queue …, load …, inference … ms)
 *   task <taskId> failed: <model> for <requester>: <code>: <message>
 *   model <name> cached from <peer>: <bytes> bytes in <ms> ms      (a model fetched peer to peer)
 *   model <name> rejected from <peer>: <code>: <message>
 *   model <name> backend: <fastest> (<candidate> <median> ms, …)    (with --threads above 1)
 *   worker: inference process restarted: <reason>                    (e.g. a model over --max-memory-mb)
 *   worker: ran <n> task(s) in <m> inference call(s), at most <k> in one   (each minute tasks ran, and on stop)
 *
 * Exit status: 0 after SIGINT/SIGTERM, 1 when the relay cannot be reached (with a one-line
 * reason on stderr), 2 for bad arguments.
 */
import './polyfill.js'
import { parseArgs } from 'node:util'
import { RELAY_OPTION, relayList } from './relay-args.js'
import { loadOrCreateKey } from './key-file.js'
import { DEFAULT_MODEL_CACHE, startNodePeer } from './node-peer.js'
import { DEFAULT_MODEL_CACHE_MB, FileModelStore } from './file-model-store.js'
import { DEFAULT_MAX_MODEL_BYTES } from '../core/model-transfer/codec.js'
import { BUILTIN_MODELS } from '../models/catalog.js'
import { DEFAULT_MAX_MEMORY_MB } from './inference-pool.js'
import { DEFAULT_SESSION_BUDGET_BYTES } from '../runtime/ort-runner.js'
import { DEFAULT_BATCH_TASKS } from '../core/work-queue.js'
import type { ModelEvent } from '../core/model-store.js'
import type { PrivateKey } from '@libp2p/interface'
import type { NodePeer } from './node-peer.js'
import type { Executor, WorkEvent } from '../core/work-queue.js'

const USAGE = 'usage: worker --relay <multiaddr>... [--key file] [--threads n] [--slots n] [--model-cache dir] [--model-cache-mb n] [--max-model-mb n] [--max-memory-mb n] [--session-budget-mb n] [--batch n] [--quiet]  (env: RELAY_ADDR, P2P_BATCH)'

/** An error's message with its line breaks folded, so every failure prints as exactly one line. */
function oneLine (err: unknown): string {
  const e = err as { message?: string, errors?: unknown[] }
  let message = typeof e?.message === 'string' && e.message !== '' ? e.message : String(err)
  // A dial to several addresses fails with an AggregateError whose own message says little.
  if (Array.isArray(e?.errors) && e.errors.length > 0) message += ` (${oneLine(e.errors[0])})`
  return message.replace(/\s*\n\s*/g, ' ').trim()
}

function exitWith (code: number, message: string): never {
  console.error(`worker: ${message}`)
  process.exit(code)
}

function positiveInt (value: string | undefined, name: string, fallback: number): number {
  if (value == null) return fallback
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1) exitWith(2, `--${name} must be a positive integer, got "${value}"\n${USAGE}`)
  return n
}

let values: { relay?: string[], key?: string, threads?: string, slots?: string, 'model-cache'?: string, 'model-cache-mb'?: string, 'max-model-mb'?: string, 'max-memory-mb'?: string, 'session-budget-mb'?: string, batch?: string, quiet?: boolean, help?: boolean }
try {
  values = parseArgs({
    options: {
      relay: RELAY_OPTION,
      key: { type: 'string' },
      threads: { type: 'string' },
      slots: { type: 'string' },
      'model-cache': { type: 'string' },
      'model-cache-mb': { type: 'string' },
      'max-model-mb': { type: 'string' },
      'max-memory-mb': { type: 'string' },
      'session-budget-mb': { type: 'string' },
      batch: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  }).values
} catch (err) {
  exitWith(2, `${oneLine(err)}\n${USAGE}`)
}
if (values.help === true) {
  console.log(USAGE)
  process.exit(0)
}

let relays: string[] = []
try {
  relays = relayList(values.relay)
} catch (err) {
  exitWith(1, oneLine(err))
}
if (relays.length === 0) exitWith(2, `no relay given: pass --relay <multiaddr> (repeatable) or set RELAY_ADDR\n${USAGE}`)
const threads = positiveInt(values.threads, 'threads', 1)
const slots = positiveInt(values.slots, 'slots', 1)
const modelCacheMb = positiveInt(values['model-cache-mb'], 'model-cache-mb', DEFAULT_MODEL_CACHE_MB)
const maxModelMb = positiveInt(values['max-model-mb'], 'max-model-mb', DEFAULT_MAX_MODEL_BYTES / 1024 / 1024)
const maxMemoryMb = positiveInt(values['max-memory-mb'], 'max-memory-mb', DEFAULT_MAX_MEMORY_MB)
const sessionBudgetMb = positiveInt(values['session-budget-mb'], 'session-budget-mb', DEFAULT_SESSION_BUDGET_BYTES / 1024 / 1024)
const batchTasks = positiveInt(values.batch ?? process.env.P2P_BATCH, 'batch', DEFAULT_BATCH_TASKS)

let peer: NodePeer | undefined
let stopping = false

async function shutdown (signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  console.log(`worker: ${signal}, stopping`)
  // Calls are counted as they start: nothing stopping aborts changes the count, and a stop that hangs must not lose it.
  logCalls()
  // A stuck close must not keep the process alive forever.
  setTimeout(() => { exitWith(1, 'did not stop within 5 s, exiting anyway') }, 5000).unref()
  try {
    await peer?.stop()
  } catch (err) {
    console.error(`worker: error while stopping: ${oneLine(err)}`)
  }
  process.exit(0)
}
const stopOn = (signal: string): void => {
  shutdown(signal).catch((err: unknown) => { exitWith(1, `error while stopping: ${oneLine(err)}`) })
}
process.on('SIGINT', () => { stopOn('SIGINT') })
process.on('SIGTERM', () => { stopOn('SIGTERM') })

function short (peerId: string): string {
  return peerId.length > 12 ? `…${peerId.slice(-8)}` : peerId
}

const ms = (n: number): string => n.toFixed(1)

function logEvent (e: WorkEvent): void {
  if (values.quiet === true && e.state !== 'failed') return
  const who = `${e.model} for ${short(e.requester)}`
  switch (e.state) {
    case 'running':
      console.log(`task ${e.taskId} running: ${who}`)
      return
    case 'done': {
      const t = e.result!.timings
      console.log(`task ${e.taskId} done: ${who} in ${ms(t.totalMs)} ms (queue ${ms(t.queueMs)}, load ${ms(t.loadMs)}, inference ${ms(t.inferenceMs)} ms)`)
      return
    }
    case 'failed':
      console.log(`task ${e.taskId} failed: ${who}: ${e.error?.code ?? 'error'}: ${oneLine(e.error)}`)
  }
}

/**
 * What the queue handed to inference: tasks, calls, and the most tasks one call took. With --quiet
 * this line is what shows that batches form (at most 1 in one: every task ran alone).
 */
const calls = { tasks: 0, calls: 0, largest: 0, logged: 0 }
function countCall (tasks: number): void {
  calls.tasks += tasks
  calls.calls++
  calls.largest = Math.max(calls.largest, tasks)
}
function countCalls (inner: Executor): Executor {
  return {
    execute: async (request, requester, signal) => {
      countCall(1)
      return await inner.execute(request, requester, signal)
    },
    // Only where the inner one batches: the queue batches only when the executor says it can.
    ...(inner.executeMany == null
      ? {}
      : {
          executeMany: async (requests, requester, signal) => {
            countCall(requests.length)
            return await inner.executeMany!(requests, requester, signal)
          }
        })
  }
}
function logCalls (): void {
  if (calls.calls === calls.logged) return
  calls.logged = calls.calls
  console.log(`worker: ran ${calls.tasks} task(s) in ${calls.calls} inference call(s), at most ${calls.largest} in one`)
}
setInterval(logCalls, 60_000).unref()

function logModel (e: ModelEvent): void {
  const name = e.ref.name || e.ref.sha256.slice(0, 12)
  if (e.type === 'cached') console.log(`model ${name} cached from ${short(e.from)}: ${e.ref.size} bytes in ${e.ms} ms`)
  if (e.type === 'rejected') console.log(`model ${name} rejected from ${short(e.from)}: ${e.error.code}: ${oneLine(e.error)}`)
}

let privateKey: PrivateKey | undefined
if (values.key != null) {
  try {
    privateKey = await loadOrCreateKey(values.key)
  } catch (err) {
    exitWith(1, oneLine(err))
  }
}

try {
  peer = await startNodePeer({
    relays,
    privateKey,
    threads,
    queue: { slots, onEvent: logEvent, batch: { maxTasks: batchTasks } },
    wrapExecutor: countCalls,
    modelStore: new FileModelStore(values['model-cache'] ?? DEFAULT_MODEL_CACHE, { budgetBytes: modelCacheMb * 1024 * 1024 }),
    maxModelBytes: maxModelMb * 1024 * 1024,
    maxMemoryMb,
    sessionBudgetBytes: sessionBudgetMb * 1024 * 1024,
    onInferenceRestart: (reason) => { console.log(`worker: inference process restarted: ${oneLine(reason)}`) },
    onModelEvent: logModel,
    onBackendChoice: (sha, c) => {
      const name = BUILTIN_MODELS.find(m => m.sha256 === sha)?.id ?? sha.slice(0, 12)
      console.log(`model ${name} backend: ${c.backend} (${Object.entries(c.medians).map(([b, ms]) => `${b} ${ms.toFixed(2)} ms`).join(', ')})`)
    }
  })
} catch (err) {
  exitWith(1, `cannot reach relay ${relays.join(', ')}: ${oneLine(err)}`)
}
const joinedPeer = peer
const readyRelays = new Set(joinedPeer.relays.ready)
joinedPeer.relays.addEventListener('change', () => {
  for (const v of joinedPeer.relays.views) {
    if (v.state === 'ready' && !readyRelays.has(v.peerId)) {
      readyRelays.add(v.peerId)
      console.log(`worker: joined ${v.addr}`)
    } else if (v.state === 'disconnected' && readyRelays.delete(v.peerId)) {
      console.log(`worker: lost the relay ${v.addr}, reconnecting (direct connections stay up)`)
    }
  }
})
const firstRelay = joinedPeer.relays.views.find(v => v.state === 'ready')?.addr ?? relays[0]
console.log(`worker ${peer.node.peerId.toString()} joined ${firstRelay}`)
// The slots requesters see are the advert's: tasks it takes at once, more than it runs so the next is
// already here when a task ends (one to start; a batch's worth once its tasks prove quick). Say what it starts with.
const advertised = peer.advertiser?.advert().slots ?? slots
console.log(`worker: serving with ${peer.picker?.names.join(' | ') ?? 'onnxruntime-node'}, advertises ${advertised} slot(s) (${slots} running at a time${advertised > slots ? `, ${advertised - slots} queued so the next task starts without a network round trip` : ''}), models up to ${maxModelMb} MB fetched from peers, ${maxMemoryMb} MiB per inference process`)
if (peer.inference?.memoryCapEnforced === false) console.error('worker: warning: --max-memory-mb is not enforced on this platform (it reads /proc); a model can use all memory')
// Start the inference processes now, so the first tasks do not wait for them.
peer.inference?.warm().catch(() => {})

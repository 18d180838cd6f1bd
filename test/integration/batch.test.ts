/**
 * Batch jobs on the real stack: a relay on 127.0.0.1, onnxruntime-node workers (in this process,
 * or `src/node/worker.ts` child processes) and a requester peer (`work: false`) running a
 * JobRunner over direct WebRTC with a FileJobStore in a temp dir — what `npm run submit` does.
 *
 * - all 10,000 MNIST test digits on 8 workers: every prediction equals onnxruntime-node's local one;
 * - churn: 3 of 8 workers are processes SIGKILLed mid-job; the job still completes exactly once;
 * - a lying worker under replication 2: every lie is outvoted and only the liar's reputation suffers;
 * - a worker paused mid-job gets no new tasks once its paused advert arrives; its running task finishes;
 * - `npm run submit` itself (submitMain, in-process): the summary, --out, an --export that
 *   `npm run verify` accepts, Ctrl-C keeping what is decided, --resume finishing the job.
 *
 * Every index must be written to the store exactly once, and every result must equal the
 * reference computed here with onnxruntime-node (one thread, like the workers).
 */
import '../../src/node/polyfill.js'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { peerIdFromString } from '@libp2p/peer-id'
import { JobRunner } from '../../src/net/job-runner.js'
import { connectionKind } from '../../src/net/connection-kind.js'
import { FileJobStore } from '../../src/node/file-job-store.js'
import { loadDigitDataset } from '../../src/node/datasets.js'
import { Reputation } from '../../src/core/reputation.js'
import { argmaxComparator } from '../../src/core/compare.js'
import { fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { digitJobSource, digitPredictions, summarizeDigits } from '../../src/models/digit-job.js'
import { DIGITS_OUTPUT_PROBS } from '../../src/models/digits.js'
import { submitMain } from '../../src/node/submit.js'
import { DEFAULT_ADVERT_TTL_MS } from '../../src/core/discovery/table.js'
import { Cleanup, REPO_ROOT, TaskValve, referenceDigits, FAST_HEARTBEAT, digitsTask, heldOutDigits, spawnWorker, startPeer, startRelay, waitForAdvert, waitForDirect, withTimeout } from './helpers.js'
import type { JobMeta, StoredResult } from '../../src/core/job-store.js'
import type { JobProgress } from '../../src/net/job-runner.js'
import type { NodePeer } from '../../src/node/node-peer.js'
import type { Executor, WorkEvent } from '../../src/core/work-queue.js'
import type { DigitDataset } from '../../src/models/datasets.js'
import type { TaskErrorCode } from '../../src/core/errors.js'
import type { Advert } from '../../src/core/discovery/advert.js'
import type { WireTensor } from '../../src/core/tensor.js'
import type { CliIo } from '../../src/node/cli.js'

const DIGITS = builtinModel('digits')
const SHA = modelRef(DIGITS).sha256

/** Bound for a whole job; generous because this 2-core box may be shared with other suites. */
const JOB_MS = 90_000
/** Bound for every worker's advert to reach the requester (a full mesh of WebRTC dials). */
const MESH_MS = 60_000

let dataset: DigitDataset
/** onnxruntime-node's prediction for every dataset image: what any correct run must give. */
let reference: Uint8Array

beforeAll(async () => {
  dataset = await loadDigitDataset('mnist-test')
  reference = await referenceDigits(dataset)
})

// ---------------------------------------------------------------- harness

/** A FileJobStore that also counts every result written, per index (decisions are written exactly once). */
class CountingStore extends FileJobStore {
  readonly writes = new Map<number, number>()
  total = 0

  override async putResults (jobId: string, results: StoredResult[]): Promise<void> {
    for (const r of results) this.writes.set(r.index, (this.writes.get(r.index) ?? 0) + 1)
    this.total += results.length
    await super.putResults(jobId, results)
  }
}

/** What the requester sent to each worker: calls, in flight, results and failures, in order. */
class Dispatches {
  readonly sent = new Map<string, number>()
  readonly inFlight = new Map<string, number>()
  readonly failures: Array<{ peerId: string, code: TaskErrorCode }> = []
  /** Called before each task is sent; throw to flag a dispatch that must not happen. */
  onSend?: (peerId: string) => void

  constructor (tasks: NodePeer['tasks']) {
    const run = tasks.run.bind(tasks)
    tasks.run = async (peer, request, options) => {
      const id = peer.toString()
      this.onSend?.(id)
      this.sent.set(id, (this.sent.get(id) ?? 0) + 1)
      this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1)
      try {
        return await run(peer, request, options)
      } catch (err) {
        this.failures.push({ peerId: id, code: (err as { code: TaskErrorCode }).code })
        throw err
      } finally {
        this.inFlight.set(id, this.inFlight.get(id)! - 1)
      }
    }
  }
}

interface Job {
  runner: JobRunner
  meta: JobMeta
  store: CountingStore
  reputation: Reputation
  dispatches: Dispatches
}

async function tempStore (cleanup: Cleanup): Promise<CountingStore> {
  const dir = await mkdtemp(join(tmpdir(), 'p2p-batch-'))
  cleanup.add(`rm ${dir}`, async () => { await rm(dir, { recursive: true, force: true }) })
  return new CountingStore(dir)
}

/** A digits job over the first `taskCount` images, ready to run on `requester` (not started). */
async function newJob (cleanup: Cleanup, requester: NodePeer, taskCount: number, replicas: number): Promise<Job> {
  const store = await tempStore(cleanup)
  const now = Date.now()
  const meta: JobMeta = {
    jobId: randomUUID(), modelId: DIGITS.id, model: modelRef(DIGITS), datasetId: dataset.id,
    taskCount, replicas, adaptive: false, state: 'queued', createdAt: now, updatedAt: now
  }
  await store.putJob(meta)
  const reputation = new Reputation()
  const dispatches = new Dispatches(requester.tasks)
  const runner = new JobRunner({
    meta, source: digitJobSource(dataset), tasks: requester.tasks, adverts: requester.discovery.table, store,
    compare: argmaxComparator(DIGITS_OUTPUT_PROBS), reputation
  })
  cleanup.add('stop the job runner', async () => { await runner.stop() })
  return { runner, meta, store, reputation, dispatches }
}

/** Resolves once the requester holds no advert from `peerId` (it could not reach it, or it left). */
async function waitForGone (requester: NodePeer, peerId: string, what: string, timeoutMs = 30_000): Promise<void> {
  const table = requester.discovery.table
  if (table.get(peerId) == null) return
  let onGone!: () => void
  const gone = new Promise<void>(resolve => {
    onGone = () => { if (table.get(peerId) == null) resolve() }
    table.addEventListener('gone', onGone)
  })
  try {
    await withTimeout(gone, timeoutMs, what)
  } finally {
    table.removeEventListener('gone', onGone)
  }
}

/**
 * Resolves once every worker in `peerIds` has advertised that it can run the digits model and the
 * requester has dialled it: connections are on demand, and on a loaded machine a job could
 * otherwise finish on the workers whose WebRTC handshake happened to complete first.
 */
async function waitForWorkers (requester: NodePeer, peerIds: string[]): Promise<void> {
  const ready = (a: Advert): boolean => a.worker && !a.paused && a.models.includes(SHA)
  await Promise.all(peerIds.map(async id => {
    await waitForAdvert(requester, id, ready, () => {
      const connections = requester.node.getConnections(peerIdFromString(id)).map(c => `${connectionKind(c)} ${c.status}`).join(', ') || 'none'
      return `worker ${id}'s advert (the requester has ${requester.discovery.table.size} advert(s) from ${peerIds.length} workers; its connections to this one: ${connections})`
    }, MESH_MS)
    await waitForDirect(requester.node, id, MESH_MS)
  }))
}

/** Resolves once the job's progress satisfies `predicate` (checked on every progress event). */
async function waitForProgress (runner: JobRunner, predicate: (p: JobProgress) => boolean, what: string, timeoutMs = JOB_MS): Promise<JobProgress> {
  let onProgress!: () => void
  const reached = new Promise<JobProgress>(resolve => {
    onProgress = () => { const p = runner.progress; if (predicate(p)) resolve(p) }
    runner.addEventListener('progress', onProgress)
  })
  try {
    return await withTimeout(reached, timeoutMs, () => `${what} (progress: ${JSON.stringify({ ...runner.progress, perPeer: undefined })})`)
  } finally {
    runner.removeEventListener('progress', onProgress)
  }
}

/** The job's results: every index 0..n-1 written exactly once, every prediction equal to the reference. */
async function expectCompleteAndCorrect (job: Job, final: JobMeta): Promise<StoredResult[]> {
  const n = job.meta.taskCount
  expect(final.state, final.error).toBe('done')
  expect((await job.store.getJob(job.meta.jobId))?.state).toBe('done')
  expect(job.runner.progress).toMatchObject({ state: 'done', total: n, done: n, failed: 0 })

  const duplicates = [...job.store.writes].filter(([, count]) => count !== 1)
  expect(duplicates, 'indices written more than once').toEqual([])
  expect(job.store.writes.size, 'distinct indices written').toBe(n)
  expect(job.store.total, 'results written (one per decision)').toBe(n)

  const results = await job.store.getResults(job.meta.jobId)
  expect(results.map(r => r.index)).toEqual(Array.from({ length: n }, (_, i) => i))
  const predictions = digitPredictions(results, dataset).map(r => r.prediction)
  const wrong = predictions.flatMap((p, i) => p === reference[i] ? [] : [`#${i}: ${p} ≠ ${reference[i]}`])
  expect(wrong, 'predictions that differ from local onnxruntime-node').toEqual([])
  return results
}

/** Starts `count` in-process workers (onnxruntime-node, one thread each) joined through the relay. */
async function startWorkers (cleanup: Cleanup, relayAddr: string, count: number, options: Parameters<typeof startPeer>[2] = {}): Promise<NodePeer[]> {
  return await Promise.all(Array.from({ length: count }, async () => await startPeer(cleanup, relayAddr, options)))
}

/** An executor that runs the real model, then rotates the probs vector by one class: a wrong answer every time. */
function lyingExecutor (inner: Executor, counter: { lies: number }): Executor {
  return {
    execute: async (request, requester) => {
      const r = await inner.execute(request, requester)
      const outputs = r.outputs.map((t: WireTensor) => {
        if (t.name !== DIGITS_OUTPUT_PROBS) return t
        const probs = toTypedArray(t) as Float32Array
        const rotated = new Float32Array(probs.length)
        for (let i = 0; i < probs.length; i++) rotated[(i + 1) % probs.length] = probs[i]
        return fromTypedArray(t.name, 'float32', [...t.dims], rotated)
      })
      counter.lies++
      return { ...r, outputs }
    }
  }
}

// ---------------------------------------------------------------- tests

describe('batch jobs over the real network', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })
  afterAll(async () => { await cleanup.run() })

  it('runs all 10,000 MNIST test digits on 8 workers; every prediction equals local onnxruntime-node', async () => {
    const relay = await startRelay(cleanup)
    const [requester, workers] = await Promise.all([
      startPeer(cleanup, relay.addr, { work: false }),
      startWorkers(cleanup, relay.addr, 8)
    ])
    const ids = workers.map(w => w.node.peerId.toString())
    await waitForWorkers(requester, ids)

    const job = await newJob(cleanup, requester, dataset.count, 1)
    const t0 = performance.now()
    const final = await withTimeout(job.runner.run(), JOB_MS, () => `the 10,000-task job (progress ${JSON.stringify(job.runner.progress)})`)
    const seconds = (performance.now() - t0) / 1000
    console.log(`batch: 10,000 tasks on 8 in-process workers in ${seconds.toFixed(1)} s (${(dataset.count / seconds).toFixed(0)} tasks/s)`)

    const results = await expectCompleteAndCorrect(job, final)
    // Accuracy is the model's own: the summary equals what local onnxruntime-node scores.
    let correct = 0
    for (let i = 0; i < dataset.count; i++) if (reference[i] === dataset.label(i)) correct++
    const summary = summarizeDigits(digitPredictions(results, dataset))
    expect(summary.count).toBe(dataset.count)
    expect(summary.correct).toBe(correct)
    expect(summary.accuracy).toBe(correct / dataset.count)
    expect(summary.accuracy).toBeGreaterThan(0.95)
    expect(summary.crossChecked).toBe(0) // replicas 1

    // Every result came from one of the 8 workers, and all of them took part.
    const perPeer = job.runner.progress.perPeer
    expect(Object.keys(perPeer).sort()).toEqual([...ids].sort())
    expect(Object.values(perPeer).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(dataset.count)
    for (const r of results) expect(r.agreedBy).toHaveLength(1)
    expect(job.dispatches.failures, 'no task failed on a healthy network').toEqual([])
  }, 150_000)

  it('churn: 3 of 8 workers are processes SIGKILLed mid-job; the job completes with every task exactly once', async () => {
    const N = 4000
    const relay = await startRelay(cleanup)
    // Short heartbeats, so a killed worker's tasks are re-queued within about eight seconds.
    const [requester, local, doomed] = await Promise.all([
      startPeer(cleanup, relay.addr, { work: false, client: FAST_HEARTBEAT }),
      startWorkers(cleanup, relay.addr, 5),
      Promise.all([0, 1, 2].map(async () => await spawnWorker(cleanup, relay.addr, [], 60_000)))
    ])
    await waitForWorkers(requester, [...local.map(w => w.node.peerId.toString()), ...doomed.map(d => d.peerId)])
    // One task each first: a process's inference child starts cold, and the in-process workers
    // could otherwise do a fifth of the job before its first result.
    const [digit] = heldOutDigits()
    await Promise.all(doomed.map(async (d, k) => await requester.tasks.run(peerIdFromString(d.peerId), digitsTask(`warm-${k}`, digit.pixels))))

    const job = await newJob(cleanup, requester, N, 1)
    const running = job.runner.run()
    running.catch(() => {}) // awaited below
    const killedAt = new Map<string, number>()
    // Kill one at 20 %, 25 % and 30 % of the tasks done (or later), each once it has done work and
    // while it has tasks in flight. A process's first results can come after the in-process workers
    // have done 20 % (its inference child starts cold), so "has done work" is waited for, not assumed.
    for (const [k, worker] of doomed.entries()) {
      const threshold = N * (0.2 + 0.05 * k)
      const p = await waitForProgress(job.runner, p => p.done >= threshold && (p.perPeer[worker.peerId] ?? 0) > 0 && (job.dispatches.inFlight.get(worker.peerId) ?? 0) > 0,
        `${threshold} tasks done, with worker process ${k} having done some and busy`)
      expect(p.done, 'killed mid-job').toBeLessThan(N)
      worker.child.kill('SIGKILL')
      killedAt.set(worker.peerId, p.done)
    }
    const final = await withTimeout(running, JOB_MS, () => `the job to complete after the kills (progress ${JSON.stringify(job.runner.progress)})`)
    await expectCompleteAndCorrect(job, final)

    for (const worker of doomed) expect(await worker.exited).toEqual({ code: null, signal: 'SIGKILL' })
    // Their tasks in flight were re-queued (on a peer-gone failure or the advert going away) or,
    // near the end, copied as stragglers: either way they only ever failed as lost, never as task errors.
    for (const f of job.dispatches.failures) {
      expect(killedAt.has(f.peerId), `a task failed on surviving worker ${f.peerId}: ${f.code}`).toBe(true)
      expect(['peer-gone', 'no-peer']).toContain(f.code)
    }
    // The requester drops each killed worker's advert: its direct connection is found dead (WebRTC
    // notices a SIGKILLed peer only when consent checks fail, slower under load), or at the latest
    // when the advert expires.
    await Promise.all(doomed.map(async (worker) => {
      await waitForGone(requester, worker.peerId, `the requester to drop killed worker ${worker.peerId}'s advert`, DEFAULT_ADVERT_TTL_MS + 10_000)
    }))
    // The survivors finished the job.
    const results = await job.store.getResults(job.meta.jobId)
    const bySurvivors = results.filter(r => !killedAt.has(r.agreedBy[0])).length
    expect(bySurvivors).toBeGreaterThan(N * 0.5)
  }, 240_000)

  it('a lying worker under replication 2: every lie is outvoted, its reputation drops, honest workers are never blamed', async () => {
    const N = 2000
    const relay = await startRelay(cleanup)
    const counter = { lies: 0 }
    const [requester, honest, [liar]] = await Promise.all([
      startPeer(cleanup, relay.addr, { work: false }),
      startWorkers(cleanup, relay.addr, 4),
      startWorkers(cleanup, relay.addr, 1, { wrapExecutor: inner => lyingExecutor(inner, counter) })
    ])
    const honestIds = honest.map(w => w.node.peerId.toString())
    const liarId = liar.node.peerId.toString()
    await waitForWorkers(requester, [...honestIds, liarId])

    const job = await newJob(cleanup, requester, N, 2)
    const final = await withTimeout(job.runner.run(), JOB_MS, () => `the replicated job (progress ${JSON.stringify(job.runner.progress)})`)
    const results = await expectCompleteAndCorrect(job, final)

    // Every task was decided by two honest workers agreeing; the liar's word never counted.
    for (const r of results) {
      expect(r.crossChecked).toBe(true)
      expect(r.agreedBy).toHaveLength(2)
      expect(r.agreedBy).not.toContain(liarId)
    }
    // (The scheduler may stop giving the liar work once its score falls: it only has to have lied.)
    expect(counter.lies, 'the liar was given work').toBeGreaterThan(0)
    const { reputation } = job
    const lied = reputation.record(liarId)
    expect(lied.agreed).toBe(0)
    expect(lied.disagreed).toBeGreaterThan(0)
    // Each lie that reached a vote cost it one disagreement (lies answered after their task was final are dropped unvoted).
    expect(lied.disagreed).toBeLessThanOrEqual(counter.lies)
    expect(job.runner.progress.disagreements).toBe(lied.disagreed)
    for (const id of honestIds) {
      expect(reputation.record(id).disagreed, `honest worker ${id} was never outvoted`).toBe(0)
      expect(reputation.record(id).agreed).toBeGreaterThan(0)
      expect(reputation.score(liarId)).toBeLessThan(reputation.score(id))
    }
    expect(reputation.score(liarId)).toBeLessThan(0.5) // below a newcomer's
    // The requester persisted the same reputation.
    expect((await job.store.getReputation())[liarId]).toMatchObject({ agreed: 0, disagreed: lied.disagreed })
  }, 150_000)

  it('a worker paused mid-job gets no new tasks once its paused advert arrives; the task it was running finishes', async () => {
    const N = 2000
    const relay = await startRelay(cleanup)
    const events: WorkEvent[] = []
    let paused: NodePeer | undefined
    let pausedTaskId: string | undefined
    let done = 0
    // Pause from inside the queue's own event: the 21st task has just started running.
    const onEvent = (e: WorkEvent): void => {
      events.push(e)
      if (e.state === 'done') done++
      if (e.state === 'running' && done >= 20 && pausedTaskId == null) {
        pausedTaskId = e.taskId
        paused!.advertiser!.setPaused(true)
      }
    }
    // The other workers hold their tasks until the pause has reached the requester: at thousands
    // of tasks a second the job could otherwise end before the paused advert (paced) arrives.
    const held = new TaskValve()
    held.close()
    cleanup.add('open the held workers', () => { held.open() })
    const [requester, others, [toPause]] = await Promise.all([
      startPeer(cleanup, relay.addr, { work: false }),
      startWorkers(cleanup, relay.addr, 2, { wrapExecutor: held.wrap }),
      startWorkers(cleanup, relay.addr, 1, { queue: { onEvent } })
    ])
    paused = toPause
    const pausedId = toPause.node.peerId.toString()
    await waitForWorkers(requester, [...others.map(w => w.node.peerId.toString()), pausedId])

    const job = await newJob(cleanup, requester, N, 1)
    // Checked at each send: has the requester got the paused advert by now?
    const late: string[] = []
    job.dispatches.onSend = (peerId) => { if (peerId === pausedId && requester.discovery.table.get(pausedId)?.advert.paused === true) late.push(peerId) }
    const running = job.runner.run()
    running.catch(() => {})
    await waitForAdvert(requester, pausedId, a => a.paused, 'the paused worker\'s advert', JOB_MS)
    const atPause = job.runner.progress
    expect(atPause.done, 'paused mid-job').toBeLessThan(N)
    const sentBefore = job.dispatches.sent.get(pausedId) ?? 0
    held.open()

    const final = await withTimeout(running, JOB_MS, () => `the job to complete on the other workers (progress ${JSON.stringify(job.runner.progress)})`)
    const results = await expectCompleteAndCorrect(job, final)

    expect(late, 'tasks sent to the paused worker after its paused advert arrived').toEqual([])
    expect(job.dispatches.sent.get(pausedId)).toBe(sentBefore)
    expect(toPause.queue!.paused).toBe(true)
    // Everything the paused worker accepted, the task running at the pause included, finished…
    expect(pausedTaskId).toBeDefined()
    const states = new Map<string, string>()
    for (const e of events) states.set(e.taskId, e.state)
    expect([...states].filter(([, s]) => s !== 'done'), 'tasks the paused worker accepted but did not finish').toEqual([])
    expect(states.get(pausedTaskId!)).toBe('done')
    // …and the requester used that result: task ids are <jobId>/<index>/<assignment>.
    const pausedIndex = Number(pausedTaskId!.split('/')[1])
    expect(results[pausedIndex].agreedBy).toEqual([pausedId])
    // Anything it was sent while the pause was on its way was turned away (busy) and run elsewhere.
    for (const f of job.dispatches.failures) expect(f).toEqual({ peerId: pausedId, code: 'busy' })
    const byPaused = results.filter(r => r.agreedBy[0] === pausedId).length
    expect(byPaused).toBeLessThan(N / 2)
    expect(results.length - byPaused).toBeGreaterThan(N / 2)
  }, 150_000)
})

// ---------------------------------------------------------------- the CLI

/** Captured streams for submitMain; `onErr` sees each stderr write (the progress bar redraws when isTTY). */
function cliIo (interrupt?: AbortSignal, onErr?: (text: string) => void): { io: CliIo, stdout: () => string, stderr: () => string } {
  const out: string[] = []
  const err: string[] = []
  return {
    io: {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => { err.push(t); onErr?.(t) }, isTTY: true },
      env: {},
      interrupt
    },
    stdout: () => out.join(''),
    stderr: () => err.join('')
  }
}

describe('npm run submit (submitMain, in-process) over the real network', () => {
  const cleanup = new Cleanup()
  let relayAddr: string
  let dir: string
  let store: string
  let key: string
  /** On both workers: lets the Ctrl-C test stop a job with tasks surely left. */
  const valve = new TaskValve()

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2p-submit-'))
    cleanup.add(`rm ${dir}`, async () => { await rm(dir, { recursive: true, force: true }) })
    store = join(dir, 'jobs')
    key = join(dir, 'submit.key')
    relayAddr = (await startRelay(cleanup)).addr
    await startWorkers(cleanup, relayAddr, 2, { wrapExecutor: valve.wrap })
  })
  afterAll(async () => { await cleanup.run() })

  it('runs a replicated job with the summary, --out csv and an --export that npm run verify accepts', async () => {
    const out = join(dir, 'results.csv')
    const proofs = join(dir, 'proofs.jsonl')
    const c = cliIo()
    const status = await withTimeout(submitMain(['--relay', relayAddr, '--limit', '300', '--replicas', '2', '--workers', '2', '--store', store, '--key', key, '--out', out, '--export', proofs], c.io), JOB_MS, () => `submit (stderr: ${c.stderr().slice(-500)})`)
    expect(status, c.stderr()).toBe(0)
    const stdout = c.stdout()
    const jobId = /^job (\S+): done$/m.exec(stdout)?.[1]
    expect(jobId, stdout).toBeDefined()
    expect(stdout).toMatch(/^ {2}tasks {7}300\/300 in [\d.]+ s/m)
    expect(stdout).toMatch(/^ {2}accuracy {4}\d+\.\d\d % of 300; /m)
    expect(stdout).toMatch(/^ {2}verified {4}300 cross-checked \(replicas 2\), 0 disagreement\(s\)$/m)
    expect(stdout.match(/^ {2}peer {8}…\S{10} ran \d+ \([\d.]+ %\), reputation [\d.]+ \(✓\d+ ✗0\)$/gm)).toHaveLength(2)
    expect(stdout).toMatch(/^ {2}audit head {2}[0-9a-f]{64} /m)
    expect(stdout).toContain(`  results     written to ${out} (input order)`)
    expect(stdout).toContain(`  proofs      results, signed receipts and the audit log written to ${proofs}`)
    const csv = (await readFile(out, 'utf8')).trim().split('\n')
    expect(csv[0]).toBe('index,label,prediction,confidence,held_out,cross_checked,workers')
    expect(csv.slice(1).map(l => Number(l.split(',')[0]))).toEqual([...Array(300).keys()])
    const predictions = csv.slice(1).map(l => Number(l.split(',')[2]))
    expect(predictions.filter((p, i) => p !== reference[i])).toEqual([])

    const verify = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/node/verify.ts', proofs], { cwd: REPO_ROOT, timeout: 60_000 })
    expect(verify.stdout).toContain('checks out')
  }, 150_000)

  it('Ctrl-C stops the job and keeps what is decided; --resume finishes it', async () => {
    const controller = new AbortController()
    // Once it says 200 are done, the workers start no task until the valve opens: the job cannot end
    // before the Ctrl-C lands, however fast the machine.
    const first = cliIo(controller.signal, (text) => {
      const m = /(\d+)\/3000 /.exec(text)
      if (m != null && Number(m[1]) >= 200) { valve.close(); controller.abort() }
    })
    let stopped: number
    try {
      stopped = await withTimeout(submitMain(['--relay', relayAddr, '--limit', '3000', '--store', store, '--key', key], first.io), JOB_MS, () => `submit (stderr: ${first.stderr().slice(-500)})`)
    } finally {
      valve.open()
    }
    expect(stopped, first.stderr()).toBe(130)
    const jobId = /interrupted: saving; resume with --resume (\S+)/.exec(first.stderr())?.[1]
    expect(jobId, first.stderr()).toBeDefined()
    const done = Number(/^ {2}tasks {7}(\d+)\/3000 /m.exec(first.stdout())?.[1])
    expect(done).toBeGreaterThanOrEqual(200)
    expect(done).toBeLessThan(3000)
    expect(first.stdout()).not.toMatch(/: done$/m)

    const second = cliIo()
    const status = await withTimeout(submitMain(['--relay', relayAddr, '--resume', jobId!, '--store', store, '--key', key, '--wait-timeout', '60'], second.io), JOB_MS, () => `submit --resume (stderr: ${second.stderr().slice(-500)})`)
    expect(status, second.stderr()).toBe(0)
    expect(second.stdout()).toMatch(new RegExp(`^job ${jobId}: done$`, 'm'))
    expect(second.stdout()).toMatch(/^ {2}tasks {7}3000\/3000 /m)

    // A finished job resumed again only prints its results.
    const third = cliIo()
    expect(await submitMain(['--relay', relayAddr, '--resume', jobId!, '--store', store, '--key', key], third.io)).toBe(0)
    expect(third.stderr()).toContain(`job ${jobId} is already done; printing its results`)
    expect(third.stdout()).toMatch(/^ {2}tasks {7}3000\/3000 /m)
    const unknown = cliIo()
    expect(await submitMain(['--relay', relayAddr, '--resume', 'no-such-job', '--store', store, '--key', key], unknown.io)).toBe(2)
    expect(unknown.stderr()).toBe(`submit: no job no-such-job in ${store}\n`)
  }, 200_000)
})

/**
 * Liars on the real stack (a relay on 127.0.0.1, onnxruntime-node workers, a requester running a
 * JobRunner with spot checks on its own onnxruntime-node), the attacks the hostile run found:
 *
 * - two colluding workers (same wrong answer every time) and one honest one, replicas 2: the job
 *   either gives correct results or says it could not verify them — never a wrong result stored;
 * - malformed results (only `logits`; `probs` of shape [1,3]) are lies, not crashes or votes.
 *
 * On loopback every worker has a private address, so diversity groups do not separate them (the
 * standard mode's LAN rule): only the requester's spot checks can catch the colluders here.
 */
import '../../src/node/polyfill.js'
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { peerIdFromString } from '@libp2p/peer-id'
import { JobRunner } from '../../src/net/job-runner.js'
import { peerEndpoint } from '../../src/net/peer-endpoint.js'
import { nodeVerification, requesterInference } from '../../src/node/local-inference.js'
import { loadDigitDataset } from '../../src/node/datasets.js'
import { MemoryJobStore } from '../../src/core/job-store.js'
import { Reputation } from '../../src/core/reputation.js'
import { argmaxComparator } from '../../src/core/compare.js'
import { seededRandom } from '../../src/core/random.js'
import { fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { digitJobSource, digitPredictions } from '../../src/models/digit-job.js'
import { DIGITS_OUTPUT_LOGITS, DIGITS_OUTPUT_PROBS } from '../../src/models/digits.js'
import { Cleanup, referenceDigits, startPeer, startRelay, waitForAdvert, waitForDirect, withTimeout } from './helpers.js'
import type { JobMeta } from '../../src/core/job-store.js'
import type { NodePeer } from '../../src/node/node-peer.js'
import type { Executor } from '../../src/core/work-queue.js'
import type { DigitDataset } from '../../src/models/datasets.js'
import type { WireTensor } from '../../src/core/tensor.js'

const DIGITS = builtinModel('digits')
const SHA = modelRef(DIGITS).sha256
const JOB_MS = 120_000

let dataset: DigitDataset
let reference: Uint8Array

beforeAll(async () => {
  dataset = await loadDigitDataset('mnist-test')
  reference = await referenceDigits(dataset, 400)
})

/** Wraps the real executor and rewrites its outputs. */
function lying (rewrite: (outputs: WireTensor[]) => WireTensor[]): (inner: Executor) => Executor {
  return inner => ({
    execute: async (request, requester, signal) => {
      const r = await inner.execute(request, requester, signal)
      return { ...r, outputs: rewrite(r.outputs) }
    }
  })
}

/** The colluders' shared lie: the probs vector rotated by one class. */
const rotated = lying(outputs => outputs.map(t => {
  if (t.name !== DIGITS_OUTPUT_PROBS) return t
  const probs = toTypedArray(t) as Float32Array
  const out = new Float32Array(probs.length)
  for (let i = 0; i < probs.length; i++) out[(i + 1) % probs.length] = probs[i]
  return fromTypedArray(t.name, 'float32', [...t.dims], out)
}))

async function waitForWorkers (requester: NodePeer, ids: string[]): Promise<void> {
  await Promise.all(ids.map(async id => {
    await waitForAdvert(requester, id, a => a.worker && a.models.includes(SHA), `worker ${id}'s advert`, 60_000)
    await waitForDirect(requester.node, id, 60_000)
  }))
}

/** The requester's spot-check process, one per requester, stopped after the file. */
const inferences = new Map<NodePeer, ReturnType<typeof requesterInference>>()
afterAll(() => { for (const i of inferences.values()) i.stop() })
function inference (requester: NodePeer): ReturnType<typeof requesterInference> {
  let found = inferences.get(requester)
  if (found == null) {
    found = requesterInference(requester)
    inferences.set(requester, found)
  }
  return found
}

async function digitsJob (requester: NodePeer, taskCount: number, replicas: number, spotCheck: number) {
  const store = new MemoryJobStore()
  const now = Date.now()
  const meta: JobMeta = {
    jobId: randomUUID(), modelId: DIGITS.id, model: modelRef(DIGITS), datasetId: dataset.id,
    taskCount, replicas, adaptive: false, state: 'queued', createdAt: now, updatedAt: now
  }
  await store.putJob(meta)
  const reputation = new Reputation()
  const runner = new JobRunner({
    meta,
    source: digitJobSource(dataset),
    tasks: requester.tasks,
    adverts: requester.discovery.table,
    store,
    compare: argmaxComparator(DIGITS_OUTPUT_PROBS),
    reputation,
    declared: DIGITS,
    ...nodeVerification(requester, { spotCheck, diversity: 'standard' }, inference(requester).recompute),
    random: seededRandom(9),
    stallMs: 3000
  })
  return { runner, store, meta, reputation }
}

describe('liars against verification', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })
  afterAll(async () => { await cleanup.run() })

  it('two colluding liars and one honest worker, replicas 2: never a wrong result stored as verified', async () => {
    const N = 300
    const relay = await startRelay(cleanup)
    const [requester, honest, liar1, liar2] = await Promise.all([
      startPeer(cleanup, relay.addr, { work: false }),
      startPeer(cleanup, relay.addr),
      startPeer(cleanup, relay.addr, { wrapExecutor: rotated }),
      startPeer(cleanup, relay.addr, { wrapExecutor: rotated })
    ])
    const liars = [liar1, liar2].map(p => p.node.peerId.toString())
    await waitForWorkers(requester, [honest.node.peerId.toString(), ...liars])

    const job = await digitsJob(requester, N, 2, 0.1)
    cleanup.add('stop the job', async () => { await job.runner.stop() })
    const final = await withTimeout(job.runner.run(), JOB_MS, () => `the job (progress ${JSON.stringify(job.runner.progress)})`)
    const p = job.runner.progress

    // The requester caught the pair: both convicted, their reputations ruined.
    expect(p.spotChecks.mismatches).toBeGreaterThan(0)
    expect(p.convicted.sort()).toEqual([...liars].sort())
    for (const id of liars) expect(job.reputation.score(id)).toBeLessThan(0.05)

    // Whatever is stored is right, and no stored result rests on a liar's vote.
    const results = await job.store.getResults(job.meta.jobId)
    for (const r of results) for (const id of liars) expect(r.agreedBy).not.toContain(id)
    const wrong = digitPredictions(results, dataset).filter(r => r.prediction !== reference[r.index])
    expect(wrong, 'wrong results stored').toEqual([])

    // One honest worker cannot give two independent agreeing results: the job says so.
    if (results.length < N) {
      expect(final.state).toBe('failed')
      expect(final.error).toMatch(/could not be verified/)
    } else {
      expect(final.state).toBe('done')
    }
  }, 180_000)

  it('malformed results (only logits; probs of shape [1,3]) are lies: the job completes correctly, nobody crashes', async () => {
    const N = 120
    const relay = await startRelay(cleanup)
    const onlyLogits = lying(outputs => outputs.filter(t => t.name === DIGITS_OUTPUT_LOGITS))
    const shortProbs = lying(outputs => outputs.map(t => t.name === DIGITS_OUTPUT_PROBS ? fromTypedArray(t.name, 'float32', [1, 3], new Float32Array(3)) : t))
    const [requester, honest, a, b] = await Promise.all([
      startPeer(cleanup, relay.addr, { work: false }),
      startPeer(cleanup, relay.addr),
      startPeer(cleanup, relay.addr, { wrapExecutor: onlyLogits }),
      startPeer(cleanup, relay.addr, { wrapExecutor: shortProbs })
    ])
    const bad = [a, b].map(p => p.node.peerId.toString())
    await waitForWorkers(requester, [honest.node.peerId.toString(), ...bad])

    const job = await digitsJob(requester, N, 1, 0)
    cleanup.add('stop the job', async () => { await job.runner.stop() })
    const final = await withTimeout(job.runner.run(), JOB_MS, () => `the job (progress ${JSON.stringify(job.runner.progress)})`)
    expect(final.state, final.error).toBe('done')
    const results = await job.store.getResults(job.meta.jobId)
    expect(results).toHaveLength(N)
    for (const r of results) expect(bad).not.toContain(r.agreedBy[0])
    expect(digitPredictions(results, dataset).filter(r => r.prediction !== reference[r.index])).toEqual([])
    // Each malformed answer cost its sender a disagreement (a new peer is excluded at the first).
    for (const id of bad) {
      if ((job.runner.progress.perPeer[id] ?? 0) > 0) expect(job.reputation.record(id).disagreed).toBeGreaterThan(0)
    }
  }, 180_000)

  it('reads where a direct connection comes from: the selected ICE candidate and the relay', async () => {
    const relay = await startRelay(cleanup)
    const [requester, worker] = await Promise.all([startPeer(cleanup, relay.addr, { work: false }), startPeer(cleanup, relay.addr)])
    const id = worker.node.peerId.toString()
    await waitForWorkers(requester, [id])
    const endpoint = await peerEndpoint(requester.node.getConnections(peerIdFromString(id)))
    expect(endpoint?.relay).toBe(relay.node.peerId.toString())
    expect(endpoint?.ip).toMatch(/^[0-9a-f.:]+$/i)
  }, 120_000)
})

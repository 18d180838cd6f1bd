/**
 * One network over three relays: relays linked with --bootstrap (a chain, so the third link is
 * learned from relay adverts), workers holding two relays each, a requester on the first relay.
 * A batch lands on workers of all three relays; one relay killed mid-job moves its workers to the
 * other relay they hold and the job completes with every task exactly once. Adverts that claim
 * another peer's addresses or key are dropped; nobody dials a peer it sends no work to.
 */
import '../../src/node/polyfill.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { JobRunner } from '../../src/net/job-runner.js'
import { connectionKind } from '../../src/net/connection-kind.js'
import { FileJobStore } from '../../src/node/file-job-store.js'
import { loadDigitDataset } from '../../src/node/datasets.js'
import { Reputation } from '../../src/core/reputation.js'
import { argmaxComparator } from '../../src/core/compare.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { digitJobSource } from '../../src/models/digit-job.js'
import { DIGITS_OUTPUT_PROBS } from '../../src/models/digits.js'
import { NOT_A_WORKER } from '../../src/core/discovery/advert.js'
import { DISCOVERY_TOPIC, encodeAdvertBody, encodeSigned, signingBytes } from '../../src/core/discovery/codec.js'
import { Cleanup, FAST_HEARTBEAT, startBarePeer, startPeer, startRelay, waitForDirect, waitForRelayState, waitForTable, withTimeout } from './helpers.js'
import type { JobMeta } from '../../src/core/job-store.js'
import type { DigitDataset } from '../../src/models/datasets.js'
import type { NodePeer } from '../../src/node/node-peer.js'
import type { TestRelay } from './helpers.js'
import type { Peer } from '../../src/net/peer.js'

const DIGITS = builtinModel('digits')
const WAIT = 30_000

let dataset: DigitDataset
beforeAll(async () => { dataset = await loadDigitDataset('mnist-test') })

/** Resolves once every relay is linked to every other one. */
async function waitForMesh (relays: TestRelay[]): Promise<void> {
  const ids = relays.map(r => r.node.peerId.toString())
  const linked = (): boolean => relays.every((r, i) => ids.every((id, j) => i === j || r.node.getConnections().some(c => c.remotePeer.toString() === id)))
  await withTimeout(new Promise<void>(resolve => {
    const check = (): void => {
      if (!linked()) return
      for (const r of relays) r.node.removeEventListener('connection:open', check)
      resolve()
    }
    for (const r of relays) r.node.addEventListener('connection:open', check)
    check()
  }), WAIT, () => `the three relays to link to each other (${relays.map(r => r.node.getConnections().length).join(', ')} connections)`)
}

async function startFederation (cleanup: Cleanup): Promise<TestRelay[]> {
  const r1 = await startRelay(cleanup)
  const r2 = await startRelay(cleanup, { bootstrap: [r1.addr] })
  // The third knows only the second: its link to the first comes from the first's relay advert.
  const r3 = await startRelay(cleanup, { bootstrap: [r2.addr] })
  const relays = [r1, r2, r3]
  await waitForMesh(relays)
  return relays
}

async function digitJob (cleanup: Cleanup, requester: NodePeer, taskCount: number): Promise<{ runner: JobRunner, meta: JobMeta, store: FileJobStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'p2p-federation-'))
  cleanup.add('job store', async () => { await rm(dir, { recursive: true, force: true }) })
  const store = new FileJobStore(dir)
  const now = Date.now()
  const meta: JobMeta = {
    jobId: randomUUID(), modelId: DIGITS.id, model: modelRef(DIGITS), datasetId: dataset.id,
    taskCount, replicas: 1, adaptive: false, state: 'queued', createdAt: now, updatedAt: now
  }
  await store.putJob(meta)
  const runner = new JobRunner({
    meta, source: digitJobSource(dataset), tasks: requester.tasks, adverts: requester.discovery.table, store,
    compare: argmaxComparator(DIGITS_OUTPUT_PROBS), reputation: new Reputation()
  })
  cleanup.add('job runner', async () => { await runner.stop() })
  return { runner, meta, store }
}

/** Peer ids `node` holds a direct WebRTC connection to. */
function directPeers (node: Peer): string[] {
  return node.getConnections().filter(c => c.status === 'open' && connectionKind(c) === 'direct WebRTC').map(c => c.remotePeer.toString())
}

describe('federation: three relays, one network', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  it('a batch from a requester on the first relay lands on workers of all three; killing the middle relay mid-job moves its workers to their other relay, splits nothing, and every task completes exactly once', async () => {
    const relays = await startFederation(cleanup)
    const [r1, r2, r3] = relays
    // Two workers per relay, each also holding the next relay.
    const workers: NodePeer[] = []
    for (let i = 0; i < 3; i++) {
      for (let k = 0; k < 2; k++) workers.push(await startPeer(cleanup, [relays[i].addr, relays[(i + 1) % 3].addr], { queue: { slots: 1 } }))
    }
    const requester = await startPeer(cleanup, r1.addr, { work: false, client: FAST_HEARTBEAT })
    const ids = workers.map(w => w.node.peerId.toString())
    await waitForTable(requester, have => ids.every(id => have.includes(id)), 'the requester on relay 1 to learn of every worker')
    for (const w of workers) expect(w.relays.ready.length, 'each worker holds two relays').toBe(2)
    // Dial them all first (as the job would), so a slow WebRTC handshake on a loaded machine
    // cannot let the job finish on the workers that happened to connect first.
    await Promise.all(workers.map(async w => await waitForDirect(requester.node, w.node, 60_000)))

    const N = 6000
    const job = await digitJob(cleanup, requester, N)
    const running = job.runner.run()
    const groups = [0, 1, 2].map(i => ids.slice(2 * i, 2 * i + 2))
    const everyRelayWorked = (perPeer: Record<string, number>): boolean => groups.every(g => g.some(id => (perPeer[id] ?? 0) > 0))
    // Once workers of every relay have results in, relay 2 dies — the one the chain was built
    // through: workers 2 and 3 (relay 2 first) keep relay 3, the other relay they hold.
    await withTimeout(new Promise<void>(resolve => {
      const check = (): void => { if (everyRelayWorked(job.runner.progress.perPeer)) { job.runner.removeEventListener('progress', check); resolve() } }
      job.runner.addEventListener('progress', check)
    }), WAIT, () => `results from workers of every relay (${JSON.stringify(job.runner.progress.perPeer)})`)
    expect(job.runner.progress.done, 'relay 2 goes down mid-job').toBeLessThan(N)
    await r2.stop()
    const final = await withTimeout(running, 120_000, () => `the job to finish (${JSON.stringify({ ...job.runner.progress, perPeer: undefined })})`)

    expect(final.state, final.error).toBe('done')
    const results = await job.store.getResults(job.meta.jobId)
    expect(results.map(r => r.index), 'every task decided exactly once').toEqual(Array.from({ length: N }, (_, i) => i))
    expect(everyRelayWorked(job.runner.progress.perPeer), 'workers of all three relays did work').toBe(true)
    // The relay-2 workers kept relay 3, the other relay they held (and may have taken relay 1,
    // learned from its advert, as their second).
    const r2Id = r2.node.peerId.toString()
    for (const w of workers.slice(2, 4)) {
      await waitForRelayState(w, 'disconnected', r2Id)
      expect(w.relays.ready).toContain(r3.node.peerId.toString())
      expect(w.relays.ready).not.toContain(r2Id)
    }
    // The network did not split: relays 1 and 3 (linked only through relay 1's advert) stay linked,
    // and a worker joining relay 3 now reaches the requester on relay 1.
    expect(r1.node.getConnections().some(c => c.remotePeer.equals(r3.node.peerId)), 'relays 1 and 3 stay linked').toBe(true)
    const late = await startPeer(cleanup, r3.addr)
    await waitForTable(requester, have => have.includes(late.node.peerId.toString()), 'a worker joining relay 3 after the loss to reach the requester on relay 1')
  }, 240_000)

  it('drops adverts that claim another peer\'s addresses or key, and nobody dials a peer it sends no work to', async () => {
    const [r1, r2] = await startFederation(cleanup)
    const worker = await startPeer(cleanup, r1.addr)
    const bystander = await startPeer(cleanup, r2.addr)
    const requester = await startPeer(cleanup, r2.addr, { work: false })
    const liar = await startBarePeer(cleanup, r1.addr, 'liar')
    const workerId = worker.node.peerId.toString()
    const liarId = liar.peerId.toString()
    await waitForTable(requester, have => [workerId, liarId, bystander.node.peerId.toString()].every(id => have.includes(id)), 'the requester to see every peer')
    const honest = requester.discovery.table.get(workerId)!
    const rejectedBefore = r1.node.services.discovery.stats.rejected

    // 1. Signed by the liar, listing the worker's address as its own.
    const stolen = encodeAdvertBody({ seq: Date.now() + 1000, leaving: false, advert: { ...NOT_A_WORKER, kind: 'node', worker: true, slots: 8 } }, honest.advert.addrs.map(a => multiaddr(a).bytes))
    const liarKey = publicKeyToProtobuf(liar.peerId.publicKey!)
    // The liar's private key is not exposed: sign through a fresh key of ours that claims the liar's public key.
    const forger = await generateKeyPair('Ed25519')
    const forgedForLiar = encodeSigned({ publicKey: liarKey, body: stolen, signature: await forger.sign(signingBytes(stolen)) })
    // 2. Claiming the worker's key (a "leaving" advert to knock it out of everyone's table).
    const leaving = encodeAdvertBody({ seq: Date.now() + 2000, leaving: true, advert: { ...NOT_A_WORKER, kind: 'node' } }, [])
    const forgedForWorker = encodeSigned({ publicKey: publicKeyToProtobuf(worker.node.peerId.publicKey!), body: leaving, signature: await forger.sign(signingBytes(leaving)) })
    // 3. Properly signed by a key of ours, but listing the worker's addresses.
    const selfSigned = encodeSigned({ publicKey: publicKeyToProtobuf(forger.publicKey), body: stolen, signature: await forger.sign(signingBytes(stolen)) })
    for (const bytes of [forgedForLiar, forgedForWorker, selfSigned]) await liar.services.pubsub.publish(DISCOVERY_TOPIC, bytes)

    // The first relay rejects all three and passes none on.
    await withTimeout(new Promise<void>(resolve => {
      const poll = setInterval(() => { if (r1.node.services.discovery.stats.rejected >= rejectedBefore + 3) { clearInterval(poll); resolve() } }, 20)
    }), WAIT, 'the relay to reject three forged adverts')
    // A real advert from the worker, published after the forgeries, reaches the requester: had
    // any forgery got through, it would have arrived first on the same path.
    worker.advertiser!.setPaused(true)
    await waitForTable(requester, () => requester.discovery.table.get(workerId)?.advert.paused === true, 'the worker\'s genuine paused advert')
    expect(requester.discovery.table.get(workerId)?.advert.addrs).toEqual(honest.advert.addrs)
    expect(requester.discovery.table.get(liarId)?.advert.worker, 'the liar is not taken for a worker').toBe(false)
    expect(requester.discovery.table.get(forger.publicKey.toString()), 'no entry for the forger key').toBeUndefined()
    worker.advertiser!.setPaused(false)
    await waitForTable(requester, () => requester.discovery.table.get(workerId)?.advert.paused === false, 'the worker unpaused')

    // Work goes to the worker only: the requester dials it and nobody else; nobody dials anybody else.
    const job = await digitJob(cleanup, requester, 50)
    const bystanderId = bystander.node.peerId.toString()
    bystander.advertiser!.setPaused(true)
    await waitForTable(requester, () => requester.discovery.table.get(bystanderId)?.advert.paused === true, 'the bystander paused')
    expect((await job.runner.run()).state).toBe('done')
    expect(directPeers(requester.node)).toEqual([workerId])
    expect(directPeers(worker.node)).toEqual([requester.node.peerId.toString()])
    expect(directPeers(bystander.node), 'a peer that got no work holds no direct connection').toEqual([])
    expect(directPeers(liar), 'nor does the liar').toEqual([])
  }, 180_000)
})

/**
 * Peers and the relay coming and going on the real stack:
 * - a worker that is a separate OS process (src/node/worker.ts) is SIGKILLed mid-task;
 * - the relay restarts (same port, same key) while two peers stay connected directly;
 * - the worker process's own lifecycle: joined line, per-task lines, exit codes.
 */
import '../../src/node/polyfill.js'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { TASK_PROTOCOL } from '../../src/core/task/codec.js'
import { toTypedArray } from '../../src/core/tensor.js'
import { argmax } from '../../src/models/digits.js'
import { shapeTensor, slowMatMul } from '../helpers/hostile-models.js'
import { Cleanup, FAST_HEARTBEAT, digitsTask, heldOutDigits, rejectionOf, spawnWorker, startPeer, startRelay, startWorkerProcess, waitForDirect, waitForRelayState, waitForTable } from './helpers.js'
import type { TaskOutcome } from '../../src/core/task/client.js'
import type { NodePeer } from '../../src/node/node-peer.js'

const [DIGIT] = heldOutDigits() // a held-out "0"

function predicted (outcome: TaskOutcome): number {
  return argmax(toTypedArray(outcome.result.outputs.find(t => t.name === 'probs')!) as Float32Array)
}

describe('churn', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  it('a worker process killed mid-task fails that task with peer-gone, and the requester carries on with another worker', async () => {
    const relay = await startRelay(cleanup)
    // Short heartbeats: a few seconds of silence and the worker is gone.
    const requester = await startPeer(cleanup, relay.addr, { work: false, client: FAST_HEARTBEAT })
    const cache = await mkdtemp(join(tmpdir(), 'p2p-churn-'))
    const [doomed, survivor] = await Promise.all([spawnWorker(cleanup, relay.addr, ['--model-cache', cache]), spawnWorker(cleanup, relay.addr)])
    await Promise.all([waitForDirect(requester.node, doomed.peerId), waitForDirect(requester.node, survivor.peerId)])

    // 200 products of 2048×2048 matrices: about a minute of work, so however fast the machine,
    // the task is still running when the kill lands after the worker says it started.
    const endless = slowMatMul(200, 1 / 2048)
    const model = { sha256: await requester.models.add(endless), size: endless.byteLength, name: 'endless-matmul.onnx' }
    const task = requester.tasks.run(peerIdFromString(doomed.peerId), { taskId: 'doomed-task', jobId: 'integration', model, inputs: [shapeTensor([2048, 2048])], timeoutMs: 0, outputNames: [] })
    task.catch(() => {}) // observed below
    const first = await Promise.race([
      doomed.waitForLine(/^task doomed-task running: /, { timeoutMs: 30_000 }).then(() => 'running'),
      task.then(() => 'finished', (err: Error) => `failed: ${err.message}`)
    ])
    expect(first, 'the worker should be running the task when it is killed').toBe('running')
    doomed.child.kill('SIGKILL')

    const err = await rejectionOf(task)
    expect(err.code).toBe('peer-gone')
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' })
    expect(doomed.lines.filter(l => l.startsWith('task doomed-task ')), 'the killed worker never finished the task').toEqual([
      expect.stringMatching(/^task doomed-task running/)
    ])
    // The requester stops offering it work: its advert is dropped until it advertises again.
    await waitForTable(requester, ids => !ids.includes(doomed.peerId), 'the requester to forget the killed worker')

    // The requester carries on with the other worker, which logs the task it served.
    const outcome = await requester.tasks.run(peerIdFromString(survivor.peerId), digitsTask('after-churn', DIGIT.pixels))
    expect(predicted(outcome)).toBe(DIGIT.label)
    await survivor.waitForLine(/^task after-churn done: digits for \S+ in [\d.]+ ms \(queue [\d.]+, load [\d.]+, inference [\d.]+ ms\)$/)

    // SIGTERM stops the worker cleanly.
    await survivor.stop()
    expect(await survivor.exited).toEqual({ code: 0, signal: null })
  }, 90_000)

  it('relay restart: the direct connection keeps carrying tasks, both peers re-reserve, and a newcomer dials the worker through the restarted relay', async () => {
    const relayKey = await generateKeyPair('Ed25519')
    const relay = await startRelay(cleanup, { privateKey: relayKey })
    const worker = await startPeer(cleanup, relay.addr)
    const requester = await startPeer(cleanup, relay.addr, { work: false })
    const direct = await waitForDirect(requester.node, worker.node)
    const peers: NodePeer[] = [worker, requester]
    const relayId = relay.node.peerId.toString()

    // The relay goes away.
    const lost = Promise.all(peers.map(async p => { await waitForRelayState(p, 'disconnected', relayId) }))
    await relay.stop()
    await lost
    for (const p of peers) expect(p.node.getConnections(relay.node.peerId), 'no connection to the stopped relay').toEqual([])

    // Tasks still flow over the direct connection.
    const whileDown = await requester.tasks.run(worker.node.peerId, digitsTask('relay-down', DIGIT.pixels))
    expect(predicted(whileDown)).toBe(DIGIT.label)
    expect(direct.status).toBe('open')
    expect(direct.streams.map(s => s.protocol)).toContain(TASK_PROTOCOL)

    // The relay comes back on the same port with the same identity: the peers reconnect and hold a
    // reservation again by themselves (libp2p does not restore it for us).
    const back = Promise.all(peers.map(async p => { await waitForRelayState(p, 'ready', relayId, 30_000) }))
    const restarted = await startRelay(cleanup, { port: relay.port, privateKey: relayKey })
    expect(restarted.addr).toBe(relay.addr)
    await back

    // A peer joining now learns of the worker from the restarted relay and dials it directly.
    const newcomer = await startPeer(cleanup, restarted.addr, { work: false })
    await waitForTable(newcomer, ids => ids.includes(worker.node.peerId.toString()), 'the newcomer to learn of the worker')
    // It learnt it from the relay's table (one sync answer), not from a heartbeat 30 s away.
    await expect.poll(() => newcomer.discovery.stats.synced, { timeout: 20_000 }).toBeGreaterThan(0)
    const fromNewcomer = await newcomer.tasks.run(worker.node.peerId, digitsTask('newcomer', DIGIT.pixels))
    expect(predicted(fromNewcomer)).toBe(DIGIT.label)

    // The original direct connection lived through all of it.
    expect(direct.status).toBe('open')
    const after = await requester.tasks.run(worker.node.peerId, digitsTask('after-restart', DIGIT.pixels))
    expect(predicted(after)).toBe(DIGIT.label)
  }, 90_000)

  it('a worker process that cannot reach the relay exits 1 with a one-line reason', async () => {
    // A relay address whose port nobody listens on: start a relay, note its address, stop it.
    const relay = await startRelay(cleanup)
    await relay.stop()
    const worker = startWorkerProcess(cleanup, ['--relay', relay.addr])
    expect(await worker.exited).toEqual({ code: 1, signal: null })
    expect(worker.lines).toEqual([expect.stringMatching(/^worker: cannot reach relay \S+: .*ECONNREFUSED/)])
  }, 60_000)
})

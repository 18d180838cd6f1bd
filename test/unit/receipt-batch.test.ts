/**
 * Batch receipts (receipt/2, docs/PROTOCOL.md "Receipts"): the Merkle tree against an independent
 * RFC 9162 implementation written from the spec with node:crypto, every leaf of a batch verifying
 * offline, nothing else verifying, and a worker signing once for the tasks that finish together.
 */
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { leafHash, merkleTree, rootFromPath } from '../../src/core/merkle.js'
import { useSyncSha256 } from '../../src/core/hash.js'
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import {
  MAX_RECEIPT_BATCH, RECEIPT_BATCH_VERSION, RECEIPT_VERSION, ReceiptFormatError, parseReceipt, receiptBytes, rememberingVerify,
  signReceipts, tensorsSha256, verifyReceipt
} from '../../src/core/receipt.js'
import { TaskClient } from '../../src/core/task/client.js'
import { FrameDecoder, encodeFrame } from '../../src/core/task/codec.js'
import { TaskServer } from '../../src/core/task/server.js'
import { ReceiptBatcher } from '../../src/core/task/receipt-batcher.js'
import { WorkQueue } from '../../src/core/work-queue.js'
import { memoryChannelPair } from '../helpers/memory-channel.js'
import type { BatchReceipt, Receipt, ReceiptFields } from '../../src/core/receipt.js'
import type { Executor } from '../../src/core/work-queue.js'
import type { TaskRequest } from '../../src/core/task-types.js'

const KEY = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(7))
const WORKER = peerIdFromPrivateKey(KEY)
const REQUESTER = peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(9))).toString()
const sign = (b: Uint8Array): Promise<Uint8Array> => KEY.sign(b) as Promise<Uint8Array>
const verify = (b: Uint8Array, s: Uint8Array): boolean | Promise<boolean> => WORKER.publicKey.verify(b, s)

/** A count whose waiters resume once it reaches theirs: the tests wait on what happened, never on a clock. */
function counter (): { readonly value: number, add: () => void, reach: (at: number) => Promise<void> } {
  let value = 0
  let waiters: Array<{ at: number, resolve: () => void }> = []
  return {
    get value () { return value },
    add () {
      value++
      for (const w of waiters) if (value >= w.at) w.resolve()
      waiters = waiters.filter(w => value < w.at)
    },
    reach: async (at) => { if (value < at) await new Promise<void>(resolve => { waiters.push({ at, resolve }) }) }
  }
}

// ---- RFC 9162 §2.1, written from the spec
const H = (...parts: Uint8Array[]): Buffer => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest()
const specLeaf = (d: Uint8Array): Buffer => H(Uint8Array.of(0), d)
const k = (n: number): number => 2 ** Math.ceil(Math.log2(n) - 1)
function specMth (d: Uint8Array[]): Buffer {
  if (d.length === 1) return specLeaf(d[0])
  return H(Uint8Array.of(1), specMth(d.slice(0, k(d.length))), specMth(d.slice(k(d.length))))
}
function specPath (m: number, d: Uint8Array[]): Buffer[] {
  if (d.length === 1) return []
  const s = k(d.length)
  return m < s ? [...specPath(m, d.slice(0, s)), specMth(d.slice(s))] : [...specPath(m - s, d.slice(s)), specMth(d.slice(0, s))]
}

function fields (i: number): ReceiptFields {
  return {
    jobId: 'job-1', taskId: `job-1/${i}/0`, requester: REQUESTER, worker: WORKER.toString(),
    modelSha256: 'ab'.repeat(32), inputsSha256: createHash('sha256').update(`in ${i}`).digest('hex'),
    outputsSha256: createHash('sha256').update(`out ${i}`).digest('hex'), backend: 'cpu', startedAt: 1_700_000_000_000 + i, endedAt: 1_700_000_000_010 + i
  }
}

describe('the Merkle tree of a receipt batch', () => {
  it('has the root and audit paths RFC 9162 defines, and every path leads back to the root', () => {
    for (let n = 1; n <= MAX_RECEIPT_BATCH; n++) {
      const data = Array.from({ length: n }, (_, i) => Uint8Array.of(i, n, 0xee))
      const leaves = data.map(leafHash)
      const { root, paths } = merkleTree(leaves)
      expect(Buffer.from(root).toString('hex'), `n=${n}`).toBe(specMth(data).toString('hex'))
      for (let i = 0; i < n; i++) {
        const path = paths[i]
        expect(path.map(p => Buffer.from(p).toString('hex')), `n=${n} i=${i}`).toEqual(specPath(i, data).map(p => p.toString('hex')))
        expect(Buffer.from(rootFromPath(leaves[i], i, n, path)!).toString('hex')).toBe(Buffer.from(root).toString('hex'))
      }
    }
  })

  it('leads nowhere, or elsewhere, with a wrong index, size, leaf or path', () => {
    const leaves = Array.from({ length: 7 }, (_, i) => leafHash(Uint8Array.of(i)))
    const tree = merkleTree(leaves)
    const root = Buffer.from(tree.root).toString('hex')
    const path = tree.paths[2]
    const at = (leaf: Uint8Array, index: number, size: number, p: Uint8Array[]): string | undefined => {
      const r = rootFromPath(leaf, index, size, p)
      return r == null ? undefined : Buffer.from(r).toString('hex')
    }
    expect(at(leaves[2], 2, 7, path)).toBe(root)
    for (const [leaf, index, size, p] of [
      // (Sizes 5 to 8 lead to the same root here: a path's shape fits several sizes, which is why the size is signed beside the root.)
      [leaves[3], 2, 7, path], [leaves[2], 3, 7, path], [leaves[2], 2, 4, path], [leaves[2], 2, 3, path],
      [leaves[2], 2, 7, path.slice(1)], [leaves[2], 2, 7, [...path, leaves[0]]], [leaves[2], 2, 7, [leaves[1], ...path.slice(1)]],
      [leaves[2], 7, 7, path], [leaves[2], -1, 7, path]
    ] as Array<[Uint8Array, number, number, Uint8Array[]]>) {
      expect(at(leaf, index, size, p)).not.toBe(root)
    }
  })

  it('builds a tree of n leaves and all its paths with n − 1 node hashes', () => {
    const leaves = Array.from({ length: MAX_RECEIPT_BATCH }, (_, i) => leafHash(Uint8Array.of(i)))
    let hashes = 0
    useSyncSha256(() => { hashes++; return createHash('sha256') })
    try {
      merkleTree(leaves)
    } finally {
      useSyncSha256(() => nobleSha256.create())
    }
    expect(hashes).toBe(MAX_RECEIPT_BATCH - 1)
  })
})

describe('batch receipts', () => {
  it('one signature covers the batch; each receipt verifies alone, offline, with the worker key rebuilt from its peer id', async () => {
    const batch = Array.from({ length: 11 }, (_, i) => fields(i))
    const receipts = await signReceipts(batch, sign)
    const raw = WORKER.publicKey.raw
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw])
    const nodeKey = createPublicKey({ key: spki, format: 'der', type: 'spki' })
    const root = specMth(batch.map(receiptBytes))
    const u32 = Buffer.alloc(4)
    u32.writeUInt32BE(11)
    const version = Buffer.from(RECEIPT_BATCH_VERSION)
    const len = Buffer.alloc(4)
    len.writeUInt32BE(version.byteLength)
    const signed = Buffer.concat([len, version, u32, root])
    expect(new Set(receipts.map(r => r.signature)).size).toBe(1)
    for (const [i, r] of receipts.entries()) {
      expect(r).toMatchObject({ version: RECEIPT_BATCH_VERSION, ...batch[i], batchIndex: i, batchSize: 11 })
      expect(await verifyReceipt(r, verify)).toBe(true)
      expect(await verifyReceipt(parseReceipt(JSON.parse(JSON.stringify(r))), verify)).toBe(true)
    }
    expect(nodeVerify(null, signed, nodeKey, Buffer.from(receipts[0].signature, 'hex'))).toBe(true)
  })

  it('matches the docs/PROTOCOL.md test vector', async () => {
    const vector: ReceiptFields = {
      jobId: 'job-1', taskId: 'job-1/0/0', requester: REQUESTER, worker: WORKER.toString(), modelSha256: 'ab'.repeat(32),
      inputsSha256: 'e4093e37baa39b612b1a380eb1f14facd125d1dc9d900f8b1e8a8f43d88f90f7',
      outputsSha256: '5e6efbdd7f8ae8c72777b26ffda85695e7c60dc3fa37c111fd87fd8eda433256',
      backend: 'onnxruntime-node cpu 1 thread', startedAt: 1_700_000_000_000, endedAt: 1_700_000_000_025
    }
    const batch = [0, 1, 2].map(i => ({ ...vector, taskId: `job-1/0/${i}` }))
    expect(specMth(batch.map(receiptBytes)).toString('hex')).toBe('fc1bf3d2c236e3b4c154b34b994b34ccf3fcac8f564a58a77b1d52bb67f95957')
    const receipts = await signReceipts(batch, sign) as BatchReceipt[]
    expect(receipts[0].signature).toBe('e35c1c050a499d4bb830f53b5b3aa07005f405609c73fcab6c39cfc073b8f9959ac3283dafbcd344b9977e8da0084e88e1d8f03eaddafd0ad084ed5f44615d02')
    expect(receipts[2].path).toEqual(['f4f5f2c9ba94ba1c0f27ba9c3ea4435129fc2a6b6d3ea1dfa8d9a881ad3b8d4e'])
  })

  it('a batch of one is a plain receipt/1', async () => {
    const [r] = await signReceipts([fields(0)], sign)
    expect(r.version).toBe(RECEIPT_VERSION)
    expect(await verifyReceipt(r, verify)).toBe(true)
  })

  it('nothing verifies that was not signed: changed fields, another leaf\'s place, a changed path or size', async () => {
    const receipts = await signReceipts(Array.from({ length: 5 }, (_, i) => fields(i)), sign) as BatchReceipt[]
    const [a, b] = receipts
    const bad: Receipt[] = [
      { ...a, outputsSha256: b.outputsSha256 },
      { ...a, taskId: b.taskId },
      { ...a, batchIndex: 1 },
      { ...b, path: a.path },
      { ...a, batchSize: 6 },
      { ...a, batchSize: 4 },
      { ...a, path: a.path.slice(1) },
      { ...a, path: [...a.path, a.path[0]] },
      { ...a, path: a.path.map((h, i) => i === 0 ? 'ff' + h.slice(2) : h) },
      { ...a, version: RECEIPT_VERSION } as unknown as Receipt
    ]
    for (const r of bad) expect(await verifyReceipt(r, verify), JSON.stringify(r)).toBe(false)
  })

  it('parseReceipt names what is wrong with a batch receipt', async () => {
    const [r] = await signReceipts([fields(0), fields(1)], sign)
    for (const [value, message] of [
      [{ ...r, batchSize: 1 }, /batchSize/],
      [{ ...r, batchSize: MAX_RECEIPT_BATCH + 1 }, /batchSize/],
      [{ ...r, batchIndex: 2 }, /batchIndex/],
      [{ ...r, batchIndex: 0.5 }, /batchIndex/],
      [{ ...r, path: 'ab' }, /path/],
      [{ ...r, path: Array(7).fill('ab'.repeat(32)) }, /path/],
      [{ ...r, path: ['AB'.repeat(32)] }, /path\[0\]/]
    ] as Array<[unknown, RegExp]>) expect(() => parseReceipt(value)).toThrow(message)
    expect(() => parseReceipt({ ...r, path: ['x'] })).toThrow(ReceiptFormatError)
  })

  it('refuses to sign an empty batch or one over the cap', async () => {
    await expect(signReceipts([], sign)).rejects.toThrow(RangeError)
    await expect(signReceipts(Array.from({ length: MAX_RECEIPT_BATCH + 1 }, (_, i) => fields(i)), sign)).rejects.toThrow(RangeError)
  })

  it('a requester checks a batch\'s signature once, and never reuses an answer for other bytes', async () => {
    let calls = 0
    const counted = rememberingVerify(async (b, s) => { calls++; return await verify(b, s) })
    const receipts = await signReceipts(Array.from({ length: 16 }, (_, i) => fields(i)), sign)
    expect(await Promise.all(receipts.map(async r => await verifyReceipt(r, counted)))).toEqual(Array(16).fill(true))
    expect(calls).toBe(1)
    expect(await verifyReceipt({ ...receipts[3], outputsSha256: receipts[4].outputsSha256 }, counted)).toBe(false)
    expect(calls).toBe(2)
  })
})

describe('a worker signing the tasks that finish together', () => {
  function setup (): { client: TaskClient, server: TaskServer, requesterEnd: ReturnType<typeof memoryChannelPair>[0], finish: () => void, started: (n: number) => Promise<void>, signatures: () => number } {
    const gates: Array<() => void> = []
    const running = counter()
    const executor: Executor = {
      execute: async () => {
        await new Promise<void>(resolve => { gates.push(resolve); running.add() })
        return { outputs: [], loadMs: 0, inferenceMs: 0, backend: 'gated', threads: 1 }
      }
    }
    let signed = 0
    const queue = new WorkQueue(executor, { slots: 8 })
    const [requesterEnd, workerEnd] = memoryChannelPair()
    const server = new TaskServer(workerEnd, queue, {
      requester: REQUESTER,
      signer: { peerId: WORKER.toString(), sign: async (b) => { signed++; return await sign(b) } },
      defer: (fn) => { setTimeout(fn, 0) }
    })
    workerEnd.onData(chunk => { server.receive(chunk) })
    const client = new TaskClient(requesterEnd, { requester: REQUESTER, worker: WORKER.toString(), verify })
    return { client, server, requesterEnd, finish: () => { for (const g of gates.splice(0)) g() }, started: running.reach, signatures: () => signed }
  }
  const request = (taskId: string): TaskRequest => ({ taskId, jobId: 'job', model: { sha256: 'a'.repeat(64), size: 1, name: 'm' }, inputs: [], timeoutMs: 0, outputNames: [] })

  it('signs once for 6 results that finish in one turn, and the requester accepts every one of them', async () => {
    const h = setup()
    h.requesterEnd.onData(chunk => { h.client.receive(chunk) })
    const runs = Array.from({ length: 6 }, async (_, i) => await h.client.run(request(`t${i}`)))
    // The worker runs all six, then they finish together.
    await h.started(6)
    h.finish()
    const outcomes = await Promise.all(runs)
    expect(h.signatures()).toBe(1)
    expect(outcomes.map(o => o.receipt.version)).toEqual(Array(6).fill(RECEIPT_BATCH_VERSION))
    for (const o of outcomes) expect(await verifyReceipt(o.receipt, verify)).toBe(true)
    h.client.close()
  })
  it('signs each alone for a requester that did not ask for batch receipts (one that predates them)', async () => {
    const h = setup()
    const decoder = new FrameDecoder()
    const proofs: Array<{ batch?: unknown }> = []
    const answered = counter()
    h.requesterEnd.onData(chunk => {
      for (const f of decoder.push(chunk)) if (f.type === 'response' && f.response.ok) { proofs.push(f.response.result.receipt!); answered.add() }
    })
    for (let i = 0; i < 3; i++) await h.requesterEnd.send(encodeFrame({ type: 'request', request: request(`old${i}`) }))
    await h.started(3)
    h.finish()
    await answered.reach(3)
    expect(h.signatures()).toBe(3)
    expect(proofs.every(p => p.batch == null)).toBe(true)
  })
  it('fails only the task whose batch proof was tampered with, and the stream carries on', async () => {
    const [requesterEnd, workerEnd] = memoryChannelPair()
    const client = new TaskClient(requesterEnd, { requester: REQUESTER, worker: WORKER.toString(), verify })
    requesterEnd.onData(chunk => { client.receive(chunk) })
    const decoder = new FrameDecoder()
    const requests: TaskRequest[] = []
    const received = counter()
    workerEnd.onData(chunk => { for (const f of decoder.push(chunk)) if (f.type === 'request') { requests.push(f.request); received.add() } })
    const runs = ['a', 'b', 'c'].map(async id => await client.run(request(id)).then(o => o.receipt, (err: Error) => err))
    await received.reach(3)
    expect(requests.every(r => r.batchReceipts === true)).toBe(true)
    const outputs: never[] = []
    const fieldsOf = (r: TaskRequest): ReceiptFields => ({
      jobId: r.jobId, taskId: r.taskId, requester: REQUESTER, worker: WORKER.toString(), modelSha256: r.model.sha256,
      inputsSha256: tensorsSha256(r.inputs), outputsSha256: tensorsSha256(outputs), backend: 'cpu', startedAt: 1, endedAt: 2
    })
    const receipts = await signReceipts(requests.map(fieldsOf), sign) as BatchReceipt[]
    const proofs = receipts.map(r => ({ startedAt: 1, endedAt: 2, signature: Buffer.from(r.signature, 'hex'), batch: { index: r.batchIndex, size: r.batchSize, path: r.path.map(h => Buffer.from(h, 'hex')) } }))
    proofs[1].batch.index = 0 // b claims a's place in the tree
    for (const [i, r] of requests.entries()) {
      await workerEnd.send(encodeFrame({ type: 'response', response: { taskId: r.taskId, ok: true, result: { outputs, timings: { queueMs: 0, loadMs: 0, inferenceMs: 0, totalMs: 0 }, backend: 'cpu', threads: 1, receipt: proofs[i] } } }))
    }
    const [a, b, c] = await Promise.all(runs)
    expect(a).toMatchObject({ version: RECEIPT_BATCH_VERSION, taskId: 'a', batchIndex: 0 })
    expect(c).toMatchObject({ version: RECEIPT_BATCH_VERSION, taskId: 'c', batchIndex: 2 })
    expect(b).toBeInstanceOf(Error)
    expect((b as Error).message).toMatch(/receipt signature invalid/)
    expect(client.isClosed).toBe(false)
    client.close()
  })
})

describe('ReceiptBatcher', () => {
  it('signs more than MAX_RECEIPT_BATCH results of one turn in batches of at most that many', async () => {
    let signatures = 0
    const batcher = new ReceiptBatcher(async (b) => { signatures++; return await sign(b) }, (fn) => { setTimeout(fn, 0) })
    const receipts = await Promise.all(Array.from({ length: MAX_RECEIPT_BATCH + 3 }, async (_, i) => await batcher.sign(fields(i))))
    expect(signatures).toBe(2)
    expect(receipts.map(r => r.version === RECEIPT_BATCH_VERSION ? r.batchSize : 1)).toEqual([...Array(MAX_RECEIPT_BATCH).fill(MAX_RECEIPT_BATCH), 3, 3, 3])
    for (const r of receipts) expect(await verifyReceipt(r, verify)).toBe(true)
  })

  it('fails every waiter of a batch whose signing failed, and signs the next turn\'s again', async () => {
    let fail = true
    const batcher = new ReceiptBatcher(async (b) => { if (fail) throw new Error('no key'); return await sign(b) }, (fn) => { setTimeout(fn, 0) })
    const failed = await Promise.allSettled([0, 1, 2].map(async i => await batcher.sign(fields(i))))
    expect(failed.map(r => r.status)).toEqual(['rejected', 'rejected', 'rejected'])
    fail = false
    expect(await verifyReceipt(await batcher.sign(fields(3)), verify)).toBe(true)
  })
})

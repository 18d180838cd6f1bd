/**
 * Receipts as docs/PROTOCOL.md ("Receipts") specifies them: an independent encoder written from
 * the spec and Node's own Ed25519 (a key rebuilt from the peer id alone) must agree with
 * src/core/receipt.ts, and the documented test vector must hold.
 */
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import {
  RECEIPT_VERSION, ReceiptFormatError, parseReceipt, receiptBytes, signReceipt, tensorsSha256, verifyReceipt
} from '../../src/core/receipt.js'
import type { ReceiptFields, SingleReceipt } from '../../src/core/receipt.js'
import type { WireTensor } from '../../src/core/tensor.js'

const WORKER_KEY = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(7))
const REQUESTER_KEY = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(9))
const WORKER = peerIdFromPrivateKey(WORKER_KEY).toString()
const REQUESTER = peerIdFromPrivateKey(REQUESTER_KEY).toString()

const bytesOf = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
const INPUTS: WireTensor[] = [{ name: 'x', dtype: 'float32', dims: [1, 2], data: bytesOf(Float32Array.of(1, 2)) }]
const OUTPUTS: WireTensor[] = [
  { name: 'probs', dtype: 'float32', dims: [1, 2], data: bytesOf(Float32Array.of(0.25, 0.75)) },
  { name: 'label', dtype: 'int64', dims: [1], data: bytesOf(BigInt64Array.of(1n)) }
]

/** The docs/PROTOCOL.md test vector. */
const VECTOR: ReceiptFields = {
  jobId: 'job-1',
  taskId: 'job-1/0/0',
  requester: REQUESTER,
  worker: WORKER,
  modelSha256: 'ab'.repeat(32),
  inputsSha256: 'e4093e37baa39b612b1a380eb1f14facd125d1dc9d900f8b1e8a8f43d88f90f7',
  outputsSha256: '5e6efbdd7f8ae8c72777b26ffda85695e7c60dc3fa37c111fd87fd8eda433256',
  backend: 'onnxruntime-node cpu 1 thread',
  startedAt: 1_700_000_000_000,
  endedAt: 1_700_000_000_025
}
const VECTOR_SIGNATURE = 'cdd60634fa35ff1886d8ae23a99f45a5e8f621fb656f6c2362b00afce2ef47810538f35c6477d9682b1cf6d86e28b2bf90a0b6badedc3377c0b96f6dbc692e07'

// ---- an independent implementation, written from the spec with Buffer and node:crypto

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b }
const u64 = (n: number | bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b }
const str = (s: string): Buffer => Buffer.concat([u32(Buffer.byteLength(s, 'utf8')), Buffer.from(s, 'utf8')])

function specTensorsSha256 (tensors: WireTensor[]): string {
  const sorted = [...tensors].sort((a, b) => Buffer.compare(Buffer.from(a.name, 'utf8'), Buffer.from(b.name, 'utf8')))
  const h = createHash('sha256').update(u32(sorted.length))
  for (const t of sorted) {
    h.update(str(t.name)).update(str(t.dtype)).update(u32(t.dims.length))
    for (const d of t.dims) h.update(u64(d))
    h.update(u64(t.data.byteLength)).update(t.data)
  }
  return h.digest('hex')
}

function specReceiptBytes (f: ReceiptFields): Buffer {
  return Buffer.concat([
    str('p2p-ai-agents/receipt/1'), str(f.jobId), str(f.taskId), str(f.requester), str(f.worker),
    Buffer.from(f.modelSha256, 'hex'), Buffer.from(f.inputsSha256, 'hex'), Buffer.from(f.outputsSha256, 'hex'),
    str(f.backend), u64(f.startedAt), u64(f.endedAt)
  ])
}

/** Node's Ed25519 with a key rebuilt from the peer id's embedded raw public key (JWK), not libp2p's. */
function nodeCheck (peerId: string, bytes: Uint8Array, signatureHex: string): boolean {
  const raw = peerIdFromString(peerId).publicKey!.raw
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' })
  return nodeVerify(null, bytes, key, Buffer.from(signatureHex, 'hex'))
}

const libp2pVerify = (peerId: string) => (bytes: Uint8Array, sig: Uint8Array): boolean | Promise<boolean> => peerIdFromString(peerId).publicKey!.verify(bytes, sig)

describe('canonical tensor-list digest', () => {
  it('matches an implementation written from the spec, and the documented vector', () => {
    expect(tensorsSha256(INPUTS)).toBe(specTensorsSha256(INPUTS))
    expect(tensorsSha256(OUTPUTS)).toBe(specTensorsSha256(OUTPUTS))
    expect(tensorsSha256(INPUTS)).toBe(VECTOR.inputsSha256)
    expect(tensorsSha256(OUTPUTS)).toBe(VECTOR.outputsSha256)
    // An empty list is the digest of its u32 count alone.
    expect(tensorsSha256([])).toBe(createHash('sha256').update(u32(0)).digest('hex'))
  })

  it('does not depend on tensor order, and sorts names by UTF-8 bytes (not UTF-16 units)', () => {
    expect(tensorsSha256([...OUTPUTS].reverse())).toBe(tensorsSha256(OUTPUTS))
    // UTF-16 puts U+1F600 (0xD83D…) before U+FF5E; UTF-8 puts U+FF5E (EF…) before U+1F600 (F0…): the spec says UTF-8.
    const odd: WireTensor[] = [
      { name: '\u{1F600}', dtype: 'uint8', dims: [1], data: Uint8Array.of(1) },
      { name: '\uFF5E', dtype: 'uint8', dims: [1], data: Uint8Array.of(2) },
      { name: 'a', dtype: 'uint8', dims: [1], data: Uint8Array.of(3) }
    ]
    expect(tensorsSha256(odd)).toBe(specTensorsSha256(odd))
    expect(tensorsSha256([...odd].reverse())).toBe(specTensorsSha256(odd))
  })

  it('matches the spec for long and multi-byte fields, many tensors, large dims and data runs of every size', () => {
    // The writer copies small fields into a 256-byte buffer and keeps data over 64 bytes by reference: cross both lines.
    const tensors: WireTensor[] = [0, 1, 63, 64, 65, 255, 256, 257, 3136].map((n, i) => ({
      name: `t${i}-${'é€😀'.repeat(i * 13)}`,
      dtype: 'uint8',
      dims: [n, 2 ** 40 + i, 1],
      data: Uint8Array.from({ length: n }, (_, k) => (k * 31 + i) & 0xff)
    }))
    expect(tensorsSha256(tensors)).toBe(specTensorsSha256(tensors))
    const long: ReceiptFields = { ...VECTOR, jobId: 'j€'.repeat(200), taskId: '😀'.repeat(100), backend: 'b'.repeat(300), endedAt: Number.MAX_SAFE_INTEGER }
    expect(Buffer.from(receiptBytes(long)).equals(specReceiptBytes(long))).toBe(true)
  })

  it('changes with any name, dtype, shape or data byte', () => {
    const base = tensorsSha256(INPUTS)
    const x = INPUTS[0]
    const variants: WireTensor[][] = [
      [{ ...x, name: 'y' }],
      [{ ...x, dtype: 'int32' }],
      [{ ...x, dims: [2, 1] }],
      [{ ...x, dims: [2] }],
      [{ ...x, data: Uint8Array.from(x.data, (b, i) => i === 7 ? b ^ 1 : b) }],
      [...INPUTS, { name: 'z', dtype: 'uint8', dims: [0], data: new Uint8Array(0) }]
    ]
    for (const v of variants) expect(tensorsSha256(v)).not.toBe(base)
  })
})

describe('receipt bytes and signature', () => {
  it('encodes exactly as the spec says, and the documented signature is deterministic', async () => {
    const bytes = receiptBytes(VECTOR)
    expect(Buffer.from(bytes).equals(specReceiptBytes(VECTOR))).toBe(true)
    expect(bytes.byteLength).toBe(306)
    const receipt = await signReceipt(VECTOR, async (b) => await WORKER_KEY.sign(b))
    expect(receipt.signature).toBe(VECTOR_SIGNATURE)
    expect(receipt.version).toBe(RECEIPT_VERSION)
  })

  it('verifies with libp2p\'s key and with Node\'s Ed25519 from the peer id alone', async () => {
    const receipt = await signReceipt(VECTOR, async (b) => await WORKER_KEY.sign(b))
    expect(await verifyReceipt(receipt, libp2pVerify(WORKER))).toBe(true)
    expect(nodeCheck(WORKER, specReceiptBytes(receipt), receipt.signature)).toBe(true)
  })

  it('fails on any changed field, another signer, or a malformed signature', async () => {
    const receipt = await signReceipt(VECTOR, async (b) => await WORKER_KEY.sign(b))
    const changed: Array<Partial<SingleReceipt>> = [
      { jobId: 'job-2' }, { taskId: 'job-1/0/1' }, { requester: WORKER }, { worker: REQUESTER },
      { modelSha256: 'ac'.repeat(32) }, { inputsSha256: VECTOR.outputsSha256 }, { outputsSha256: VECTOR.inputsSha256 },
      { backend: 'wasm' }, { startedAt: VECTOR.startedAt + 1 }, { endedAt: VECTOR.endedAt - 1 },
      { signature: receipt.signature.slice(0, -2) + '00' }, { signature: receipt.signature.slice(2) }, { signature: 'zz'.repeat(64) }
    ]
    for (const c of changed) expect(await verifyReceipt({ ...receipt, ...c }, libp2pVerify(WORKER)), JSON.stringify(c)).toBe(false)
    // The right bytes signed by someone else than the named worker.
    const forged = await signReceipt(VECTOR, async (b) => await REQUESTER_KEY.sign(b))
    expect(await verifyReceipt(forged, libp2pVerify(WORKER))).toBe(false)
  })

  it('refuses times and digests the layout cannot carry', () => {
    expect(() => receiptBytes({ ...VECTOR, startedAt: -1 })).toThrow(ReceiptFormatError)
    expect(() => receiptBytes({ ...VECTOR, endedAt: 1.5 })).toThrow(ReceiptFormatError)
    expect(() => receiptBytes({ ...VECTOR, modelSha256: 'AB'.repeat(32) })).toThrow(ReceiptFormatError)
  })
})

describe('parseReceipt', () => {
  it('round-trips a receipt through JSON and drops unknown fields', async () => {
    const receipt = await signReceipt(VECTOR, async (b) => await WORKER_KEY.sign(b))
    expect(parseReceipt(JSON.parse(JSON.stringify({ ...receipt, extra: 1 })))).toEqual(receipt)
  })

  it('names what is wrong with a malformed receipt', async () => {
    const receipt = await signReceipt(VECTOR, async (b) => await WORKER_KEY.sign(b))
    const cases: Array<[unknown, RegExp]> = [
      [null, /JSON object/],
      [[], /JSON object/],
      [{ ...receipt, version: 'p2p-ai-agents/receipt/3' }, /unknown receipt version/],
      [{ ...receipt, signature: 'ab' }, /signature/],
      [{ ...receipt, jobId: 5 }, /jobId must be a string/],
      [{ ...receipt, outputsSha256: 'x' }, /outputsSha256 must be 64 lowercase hex/],
      [{ ...receipt, startedAt: '1' }, /startedAt must be a whole number/],
      [{ ...receipt, endedAt: undefined }, /endedAt must be a whole number/]
    ]
    for (const [value, message] of cases) expect(() => parseReceipt(value)).toThrow(message)
  })
})

/**
 * Discovery codec: adverts as signed, bounded protobuf messages. Signing and verifying are
 * injected (core has no crypto of its own); everything a remote peer sends is size-checked before
 * it is decoded, and decoded fields are checked before anyone uses them.
 */
import { AdvertBody, SignedAdvert } from './pb/advert.js'
import { TaskError } from '../errors.js'
import type { ModelInfo } from './pb/advert.js'
import type { Advert, PeerKind } from './advert.js'

/** The gossipsub topic every peer subscribes to; relays form its backbone mesh. */
export const DISCOVERY_TOPIC = '/p2p-ai-agents/discovery/1.0.0'
/** A joining peer asks a relay for the latest advert of every peer it knows, once. */
export const DISCOVERY_SYNC_PROTOCOL = '/p2p-ai-agents/discovery-sync/1.0.0'

/** Largest signed advert on the wire, in bytes: a bigger one is dropped unread. */
export const MAX_ADVERT_BYTES = 4096
export const MAX_ADVERT_ADDRS = 8
const MAX_ADDR_BYTES = 300
/** Models listed per advert (the publisher puts the most relevant first). */
export const MAX_ADVERT_MODELS = 32
const MAX_TEXT = 96
/** Prepended to the body before signing, so an advert signature can mean nothing else. */
const SIGNING_PREFIX = new TextEncoder().encode('p2p-ai-agents/advert:')

export interface SignedBytes {
  publicKey: Uint8Array
  body: Uint8Array
  signature: Uint8Array
}

/** A decoded advert body: the advert, its sequence number, and whether the peer is leaving. */
export interface AdvertEnvelope {
  seq: number
  leaving: boolean
  advert: Advert
}

const KIND_TO_WIRE: Record<PeerKind, number> = { unknown: 0, tab: 1, node: 2, relay: 3 }
const WIRE_TO_KIND = new Map<number, PeerKind>(Object.entries(KIND_TO_WIRE).map(([k, v]) => [v, k as PeerKind]))
/** Room left in a signed advert for the key, the signature and their framing. */
const MAX_BODY_BYTES = MAX_ADVERT_BYTES - 160
const SHA256_HEX = /^[0-9a-f]{64}$/

function bad (message: string): TaskError {
  return new TaskError('bad-request', `malformed advert: ${message}`)
}

function hexToBytes (hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

function bytesToHex (bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return s
}

/** The bytes a publisher signs for `body`. */
export function signingBytes (body: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNING_PREFIX.length + body.length)
  out.set(SIGNING_PREFIX)
  out.set(body, SIGNING_PREFIX.length)
  return out
}

/**
 * Encodes an advert body. Lists are cut to what receivers accept, models first-come (so put what
 * matters most first); `addrs` are already-encoded multiaddr bytes.
 */
export function encodeAdvertBody (e: AdvertEnvelope, addrs: Uint8Array[]): Uint8Array {
  const a = e.advert
  const models = a.models.filter(sha => SHA256_HEX.test(sha)).slice(0, MAX_ADVERT_MODELS).map((sha): ModelInfo => {
    const ms = a.speeds[sha]
    return {
      sha256: hexToBytes(sha),
      loaded: a.cached.includes(sha),
      ms: ms != null && Number.isFinite(ms) && ms > 0 ? ms : 0,
      backend: (a.backends[sha] ?? '').slice(0, MAX_TEXT)
    }
  })
  const encode = (): Uint8Array => AdvertBody.encode({
    seq: BigInt(e.seq),
    kind: KIND_TO_WIRE[a.kind],
    addrs: addrs.filter(b => b.byteLength <= MAX_ADDR_BYTES).slice(0, MAX_ADVERT_ADDRS) as Array<Uint8Array<ArrayBuffer>>,
    leaving: e.leaving,
    worker: a.worker,
    paused: a.paused,
    backend: a.backend.slice(0, MAX_TEXT),
    threads: a.threads,
    slots: a.slots,
    freeSlots: a.freeSlots,
    maxModelBytes: BigInt(a.maxModelBytes),
    models,
    tasksDone: counter(a.tasksDone),
    tasksFailed: counter(a.tasksFailed),
    queueDepth: a.queueDepth ?? 0
  })
  // Whatever the lists hold, the signed advert must fit what receivers accept: the last models go first.
  let body = encode()
  while (body.byteLength > MAX_BODY_BYTES && models.length > 0) {
    models.splice(Math.max(0, models.length - Math.ceil((body.byteLength - MAX_BODY_BYTES) / 40)))
    body = encode()
  }
  return body
}

/** A running total as the wire carries it: a whole number ≥ 0 (anything else reads as 0). */
function counter (n: number | undefined): bigint {
  return n != null && Number.isSafeInteger(n) && n > 0 ? BigInt(n) : 0n
}

/**
 * Decodes and checks an advert body. `addrs` come back as raw bytes for the caller to parse as
 * multiaddrs and check that each names the publisher.
 */
export function decodeAdvertBody (bytes: Uint8Array): { envelope: Omit<AdvertEnvelope, 'advert'> & { advert: Omit<Advert, 'addrs'> }, addrs: Uint8Array[] } {
  let m: AdvertBody
  try {
    m = AdvertBody.decode(bytes, { limits: { addrs: MAX_ADVERT_ADDRS, models: MAX_ADVERT_MODELS } })
  } catch (err) {
    throw bad((err as Error).message)
  }
  if (m.backend.length > MAX_TEXT) throw bad('backend name too long')
  for (const a of m.addrs) if (a.byteLength > MAX_ADDR_BYTES) throw bad('address too long')
  const models: string[] = []
  const cached: string[] = []
  const speeds: Record<string, number> = {}
  const backends: Record<string, string> = {}
  for (const info of m.models) {
    if (info.sha256.byteLength !== 32) throw bad('model sha256 must be 32 bytes')
    if (info.backend.length > MAX_TEXT) throw bad('model backend name too long')
    if (!Number.isFinite(info.ms) || info.ms < 0) throw bad('model speed must be a finite number ≥ 0')
    const sha = bytesToHex(info.sha256)
    models.push(sha)
    if (info.loaded) cached.push(sha)
    if (info.ms > 0) speeds[sha] = info.ms
    if (info.backend !== '') backends[sha] = info.backend
  }
  const seq = Number(m.seq)
  if (!Number.isSafeInteger(seq)) throw bad('sequence number out of range')
  const tasksDone = Number(m.tasksDone)
  const tasksFailed = Number(m.tasksFailed)
  if (!Number.isSafeInteger(tasksDone) || !Number.isSafeInteger(tasksFailed)) throw bad('task counter out of range')
  // Receivers take `slots − queueDepth` as its execution slots: that must not go below zero.
  if (m.queueDepth > m.slots) throw bad(`queue depth ${m.queueDepth} over its ${m.slots} slots`)
  return {
    envelope: {
      seq,
      leaving: m.leaving,
      advert: {
        kind: WIRE_TO_KIND.get(m.kind) ?? 'unknown',
        worker: m.worker,
        paused: m.paused,
        backend: m.backend,
        threads: m.threads,
        slots: m.slots,
        freeSlots: m.freeSlots,
        models,
        cached,
        speeds,
        maxModelBytes: Number(m.maxModelBytes),
        backends,
        // Zero is also what a peer that does not count sends: absent either way.
        ...(tasksDone > 0 ? { tasksDone } : {}),
        ...(tasksFailed > 0 ? { tasksFailed } : {}),
        ...(m.queueDepth > 0 ? { queueDepth: m.queueDepth } : {})
      }
    },
    addrs: m.addrs
  }
}

export function encodeSigned (s: SignedBytes): Uint8Array {
  return SignedAdvert.encode(s as SignedAdvert)
}

/** Splits a signed advert into key, body and signature; refuses anything over MAX_ADVERT_BYTES unread. */
export function decodeSigned (bytes: Uint8Array): SignedBytes {
  if (bytes.byteLength > MAX_ADVERT_BYTES) throw bad(`${bytes.byteLength} bytes, over the ${MAX_ADVERT_BYTES}-byte limit`)
  try {
    return SignedAdvert.decode(bytes)
  } catch (err) {
    throw bad((err as Error).message)
  }
}

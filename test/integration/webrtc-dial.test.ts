/**
 * Dialling a direct WebRTC connection between our peers over a real relay, with @libp2p/webrtc as
 * patched in patches/: a peer connection that fails mid-dial ends the dial at once (not at the
 * dial's deadline, 15 s later), and the dialler sends its ICE candidates only once it holds the
 * answer. Without the latter, a loaded machine sometimes completed ICE and DTLS while the dialler
 * was still inside setRemoteDescription, libdatachannel checked the recipient's certificate before
 * it had stored the answer's fingerprint, and the dial failed; without the former, that failure
 * held the dial until its deadline, so a requester's first task to a worker took 15–19 s.
 *
 * The dialled peer here is a proxy: it carries the signalling messages between the dialler and a
 * real recipient (another of our peers), rewriting or holding some of them on the way.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { Cleanup, WAIT_MS, startBarePeer, startRelay, withTimeout } from './helpers.js'
import { LengthPrefixedReader, lengthPrefixed } from '../../src/core/framing.js'
import { connectionKind } from '../../src/net/connection-kind.js'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Peer } from '../../src/net/peer.js'
import type { TestRelay } from './helpers.js'

/** @libp2p/webrtc's signalling protocol (the libp2p WebRTC private-to-private spec). */
const SIGNALING_PROTOCOL = '/webrtc-signaling/0.0.1'
const SDP_OFFER = 0
const SDP_ANSWER = 1
/** By type: SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE. */
const SIGNAL_NAMES = ['offer', 'answer', 'candidate'] as const

/** One signalling message: `message Message { optional Type type = 1; optional string data = 2; }`. */
interface Signal { type: number, data: string }

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

function encodeSignal (s: Signal): Uint8Array {
  const data = lengthPrefixed(utf8.encode(s.data))
  const body = new Uint8Array(3 + data.byteLength)
  body.set([0x08, s.type, 0x12])
  body.set(data, 3)
  return lengthPrefixed(body)
}

function decodeSignal (body: Uint8Array): Signal {
  const s: Signal = { type: SDP_OFFER, data: '' }
  let pos = 0
  const varint = (): number => {
    let value = 0
    for (let scale = 1; ; scale *= 0x80) {
      const byte = body[pos++]
      if (byte === undefined) throw new Error('truncated signalling message')
      value += (byte & 0x7f) * scale
      if ((byte & 0x80) === 0) return value
    }
  }
  while (pos < body.byteLength) {
    const tag = varint()
    if (tag === 0x08) s.type = varint()
    else if (tag === 0x12) {
      const length = varint()
      s.data = fromUtf8.decode(body.subarray(pos, pos + length))
      pos += length
    } else throw new Error(`unexpected field tag ${tag} in a signalling message`)
  }
  return s
}

/** Calls `onSignal` for each message arriving on `stream`, in order; a malformed one resets the stream. */
function readSignals (stream: Stream, onSignal: (s: Signal) => void): void {
  const reader = new LengthPrefixedReader(256 * 1024)
  stream.addEventListener('message', (evt) => {
    try {
      for (const body of reader.push(evt.data.subarray())) onSignal(decodeSignal(body))
    } catch (err) {
      stream.abort(err as Error)
    }
  })
}

/** Writes to `stream` in call order, respecting its back-pressure. */
function writer (stream: Stream): (s: Signal) => void {
  let queue = Promise.resolve()
  return (s) => {
    queue = queue
      .then(async () => { if (!stream.send(encodeSignal(s))) await stream.onDrain() })
      .catch((err: unknown) => { stream.abort(err as Error) })
  }
}

/** One message a proxy forwarded: who it came from, and what it was. */
type ForwardedSignal = `${'dialler' | 'recipient'} ${'offer' | 'answer' | 'candidate'}`

/** What a proxy forwarded, in order; `seen` resolves once it has forwarded such a message. */
interface Forwarded {
  list: ForwardedSignal[]
  seen: (signal: ForwardedSignal) => Promise<void>
}

interface ProxyOptions {
  /** Rewrites the recipient's SDP answer on its way to the dialler. */
  answer?: (sdp: string) => string
  /** Holds the recipient's answer until the recipient's first ICE candidate arrives, then sends both. */
  holdAnswer?: boolean
}

/**
 * Turns `proxy` (one of our peers) into a signalling proxy for `recipient`: a WebRTC dial to
 * `proxy` opens a signalling stream to `recipient` and carries the messages both ways.
 */
async function signallingProxy (proxy: Peer, relay: TestRelay, recipient: PeerId, options: ProxyOptions = {}): Promise<Forwarded> {
  const list: ForwardedSignal[] = []
  const waiting: Array<{ signal: ForwardedSignal, resolve: () => void }> = []
  const record = (signal: ForwardedSignal): void => {
    list.push(signal)
    for (const w of waiting.filter(w => w.signal === signal)) { waiting.splice(waiting.indexOf(w), 1); w.resolve() }
  }
  const seen = async (signal: ForwardedSignal): Promise<void> => {
    if (list.includes(signal)) return
    await new Promise<void>(resolve => { waiting.push({ signal, resolve }) })
  }
  await proxy.unhandle(SIGNALING_PROTOCOL)
  await proxy.handle(SIGNALING_PROTOCOL, (fromDialler) => {
    const onward = proxy.dialProtocol(multiaddr(`${relay.addr}/p2p-circuit/p2p/${recipient.toString()}`), SIGNALING_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(WAIT_MS) })
    onward.catch((err: unknown) => { fromDialler.abort(err as Error) })
    // The dialler's messages may arrive before the stream onward is open: they wait for it, in order.
    const toRecipient = onward.then(writer)
    const toDialler = writer(fromDialler)
    readSignals(fromDialler, (s) => {
      record(`dialler ${SIGNAL_NAMES[s.type] ?? 'candidate'}`)
      toRecipient.then(send => { send(s) }, () => {})
    })
    void onward.then((recipientStream) => {
      let heldAnswer: Signal | undefined
      readSignals(recipientStream, (s) => {
        if (s.type === SDP_ANSWER) {
          const answer = { ...s, data: options.answer?.(s.data) ?? s.data }
          if (options.holdAnswer === true) { heldAnswer = answer; return }
          record('recipient answer')
          toDialler(answer)
          return
        }
        if (heldAnswer != null) {
          record('recipient answer')
          toDialler(heldAnswer)
          heldAnswer = undefined
        }
        record('recipient candidate')
        toDialler(s)
      })
      // Either side ending its signalling ends the other's.
      const link = (from: Stream, to: Stream): void => {
        from.addEventListener('remoteCloseWrite', () => { to.close().catch((err: unknown) => { to.abort(err as Error) }) })
        from.addEventListener('close', (evt) => { if (evt.error != null) to.abort(evt.error) })
      }
      link(fromDialler, recipientStream)
      link(recipientStream, fromDialler)
    }, () => {})
  }, { runOnLimitedConnection: true })
  return { list, seen }
}

/** Settles with the dial's connection or its error, failing the test if it has not settled within WAIT_MS. */
async function dialSettles (dialler: Peer, relay: TestRelay, target: PeerId): Promise<Connection | Error> {
  const dial = dialler.dial(multiaddr(`${relay.addr}/p2p-circuit/webrtc/p2p/${target.toString()}`))
  return await withTimeout(dial.catch((err: unknown) => err as Error), WAIT_MS, 'the WebRTC dial to settle')
}

describe('direct WebRTC dials', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  it('a dial whose DTLS handshake fails (an answer whose fingerprint does not match) fails with the peer connection, not at its deadline', async () => {
    const relay = await startRelay(cleanup)
    const dialler = await startBarePeer(cleanup, relay.addr, 'dialler')
    const recipient = await startBarePeer(cleanup, relay.addr, 'recipient')
    const proxy = await startBarePeer(cleanup, relay.addr, 'proxy')
    const wrong = `a=fingerprint:sha-256 ${Array<string>(32).fill('00').join(':')}`
    const forwarded = await signallingProxy(proxy, relay, recipient.peerId, { answer: sdp => sdp.replace(/^a=fingerprint:.*$/m, wrong) })

    const result = await dialSettles(dialler, relay, proxy.peerId)

    expect(forwarded.list).toContain('recipient answer')
    // Before the fix: a TimeoutError when the dial's 15 s deadline ran out.
    expect(result).toBeInstanceOf(Error)
    expect((result as Error).name).toBe('ConnectionFailedError')
    expect((result as Error).message).toMatch(/RTCPeerConnection connection state became "(failed|closed)"/)
    expect(dialler.getConnections().filter(c => connectionKind(c) === 'direct WebRTC')).toEqual([])
  })

  it('the dialler sends its ICE candidates only once it holds the answer', async () => {
    const relay = await startRelay(cleanup)
    const dialler = await startBarePeer(cleanup, relay.addr, 'dialler')
    const recipient = await startBarePeer(cleanup, relay.addr, 'recipient')
    const proxy = await startBarePeer(cleanup, relay.addr, 'proxy')
    // The answer reaches the dialler only after the recipient has gathered a candidate, by which
    // time a dialler that trickles from the offer on has sent its own.
    const forwarded = await signallingProxy(proxy, relay, recipient.peerId, { holdAnswer: true })

    const result = await dialSettles(dialler, relay, proxy.peerId)

    expect(result).not.toBeInstanceOf(Error)
    expect(connectionKind(result as Connection)).toBe('direct WebRTC')
    // The connection can be up before the dialler's candidate has crossed the proxy: wait for it.
    await withTimeout(forwarded.seen('dialler candidate'), WAIT_MS, () => `the dialler's ICE candidate at the proxy (forwarded: ${forwarded.list.join(', ')})`)
    const answeredAt = forwarded.list.indexOf('recipient answer')
    expect(answeredAt).toBeGreaterThan(0)
    expect(forwarded.list.slice(0, answeredAt)).toEqual(['dialler offer'])
    expect(forwarded.list.slice(answeredAt)).toContain('dialler candidate')
  })
})

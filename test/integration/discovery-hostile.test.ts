/**
 * Discovery against hostile peers, with a real relay and real libp2p peers: signed adverts with
 * addresses that do not parse or lead elsewhere, an oversized sync answer, a gossip subscriber
 * that stops reading, and sync readers that never read. None of it may crash a peer, and the
 * relay must not hold memory for a peer that does not read.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { getHeapStatistics } from 'node:v8'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createLibp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { RPC } from '@libp2p/gossipsub/message'
import { Cleanup, WAIT_MS, startBarePeer, startRelay, waitForDirect, withTimeout } from './helpers.js'
import { DISCOVERY_SYNC_PROTOCOL, DISCOVERY_TOPIC, encodeAdvertBody, encodeSigned, signingBytes } from '../../src/core/discovery/codec.js'
import { lengthPrefixed } from '../../src/core/framing.js'
import { NOT_A_WORKER } from '../../src/core/discovery/advert.js'
import { DiscoverySyncError, MAX_SYNC_ANSWER_BYTES } from '../../src/net/discovery-service.js'
import { MAX_OUTBOUND_BUFFER_BYTES } from '../../src/net/gossip.js'
import type { Libp2p, PrivateKey, Stream } from '@libp2p/interface'
import type { Advert } from '../../src/core/discovery/advert.js'
import type { TestRelay } from './helpers.js'

const utf8 = new TextEncoder()

/** An advert body signed by `key`, listing `addrs` as raw bytes (whatever they are). */
async function signedAdvert (key: PrivateKey, addrs: Uint8Array[], advert: Partial<Advert> = {}): Promise<Uint8Array> {
  const body = encodeAdvertBody({ seq: Date.now() + 1_000_000, leaving: false, advert: { ...NOT_A_WORKER, kind: 'node', ...advert } }, addrs)
  return encodeSigned({ publicKey: publicKeyToProtobuf(key.publicKey), body, signature: await key.sign(signingBytes(body)) })
}

/** Polls `check` (a counter on a libp2p service: those raise no event) until true, within `ms`. */
async function until (check: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`)
    await new Promise(resolve => setTimeout(resolve, 50)) // poll interval, not synchronisation
  }
}

/** A bare libp2p node (WebSockets, Noise, yamux, identify) that speaks our protocols by hand. */
async function rawNode (cleanup: Cleanup, name: string): Promise<Libp2p> {
  const node = await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify() }
  })
  cleanup.add(name, async () => { await node.stop() })
  return node
}

/** Resolves with the close event's error (or undefined) once `stream` closes. */
/** Resolves when the stream ends: with its error when it was reset or aborted (also when that already happened), undefined on a clean close. */
async function closed (stream: Stream): Promise<Error | undefined> {
  if (stream.status === 'aborted' || stream.status === 'reset') return new Error(`the stream was ${stream.status}`)
  if (stream.status === 'closed') return undefined
  return await new Promise(resolve => { stream.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true }) })
}

function heapAfterGc (): number {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
  gc()
  return getHeapStatistics().used_heap_size
}

const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`

describe('discovery against hostile peers', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  it('adverts whose addresses do not parse or lead to another peer are rejected, by gossip and by sync, and crash nobody', async () => {
    const relay = await startRelay(cleanup)
    const a = await startBarePeer(cleanup, relay.addr, 'a')
    const b = await startBarePeer(cleanup, relay.addr, 'b')
    const hostileKey = await generateKeyPair('Ed25519')
    const h = await startBarePeer(cleanup, relay.addr, 'hostile', { privateKey: hostileKey })
    const hid = h.peerId.toString()
    const hostile = [
      await signedAdvert(hostileKey, [utf8.encode(`not a multiaddr ${hid}`)]),
      await signedAdvert(hostileKey, [multiaddr(`/ip4/127.0.0.1/tcp/1/ws/p2p/${a.peerId.toString()}`).bytes]),
      await signedAdvert(hostileKey, [multiaddr(`/ip4/127.0.0.1/tcp/1/ws/p2p/${hid}`).bytes, Uint8Array.of(0xff, 0xff, 0xff)])
    ]

    // By gossip: the relay checks each before passing it on, and rejects all three.
    const rejectedBefore = relay.node.services.discovery.stats.rejected
    for (const signed of hostile) await h.services.pubsub.publish(DISCOVERY_TOPIC, signed)
    await until(() => relay.node.services.discovery.stats.rejected >= rejectedBefore + hostile.length, WAIT_MS,
      () => `the relay to reject ${hostile.length} adverts (rejected ${relay.node.services.discovery.stats.rejected - rejectedBefore})`)

    // By sync: the hostile peer answers a sync with them; the asking peer takes none of them.
    await h.unhandle(DISCOVERY_SYNC_PROTOCOL)
    await h.handle(DISCOVERY_SYNC_PROTOCOL, (stream) => {
      for (const signed of hostile) stream.send(lengthPrefixed(signed))
      stream.close().catch(err => { stream.abort(err as Error) })
    })
    await waitForDirect(a, h)
    expect(await a.services.discovery.sync(h.peerId)).toBe(0)

    const listed = a.services.discovery.addrsOf(hid) ?? []
    expect(listed.every(addr => addr.endsWith(`/p2p/${hid}`) && !addr.includes('/tcp/1/'))).toBe(true)
    // Everyone is still up and still hears the honest peers.
    await until(() => a.services.discovery.table.get(b.peerId.toString()) != null && b.services.discovery.table.get(a.peerId.toString()) != null,
      WAIT_MS, () => 'a and b to hold each other\'s advert')
  })

  it('a sync answer over the byte limit is refused as it arrives and the stream reset', async () => {
    const relay = await startRelay(cleanup)
    const a = await startBarePeer(cleanup, relay.addr, 'a')
    const h = await startBarePeer(cleanup, relay.addr, 'hostile')
    // Frames the reader accepts one by one (4 KiB each, well under the count limit), twice the byte
    // limit in all, and the stream left open: only the reader cutting it ends it (a sender that
    // closed cleanly first would say nothing about the reader).
    const frame = lengthPrefixed(new Uint8Array(4000).fill(7))
    const frames = Math.ceil(MAX_SYNC_ANSWER_BYTES * 2 / frame.byteLength)
    let senderStream: Stream | undefined
    await h.unhandle(DISCOVERY_SYNC_PROTOCOL)
    await h.handle(DISCOVERY_SYNC_PROTOCOL, (stream) => {
      senderStream = stream
      void (async () => {
        for (let i = 0; i < frames && stream.status === 'open'; i++) {
          if (!stream.send(frame)) await stream.onDrain()
        }
      })().catch(() => { stream.abort(new Error('sender stopped')) })
    })
    await waitForDirect(a, h)
    const err = await a.services.discovery.sync(h.peerId).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(DiscoverySyncError)
    expect((err as Error).message).toMatch(/over \d+ bytes/)
    // The reader cut the stream: the sender, which never closes its end, sees the stream end.
    await withTimeout(closed(senderStream!), WAIT_MS, 'the hostile sender\'s stream to end')
  })

  it('a gossip subscriber that stops reading is dropped once its queue passes the limit', async () => {
    const relay = await startRelay(cleanup)
    const publisher = await startBarePeer(cleanup, relay.addr, 'publisher')
    // The non-reader: subscribes to the discovery topic by hand, then pauses the stream the relay writes to.
    const sink = await rawNode(cleanup, 'non-reading subscriber')
    const inbound = new Promise<Stream>(resolve => {
      void sink.handle(['/meshsub/1.2.0', '/meshsub/1.1.0'], (stream) => { stream.pause(); resolve(stream) })
    })
    await sink.dial(multiaddr(relay.addr))
    const out = await sink.dialProtocol(multiaddr(relay.addr), ['/meshsub/1.2.0', '/meshsub/1.1.0'])
    const subscribe = RPC.encode({ subscriptions: [{ subscribe: true, topic: DISCOVERY_TOPIC }], messages: [] })
    out.send(lengthPrefixed(subscribe))
    const held = await withTimeout(inbound, WAIT_MS, 'the relay to open its gossip stream to the subscriber')
    const dropped = closed(held)

    // Real adverts from many identities, through the relay, paced so the publisher's own queue stays short.
    const models = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0').repeat(32))
    let published = 0
    let isDropped = false
    void dropped.then(() => { isDropped = true })
    const stats = relay.node.services.discovery.stats
    const receivedBefore = stats.received
    while (!isDropped && published < 4 * MAX_OUTBOUND_BUFFER_BYTES / 1000) {
      for (let i = 0; i < 100; i++) {
        const key = await generateKeyPair('Ed25519')
        const id = peerIdFromPrivateKey(key).toString()
        const addr = multiaddr(`/ip4/127.0.0.1/tcp/1/ws/p2p/${relay.node.peerId.toString()}/p2p-circuit/webrtc/p2p/${id}`)
        await publisher.services.pubsub.publish(DISCOVERY_TOPIC, await signedAdvert(key, [addr.bytes], { models, backend: 'wasm' }))
        published++
      }
      await until(() => stats.received - receivedBefore >= published, WAIT_MS, () => `the relay to receive ${published} adverts (${stats.received - receivedBefore})`)
    }
    await withTimeout(dropped, WAIT_MS, () => `the relay to drop the non-reader after ${published} adverts`)
    console.log(`gossip non-reader: dropped after ${published} adverts`)
    // The relay still serves its honest peers.
    expect(relay.node.getConnections().some(c => c.remotePeer.equals(publisher.peerId))).toBe(true)
  })

  it('sync readers that never read are cut off at the deadline, and the relay memory they held comes back', async () => {
    const relay: TestRelay = await startRelay(cleanup)
    // A table of 2,000 adverts of 4 KiB (8 MiB): what each reader asks for.
    const signed = new Uint8Array(4000).fill(1)
    const table = relay.node.services.discovery.table
    for (let i = 0; i < 2000; i++) {
      table.accept(`fake-${i}`, { seq: 1, leaving: false, advert: { ...NOT_A_WORKER, kind: 'node' } }, signed.slice())
    }
    const readers = 30
    const heapBefore = heapAfterGc()
    const streams = await Promise.all(Array.from({ length: readers }, async (_, i) => {
      const node = await rawNode(cleanup, `reader ${i}`)
      const stream = await node.dialProtocol(multiaddr(relay.addr), DISCOVERY_SYNC_PROTOCOL)
      stream.pause()
      return stream
    }))
    const heapHeld = getHeapStatistics().used_heap_size
    const errors = await withTimeout(Promise.all(streams.map(closed)), WAIT_MS, 'the relay to cut off every reader that never reads')
    const heapAfter = heapAfterGc()
    console.log(`${readers} sync readers that never read (8 MiB table): heap (whole test process) ${mb(heapBefore)} before, ${mb(heapHeld)} while held, ${mb(heapAfter)} after they were cut off`)
    expect(errors.length).toBe(readers)
    // Each reader was sent at most its window, not the table: nowhere near readers × 8 MiB stays.
    expect(heapAfter - heapBefore).toBeLessThan(readers * 1024 * 1024)
  })
})

/**
 * A long-lived direct connection lets go of the data channels opened and closed on it. Every
 * libp2p stream over WebRTC is a data channel; a worker's connection to a requester lives as long
 * as both do, and node-datachannel's RTCPeerConnection kept each channel the remote side opened
 * (and the stream and buffers behind it) until the connection closed: a Node worker grew with
 * every stream a requester ever opened to it (patches/node-datachannel+*.patch).
 * And each stream message is one data channel message: @libp2p/webrtc sent its length prefix and
 * body as two, and each send runs SCTP and DTLS synchronously on the sender's thread and is a
 * message event at the receiver (patches/@libp2p+webrtc+*.patch).
 */
import '../../src/node/polyfill.js'
import { afterEach, describe, expect, it } from 'vitest'
import { RTCDataChannel } from 'node-datachannel/polyfill'
import { connectionKind } from '../../src/net/connection-kind.js'
import { Cleanup, startPeer, startRelay, waitForDirect, withTimeout } from './helpers.js'
import type { Connection } from '@libp2p/interface'

const ECHO = '/p2p-ai-agents/test/echo/1.0.0'
const STREAMS = 60

/** How many data channels the connection's RTCPeerConnection holds now, as its stats report. */
async function heldChannels (connection: Connection): Promise<number> {
  const pc = (connection as unknown as { maConn?: { peerConnection?: { getStats(): Promise<Map<string, Record<string, unknown>>> } } }).maConn?.peerConnection
  if (pc == null) throw new Error('no RTCPeerConnection under this connection')
  const report = [...(await pc.getStats()).values()].find(v => v.type === 'peer-connection')
  if (typeof report?.dataChannelsOpened !== 'number') throw new Error('no peer-connection stats')
  return report.dataChannelsOpened
}

describe('data channels on a long-lived direct connection', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  it('are let go once closed on the side that did not open them, however many streams the connection carried', async () => {
    const relay = await startRelay(cleanup)
    const [requester, worker] = await Promise.all([startPeer(cleanup, relay.addr, { work: false }), startPeer(cleanup, relay.addr)])
    let ended = 0
    let wake = (): void => {}
    await worker.node.handle(ECHO, (stream) => {
      stream.addEventListener('message', (evt) => { stream.send(evt.data) })
      // The requester is done writing: so is the echo.
      stream.addEventListener('remoteCloseWrite', () => { stream.close().catch(() => { stream.abort(new Error('close failed')) }) })
      stream.addEventListener('close', () => { ended++; wake() })
    })
    const connection = await waitForDirect(requester.node, worker.node.peerId)
    const back = worker.node.getConnections(requester.node.peerId).find(c => c.status === 'open' && connectionKind(c) === 'direct WebRTC')
    if (back == null) throw new Error('the worker has no direct connection back')
    const before = await heldChannels(back)

    for (let i = 0; i < STREAMS; i++) {
      const stream = await connection.newStream(ECHO)
      const echoed = new Promise<void>(resolve => { stream.addEventListener('message', () => { resolve() }, { once: true }) })
      stream.send(Uint8Array.of(i))
      await withTimeout(echoed, 10_000, `the echo of stream ${i}`)
      await stream.close()
    }
    // Every stream has ended on the worker's side…
    while (ended < STREAMS) await withTimeout(new Promise<void>(resolve => { wake = resolve }), 20_000, () => `the worker's side of ${STREAMS} streams to end (${ended} ended)`)
    // …and its channel is let go once closed (the close reaches the RTCPeerConnection on its own schedule).
    const deadline = Date.now() + 20_000
    let held = await heldChannels(back)
    while (held > before && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 100))
      held = await heldChannels(back)
    }
    expect(held).toBeLessThanOrEqual(before)
    expect(back.status).toBe('open')
  }, 120_000)
  it('carry each stream message as one data channel message', async () => {
    const relay = await startRelay(cleanup)
    const [requester, worker] = await Promise.all([startPeer(cleanup, relay.addr, { work: false }), startPeer(cleanup, relay.addr)])
    const received: number[] = []
    let wake = (): void => {}
    await worker.node.handle(ECHO, (stream) => {
      stream.addEventListener('message', (evt) => { received.push(evt.data.byteLength); wake() })
    })
    const connection = await waitForDirect(requester.node, worker.node.peerId)
    const stream = await connection.newStream(ECHO)
    const channel = (stream as unknown as { channel?: RTCDataChannel }).channel
    if (channel == null) throw new Error('no data channel under this stream')
    const sent: number[] = []
    const send = RTCDataChannel.prototype.send
    cleanup.add('the data channel send hook', () => { RTCDataChannel.prototype.send = send })
    RTCDataChannel.prototype.send = function (this: RTCDataChannel, data) {
      if (this === channel) sent.push((data as Uint8Array).byteLength)
      send.call(this, data)
    }
    for (const size of [1, 3136, 16_000]) stream.send(new Uint8Array(size).fill(7))
    while (received.reduce((a, b) => a + b, 0) < 1 + 3136 + 16_000) await withTimeout(new Promise<void>(resolve => { wake = resolve }), 10_000, 'the messages to arrive')
    expect(sent).toHaveLength(3)
    await stream.close()
  }, 120_000)
})

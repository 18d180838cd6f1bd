/**
 * The relay admits new peers while one address holds hundreds of WebSockets that never speak
 * libp2p (and reopens each one the relay drops): connections still in the handshake are capped
 * per address, so the flood fills its own share and not the relay's.
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { Cleanup, WAIT_MS, startBarePeer, startRelay, withTimeout } from './helpers.js'
import type { Peer } from '../../src/net/peer.js'

const SILENT_SOCKETS = 300
const NEW_PEERS = 5
/** Linux routes all of 127/8 to lo: the flood comes from another address than the honest peers' 127.0.0.1. */
const ATTACKER_ADDRESS = '127.0.0.2'

/** Holds `count` WebSockets open to `url` from `localAddress`, never sending a byte, reopening any that close. */
class SilentFlood {
  private readonly sockets = new Set<WebSocket>()
  private stopped = false
  opened = 0
  dropped = 0
  private onOpen = (): void => {}

  constructor (private readonly url: string, private readonly localAddress: string, count: number) {
    for (let i = 0; i < count; i++) this.open()
  }

  get held (): number {
    return [...this.sockets].filter(s => s.readyState === WebSocket.OPEN).length
  }

  /** Resolves once `n` sockets have been opened in all (reopens count). */
  async openedAtLeast (n: number): Promise<void> {
    await new Promise<void>(resolve => {
      this.onOpen = () => { if (this.opened >= n) resolve() }
      this.onOpen()
    })
  }

  private open (): void {
    if (this.stopped) return
    const ws = new WebSocket(this.url, { localAddress: this.localAddress })
    this.sockets.add(ws)
    ws.on('open', () => { this.opened++; this.onOpen() })
    ws.on('error', () => {}) // a refused or reset socket only closes; 'close' reopens it
    ws.on('close', () => {
      this.sockets.delete(ws)
      this.dropped++
      setImmediate(() => { this.open() })
    })
  }

  stop (): void {
    this.stopped = true
    for (const s of this.sockets) s.terminate()
  }
}

describe('relay admission under a flood of silent sockets', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  it('five new peers join and see each other while one address holds hundreds of silent WebSockets', async () => {
    const relay = await startRelay(cleanup)
    const flood = new SilentFlood(`ws://127.0.0.1:${relay.port}`, ATTACKER_ADDRESS, SILENT_SOCKETS)
    cleanup.add('silent sockets', () => { flood.stop() })
    await withTimeout(flood.openedAtLeast(SILENT_SOCKETS), WAIT_MS, () => `${SILENT_SOCKETS} silent sockets to open (${flood.opened} so far)`)

    const peers: Peer[] = await withTimeout(
      Promise.all(Array.from({ length: NEW_PEERS }, async (_, i) => await startBarePeer(cleanup, relay.addr, `peer ${i}`))),
      WAIT_MS * 2,
      () => `${NEW_PEERS} peers to hold a reservation on the relay (flood holds ${flood.held} sockets, ${flood.dropped} dropped)`)

    const ids = peers.map(p => p.peerId.toString())
    await withTimeout(Promise.all(peers.map(async (p) => {
      const table = p.services.discovery.table
      const seesAll = (): boolean => ids.every(id => id === p.peerId.toString() || table.get(id) != null)
      if (seesAll()) return
      await new Promise<void>(resolve => {
        const check = (): void => { if (seesAll()) { table.removeEventListener('advert', check); resolve() } }
        table.addEventListener('advert', check)
      })
    })), WAIT_MS, 'every new peer to hold every other one\'s advert')

    // The flood was still there while they joined: the relay kept refusing its sockets past their share.
    expect(relay.admission.refused).toBeGreaterThan(0)
  })
})

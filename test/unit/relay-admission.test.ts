/** Per-address admission on the relay: the key an address counts under, and the two caps. */
import { describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { AddressAdmission, addressKey } from '../../relay/admission.js'
import type { MultiaddrConnection } from '@libp2p/interface'

/** Just what the gater reads from a raw connection: its remote address and its 'close' event. */
function fakeConn (addr: string): MultiaddrConnection & { closeNow: () => void } {
  const target = new EventTarget()
  return Object.assign(target, {
    remoteAddr: multiaddr(addr),
    closeNow: () => { target.dispatchEvent(new Event('close')) }
  }) as unknown as MultiaddrConnection & { closeNow: () => void }
}

describe('addressKey', () => {
  it('counts IPv4 by address and IPv6 by its /64', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7')
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:db8:1:2::9')).toBe(addressKey('2001:0db8:0001:0002:ffff:0:0:1'))
    expect(addressKey('::ffff:198.51.100.4')).toBe('198.51.100.4')
    expect(addressKey('not an address')).toBeUndefined()
  })
})

describe('AddressAdmission', () => {
  it('refuses a handshake over the per-address cap, and admits again when one ends', () => {
    const admission = new AddressAdmission({ pendingPerAddress: 2, connectionsPerAddress: 100 })
    const gater = admission.gater()
    const a = fakeConn('/ip4/203.0.113.7/tcp/1000/ws')
    const b = fakeConn('/ip4/203.0.113.7/tcp/1001/ws')
    expect(gater.denyInboundConnection!(a)).toBe(false)
    expect(gater.denyInboundConnection!(b)).toBe(false)
    expect(gater.denyInboundConnection!(fakeConn('/ip4/203.0.113.7/tcp/1002/ws'))).toBe(true)
    // Another address has its own share.
    expect(gater.denyInboundConnection!(fakeConn('/ip4/198.51.100.1/tcp/1000/ws'))).toBe(false)
    // One finishes its handshake, one gives up: two free handshake places again.
    expect(gater.denyInboundUpgradedConnection!(undefined as never, a)).toBe(false)
    b.closeNow()
    expect(gater.denyInboundConnection!(fakeConn('/ip4/203.0.113.7/tcp/1003/ws'))).toBe(false)
    expect(gater.denyInboundConnection!(fakeConn('/ip4/203.0.113.7/tcp/1004/ws'))).toBe(false)
    expect(admission.refused).toBe(1)
  })

  it('caps connections held per address, except from loopback', () => {
    const admission = new AddressAdmission({ pendingPerAddress: 100, connectionsPerAddress: 3 })
    const gater = admission.gater()
    const held = [0, 1, 2].map(i => fakeConn(`/ip4/203.0.113.7/tcp/${2000 + i}/ws`))
    for (const c of held) {
      expect(gater.denyInboundConnection!(c)).toBe(false)
      gater.denyInboundUpgradedConnection!(undefined as never, c)
    }
    expect(gater.denyInboundConnection!(fakeConn('/ip4/203.0.113.7/tcp/2003/ws'))).toBe(true)
    held[0].closeNow()
    expect(gater.denyInboundConnection!(fakeConn('/ip4/203.0.113.7/tcp/2004/ws'))).toBe(false)
    for (let i = 0; i < 10; i++) {
      const c = fakeConn(`/ip4/127.0.0.1/tcp/${3000 + i}/ws`)
      expect(gater.denyInboundConnection!(c)).toBe(false)
      gater.denyInboundUpgradedConnection!(undefined as never, c)
    }
  })
})

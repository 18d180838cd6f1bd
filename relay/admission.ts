/**
 * Per-address admission for the relay's inbound connections, as a libp2p connection gater.
 *
 * libp2p caps connections still in their handshake for the whole node
 * (maxIncomingPendingConnections): one address holding that many silent WebSockets, reopened as
 * the relay drops them, locks every new peer out. Here each address gets its own share: at most
 * `pendingPerAddress` connections mid-handshake, and at most `connectionsPerAddress` in all.
 * An IPv6 address counts by its /64 (one host usually owns a whole /64). Loopback addresses are
 * exempt from the total (only the relay's own host can use them, and tests and `npm run bench:scale`
 * run hundreds of peers from 127.0.0.1) but not from the handshake cap.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { logger } from '@libp2p/logger'
import type { ConnectionGater, MultiaddrConnection } from '@libp2p/interface'

const log = logger('p2p-ai-agents:relay:admission')

/** Handshakes in progress from one address (a NAT with many tabs starting at once stays well under it). */
export const DEFAULT_PENDING_PER_ADDRESS = 32
/** Connections held from one non-loopback address (tabs behind one NAT, workers on one host). */
export const DEFAULT_CONNECTIONS_PER_ADDRESS = 256

export interface AdmissionLimits {
  pendingPerAddress?: number
  connectionsPerAddress?: number
}

interface AddressCount {
  pending: number
  total: number
}

/** The key an address is counted under: the IPv4 address, or an IPv6 address's /64; undefined for a non-IP address. */
export function addressKey (host: string): string | undefined {
  if (isIPv4(host)) return host
  if (!isIPv6(host)) return undefined
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)
  if (mapped != null) return mapped[1]
  // Expand '::' so the first four groups are the /64.
  const [head, tail = ''] = host.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = host.includes('::') ? (tail === '' ? [] : tail.split(':')) : []
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
  return groups.slice(0, 4).map(g => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':') + '::/64'
}

function isLoopback (key: string): boolean {
  return key.startsWith('127.') || key === '0:0:0:0::/64'
}

/** Counts inbound connections per address and refuses those over the limits. */
export class AddressAdmission {
  private readonly counts = new Map<string, AddressCount>()
  private readonly pendingPerAddress: number
  private readonly connectionsPerAddress: number
  /** Connections past their handshake, so closing one counts it out of `total` only. */
  private readonly upgraded = new WeakSet<MultiaddrConnection>()
  refused = 0

  constructor (limits: AdmissionLimits = {}) {
    this.pendingPerAddress = limits.pendingPerAddress ?? DEFAULT_PENDING_PER_ADDRESS
    this.connectionsPerAddress = limits.connectionsPerAddress ?? DEFAULT_CONNECTIONS_PER_ADDRESS
  }

  /** Addresses with a connection held or in its handshake now. */
  get addresses (): number {
    return this.counts.size
  }

  /** The gater to pass to createLibp2p. */
  gater (): ConnectionGater {
    return {
      denyInboundConnection: (maConn) => this.denyInbound(maConn),
      denyInboundUpgradedConnection: (_peer, maConn) => { this.onUpgraded(maConn); return false }
    }
  }

  private denyInbound (maConn: MultiaddrConnection): boolean {
    const host = maConn.remoteAddr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
    const key = host == null ? undefined : addressKey(host)
    if (key == null) return false
    const count = this.counts.get(key) ?? { pending: 0, total: 0 }
    if (count.pending >= this.pendingPerAddress || (count.total >= this.connectionsPerAddress && !isLoopback(key))) {
      this.refused++
      log('refusing %a: %d in handshake, %d in all from %s', maConn.remoteAddr, count.pending, count.total, key)
      return true
    }
    count.pending++
    count.total++
    this.counts.set(key, count)
    maConn.addEventListener('close', () => {
      if (!this.upgraded.has(maConn)) count.pending--
      count.total--
      if (count.total === 0) this.counts.delete(key)
    }, { once: true })
    return false
  }

  private onUpgraded (maConn: MultiaddrConnection): void {
    if (this.upgraded.has(maConn)) return
    const host = maConn.remoteAddr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
    const count = host == null ? undefined : this.counts.get(addressKey(host) ?? '')
    if (count == null) return
    this.upgraded.add(maConn)
    count.pending--
  }
}

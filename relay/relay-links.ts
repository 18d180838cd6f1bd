/**
 * Keeps a relay linked to the other relays of the network: those given with --bootstrap and those
 * it hears advertise themselves (kind relay) on the discovery topic. A link that drops is redialled
 * with backoff for as long as the relay runs, so a restarted relay rejoins, and relays that learned
 * of each other through a third stay linked when that third goes away.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { logger } from '@libp2p/logger'
import type { Libp2p, Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { AdvertEvent, AdvertTable } from '../src/core/discovery/table.js'

const log = logger('p2p-ai-agents:relay-links')
/** Relays linked at most: enough for a network of many relays, bounded against hostile adverts. */
const MAX_LINKS = 64

interface Link {
  peerId: string
  addrs: Multiaddr[]
  connected: boolean
  retryDelay: number
  timer?: ReturnType<typeof setTimeout>
  dialing: boolean
}

export class RelayLinks {
  private readonly node: Libp2p
  private readonly links = new Map<string, Link>()
  private stopped = false

  constructor (node: Libp2p) {
    this.node = node
  }

  /** Peer ids of the relays we are linked to now. */
  get connected (): string[] {
    return [...this.links.values()].filter(l => l.connected).map(l => l.peerId)
  }

  get known (): number {
    return this.links.size
  }

  start (bootstrap: string[], table: AdvertTable): void {
    this.node.addEventListener('connection:close', this.onClose)
    this.node.addEventListener('connection:open', this.onOpen)
    table.addEventListener('advert', this.onAdvert)
    for (const b of bootstrap) this.add(multiaddr(b))
  }

  stop (): void {
    this.stopped = true
    this.node.removeEventListener('connection:close', this.onClose)
    this.node.removeEventListener('connection:open', this.onOpen)
    for (const l of this.links.values()) clearTimeout(l.timer)
  }

  private add (...addrs: Multiaddr[]): void {
    const peerId = addrs[0].getComponents().findLast(c => c.name === 'p2p')?.value
    if (peerId == null) throw new Error(`relay address ${addrs[0].toString()} has no /p2p/<peer id>`)
    if (peerId === this.node.peerId.toString()) return
    const known = this.links.get(peerId)
    if (known != null) return
    if (this.links.size >= MAX_LINKS) return
    const link: Link = { peerId, addrs, connected: false, retryDelay: 250, dialing: false }
    this.links.set(peerId, link)
    this.dial(link).catch(err => { log('link to relay %s: %e', link.peerId, err) })
  }

  private async dial (link: Link): Promise<void> {
    if (this.stopped || link.dialing || link.connected) return
    link.dialing = true
    try {
      await this.node.dial(link.addrs, { signal: AbortSignal.timeout(10_000) })
      // The dial may reuse a connection the other relay opened to us: no connection:open then.
      link.connected = true
      link.retryDelay = 250
    } catch (err) {
      log('link to relay %s failed: %e', link.peerId, err)
      this.retry(link)
    } finally {
      link.dialing = false
    }
  }

  private retry (link: Link): void {
    if (this.stopped) return
    clearTimeout(link.timer)
    link.timer = setTimeout(() => { this.dial(link).catch(err => { log('link to relay %s: %e', link.peerId, err) }) }, link.retryDelay)
    link.retryDelay = Math.min(link.retryDelay * 2, 10_000)
  }

  private readonly onAdvert = (evt: Event): void => {
    const { advert } = (evt as CustomEvent<AdvertEvent>).detail
    if (advert.kind !== 'relay' || advert.addrs.length === 0) return
    try {
      this.add(...advert.addrs.map(a => multiaddr(a)))
    } catch (err) {
      log('ignoring a relay advert: %e', err)
    }
  }

  private readonly onOpen = (evt: CustomEvent<Connection>): void => {
    const link = this.links.get(evt.detail.remotePeer.toString())
    if (link != null) link.connected = true
  }

  private readonly onClose = (evt: CustomEvent<Connection>): void => {
    const id = evt.detail.remotePeer.toString()
    const link = this.links.get(id)
    if (link == null || this.node.getConnections(evt.detail.remotePeer).length > 0) return
    link.connected = false
    this.retry(link)
  }
}

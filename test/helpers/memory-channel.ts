/**
 * An in-memory transport for core tests: two connected FrameChannel ends.
 *
 * - Delivery is asynchronous (one `queueMicrotask` per piece) and strictly ordered.
 * - With `seed`, every sent chunk is cut into random pieces of 1..`maxPiece` bytes (a seeded
 *   PRNG, so failures replay) to exercise frame reassembly.
 * - `close(err?)` on one end notifies the other end's on-close callback once every byte sent
 *   before it has been delivered. After closing, the closer receives nothing more.
 * - `vanish()` makes an end disappear without a goodbye (a closed tab, a dropped network):
 *   traffic in both directions is silently dropped and neither side is told.
 */
import type { FrameChannel } from '../../src/core/channel.js'
import { seededRandom } from '../../src/core/random.js'

export interface MemoryChannelOptions {
  /** Seed for splitting chunks into random pieces; omit to deliver each send whole. */
  seed?: number
  /** Largest piece when splitting (default 7 bytes). */
  maxPiece?: number
}

export interface MemoryEnd extends FrameChannel {
  /** Attaches the receiver; bytes that arrived before it are delivered afterwards, in order. */
  onData(receiver: (chunk: Uint8Array) => void): void
  /** Called once when the other end closes (with its error, if it aborted). */
  onClose(callback: (err?: Error) => void): void
  /** This end was closed (locally, or by the other end once its close arrived). */
  readonly closed: boolean
  /** Drops this end silently: nothing is delivered to or from it, nobody is notified. */
  vanish(): void
}

type Inbound = { kind: 'data', chunk: Uint8Array } | { kind: 'close', err?: Error }

/** Resolves once every queued microtask (and those they queue) has run. Not a sleep: no time passes. */
export async function flushMicrotasks (): Promise<void> {
  await new Promise<void>(resolve => { setImmediate(resolve) })
}

class End implements MemoryEnd {
  peer!: End
  private receiver?: (chunk: Uint8Array) => void
  private closeCallback?: (err?: Error) => void
  private readonly inbox: Inbound[] = []
  private draining = false
  private isClosed = false
  private gone = false
  private readonly split?: () => number
  private readonly maxPiece: number

  constructor (options: MemoryChannelOptions) {
    if (options.seed != null) this.split = seededRandom(options.seed)
    this.maxPiece = Math.max(1, options.maxPiece ?? 7)
  }

  get closed (): boolean {
    return this.isClosed
  }

  send (bytes: Uint8Array): void {
    if (this.gone || this.peer.gone) return // nobody there: dropped without a word
    if (this.isClosed) throw new Error('memory channel is closed')
    const copy = bytes.slice() // the sender may reuse its buffer
    if (this.split == null) {
      this.peer.enqueue({ kind: 'data', chunk: copy })
      return
    }
    let offset = 0
    while (offset < copy.byteLength) {
      const size = 1 + Math.floor(this.split() * this.maxPiece)
      this.peer.enqueue({ kind: 'data', chunk: copy.subarray(offset, offset + size) })
      offset += size
    }
  }

  close (err?: Error): void {
    if (this.isClosed) return
    this.isClosed = true
    this.inbox.length = 0
    if (!this.gone && !this.peer.gone) this.peer.enqueue({ kind: 'close', err })
  }

  vanish (): void {
    this.gone = true
    this.inbox.length = 0
    this.peer.inbox.length = 0
  }

  onData (receiver: (chunk: Uint8Array) => void): void {
    this.receiver = receiver
    this.schedule()
  }

  onClose (callback: (err?: Error) => void): void {
    this.closeCallback = callback
  }

  private enqueue (item: Inbound): void {
    if (this.gone || (this.isClosed && item.kind === 'data')) return
    this.inbox.push(item)
    this.schedule()
  }

  private schedule (): void {
    if (this.draining || this.inbox.length === 0) return
    this.draining = true
    queueMicrotask(() => { this.deliverOne() })
  }

  /** One inbound item per microtask, so other microtasks interleave as they would on a real stream. */
  private deliverOne (): void {
    this.draining = false
    const item = this.inbox[0]
    if (item == null || this.gone) return
    if (item.kind === 'data' && this.receiver == null) return // resumes when onData attaches a receiver
    this.inbox.shift()
    try {
      if (item.kind === 'data') {
        this.receiver!(item.chunk)
      } else if (!this.isClosed) {
        this.isClosed = true
        this.closeCallback?.(item.err)
      }
    } finally {
      this.schedule()
    }
  }
}

/** Two connected ends: what one sends, the other receives. */
export function memoryChannelPair (options: MemoryChannelOptions = {}): [MemoryEnd, MemoryEnd] {
  const a = new End(options)
  const b = new End(options.seed != null ? { ...options, seed: options.seed ^ 0x5bd1e995 } : options)
  a.peer = b
  b.peer = a
  return [a, b]
}

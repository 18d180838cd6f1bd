/**
 * Unsigned-varint length-prefixed framing, as libp2p protocols use it, and the accounting of
 * frames that have started to arrive but are not finished (how long they may take, how many bytes
 * one peer may hold in them).
 */
import { TaskError } from './errors.js'
import { systemClock } from './clock.js'
import { DEFAULT_UNFINISHED_FRAME_LIMITS } from './limits.js'
import type { Clock } from './clock.js'
import type { UnfinishedFrameLimits } from './limits.js'

/** Prepends the varint length of `body`. */
export function lengthPrefixed (body: Uint8Array): Uint8Array {
  const prefix: number[] = []
  let n = body.byteLength
  while (n >= 0x80) {
    prefix.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  prefix.push(n)
  const out = new Uint8Array(prefix.length + body.byteLength)
  out.set(prefix, 0)
  out.set(body, prefix.length)
  return out
}

function bad (message: string): TaskError {
  return new TaskError('bad-request', message)
}

/** How far a reader is through the frame it is reading. */
export interface FrameProgress {
  /** Bytes held for the unfinished frame (0 between frames). */
  readonly pending: number
  /** The unfinished frame's size, prefix included, once its prefix has arrived. */
  readonly frameBytes: number | undefined
  /** Frames completed so far. */
  readonly completed: number
}

/**
 * Reassembles length-prefixed bodies from arbitrary chunks. Throws a `bad-request` TaskError
 * as soon as a prefix announces more than `maxBytes`, before buffering that body.
 */
export class LengthPrefixedReader implements FrameProgress {
  private chunks: Uint8Array[] = []
  private buffered = 0
  private readonly maxBytes: number
  private unfinishedBytes: number | undefined
  private frames = 0

  constructor (maxBytes: number) {
    this.maxBytes = maxBytes
  }

  /** Adds received bytes and returns every complete body they finish. */
  push (chunk: Uint8Array): Uint8Array[] {
    if (chunk.byteLength > 0) {
      this.chunks.push(chunk)
      this.buffered += chunk.byteLength
    }
    const bodies: Uint8Array[] = []
    for (;;) {
      const header = this.readHeader()
      this.unfinishedBytes = header != null ? header.headerBytes + header.length : undefined
      if (header == null || this.buffered < header.headerBytes + header.length) break
      this.consume(header.headerBytes)
      bodies.push(this.take(header.length))
      this.frames++
    }
    return bodies
  }

  /** Bytes held for an incomplete body (0 between bodies). */
  get pending (): number {
    return this.buffered
  }

  get frameBytes (): number | undefined {
    return this.unfinishedBytes
  }

  get completed (): number {
    return this.frames
  }

  private readHeader (): { length: number, headerBytes: number } | undefined {
    let value = 0
    let scale = 1
    let i = 0
    for (const chunk of this.chunks) {
      for (const byte of chunk) {
        value += (byte & 0x7f) * scale
        i++
        if ((byte & 0x80) === 0) {
          if (value > this.maxBytes) throw bad(`frame of ${value} bytes exceeds the ${this.maxBytes}-byte limit`)
          if (value === 0) throw bad('empty frame')
          return { length: value, headerBytes: i }
        }
        scale *= 0x80
        if (i >= 5) throw bad('frame length prefix is too long')
      }
    }
    return undefined
  }

  private consume (n: number): void {
    while (n > 0) {
      const head = this.chunks[0]
      if (head.byteLength <= n) {
        this.chunks.shift()
        n -= head.byteLength
        this.buffered -= head.byteLength
      } else {
        this.chunks[0] = head.subarray(n)
        this.buffered -= n
        n = 0
      }
    }
  }

  private take (n: number): Uint8Array {
    const head = this.chunks[0]
    if (head.byteLength >= n) {
      const out = head.subarray(0, n)
      this.consume(n)
      return out
    }
    const out = new Uint8Array(n)
    let offset = 0
    while (offset < n) {
      const c = this.chunks[0]
      const part = Math.min(c.byteLength, n - offset)
      out.set(c.subarray(0, part), offset)
      offset += part
      this.consume(part)
    }
    return out
  }
}

/** One stream's view of UnfinishedFrames: report its reader's progress after each push, close it with the stream. */
export interface FrameWatch {
  /**
   * Takes the stream's progress after a push. Throws a TaskError when the bytes its peer (or all
   * peers) now hold in unfinished frames pass their cap: refuse the stream.
   */
  update(progress: FrameProgress): void
  /** The stream is gone: its bytes and its deadline are released. */
  close(): void
}

interface Watched {
  peer: string
  expire: (err: TaskError) => void
  held: number
  completed: number
  frameBytes?: number
  startedAt?: number
  timer?: unknown
  closed: boolean
}

/**
 * The bytes remote peers hold in unfinished frames, per peer across its streams and in all, and
 * the deadline of each stream's unfinished frame (see UnfinishedFrameLimits). Pure accounting:
 * the adapter reports each stream's progress and resets a stream whose deadline passes.
 */
export class UnfinishedFrames {
  private readonly limits: UnfinishedFrameLimits
  private readonly clock: Clock
  private readonly byPeer = new Map<string, number>()
  private total = 0
  /** Streams refused for holding too much (at their start or mid-frame), and streams whose frame missed its deadline. */
  readonly stats = { refused: 0, expired: 0 }

  constructor (limits: Partial<UnfinishedFrameLimits> = {}, clock: Clock = systemClock) {
    this.limits = { ...DEFAULT_UNFINISHED_FRAME_LIMITS, ...limits }
    this.clock = clock
  }

  /** Bytes `peer` holds in unfinished frames now. */
  heldBy (peer: string): number {
    return this.byPeer.get(peer) ?? 0
  }

  /** Bytes all peers hold in unfinished frames now. */
  get held (): number {
    return this.total
  }

  /** Whether `peer` may open another stream: it (and everyone) holds less than the cap. A refusal counts in `stats`. */
  admit (peer: string): boolean {
    if (this.heldBy(peer) < this.limits.maxBytesPerPeer && this.total < this.limits.maxBytesTotal) return true
    this.stats.refused++
    return false
  }

  /** Watches one stream of `peer`; `expire` is called once if its unfinished frame misses its deadline. */
  watch (peer: string, expire: (err: TaskError) => void): FrameWatch {
    const w: Watched = { peer, expire, held: 0, completed: 0, closed: false }
    return {
      update: (progress) => { this.update(w, progress) },
      close: () => { this.release(w) }
    }
  }

  private update (w: Watched, p: FrameProgress): void {
    if (w.closed) return
    this.account(w, p.pending)
    if (p.pending === 0) {
      this.disarm(w)
      w.startedAt = undefined
    } else if (w.startedAt == null || p.completed !== w.completed) {
      // a new frame began in this push: its time runs from now
      w.startedAt = this.clock.now()
      w.frameBytes = p.frameBytes
      this.arm(w)
    } else if (p.frameBytes !== w.frameBytes) {
      // its length prefix just completed: the deadline grows with the size it announced
      w.frameBytes = p.frameBytes
      this.arm(w)
    }
    w.completed = p.completed
    const peerHeld = this.heldBy(w.peer)
    if (peerHeld > this.limits.maxBytesPerPeer) {
      this.release(w)
      this.stats.refused++
      throw new TaskError('bad-request', `this peer holds ${mib(peerHeld)} in unfinished frames, over its ${mib(this.limits.maxBytesPerPeer)} cap: stream refused`)
    }
    if (this.total > this.limits.maxBytesTotal) {
      this.release(w)
      this.stats.refused++
      throw new TaskError('busy', `unfinished frames hold ${mib(this.total)} on this worker, over its ${mib(this.limits.maxBytesTotal)} cap: stream refused`)
    }
  }

  private account (w: Watched, held: number): void {
    const delta = held - w.held
    w.held = held
    this.total += delta
    const peerHeld = this.heldBy(w.peer) + delta
    if (peerHeld === 0) this.byPeer.delete(w.peer)
    else this.byPeer.set(w.peer, peerHeld)
  }

  /** The time a frame of `frameBytes` may take (the floor alone while its size is unknown). */
  private allowanceMs (frameBytes: number | undefined): number {
    return this.limits.floorMs + (frameBytes ?? 0) / this.limits.minBytesPerSecond * 1000
  }

  private arm (w: Watched): void {
    this.disarm(w)
    const startedAt = w.startedAt ?? this.clock.now()
    const allowed = this.allowanceMs(w.frameBytes)
    w.timer = this.clock.setTimeout(() => {
      w.timer = undefined
      const held = w.held
      this.release(w)
      this.stats.expired++
      const size = w.frameBytes != null ? `a ${mib(w.frameBytes)} frame` : 'a frame'
      w.expire(new TaskError('timeout', `${size} was not finished within ${(allowed / 1000).toFixed(1)} s of its first byte (${mib(held)} received; frames get ${this.limits.floorMs / 1000} s plus 1 s per ${mib(this.limits.minBytesPerSecond)}): stream reset`))
    }, startedAt + allowed - this.clock.now())
  }

  private disarm (w: Watched): void {
    if (w.timer != null) this.clock.clearTimeout(w.timer)
    w.timer = undefined
  }

  private release (w: Watched): void {
    if (w.closed) return
    w.closed = true
    this.disarm(w)
    this.account(w, 0)
  }
}

function mib (bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`
}

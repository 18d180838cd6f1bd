/** Unsigned-varint length-prefixed framing, as libp2p protocols use it. */
import { TaskError } from './errors.js'

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

/**
 * Reassembles length-prefixed bodies from arbitrary chunks. Throws a `bad-request` TaskError
 * as soon as a prefix announces more than `maxBytes`, before buffering that body.
 */
export class LengthPrefixedReader {
  private chunks: Uint8Array[] = []
  private buffered = 0
  private readonly maxBytes: number

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
      if (header == null || this.buffered < header.headerBytes + header.length) break
      this.consume(header.headerBytes)
      bodies.push(this.take(header.length))
    }
    return bodies
  }

  /** Bytes held for an incomplete body (0 between bodies). */
  get pending (): number {
    return this.buffered
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

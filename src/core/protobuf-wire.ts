/**
 * Protobuf's wire format at the byte level, for the code that edits ONNX models without decoding
 * them (src/models/onnx-edit.ts, src/ocr/fuse-graph.ts): a model's weights are most of its bytes,
 * and copying fields byte for byte keeps an edit deterministic and cheap.
 */

/** The varint at `at` (up to 10 bytes; values past 2^53 lose precision) and where the next field starts; undefined when the bytes end inside it. */
export function readVarint (b: Uint8Array, at: number): { value: number, next: number } | undefined {
  let value = 0
  let scale = 1
  for (let i = at; i < b.length && i < at + 10; i++) {
    value += (b[i] & 0x7f) * scale
    scale *= 128
    if ((b[i] & 0x80) === 0) return { value, next: i + 1 }
  }
  return undefined
}

/** One field of a message: its number, wire type and whole bytes; the body of a length-delimited one, the value of a varint. */
export interface WireField { field: number, wire: number, start: number, end: number, body?: { start: number, end: number }, varint?: number }

/** The fields of the message in `b[start, end)`; `fail` makes the error for bytes that are not one. */
export function wireFields (b: Uint8Array, start: number, end: number, fail: (message: string) => Error): WireField[] {
  const varint = (at: number): { value: number, next: number } => {
    const v = readVarint(b, at)
    if (v == null) throw fail('truncated varint')
    return v
  }
  const out: WireField[] = []
  let at = start
  while (at < end) {
    const begin = at
    const key = varint(at)
    at = key.next
    const field = Math.floor(key.value / 8)
    const wire = key.value & 7
    switch (wire) {
      case 0: {
        const v = varint(at)
        at = v.next
        out.push({ field, wire, start: begin, end: at, varint: v.value })
        break
      }
      case 1: at += 8; out.push({ field, wire, start: begin, end: at }); break
      case 5: at += 4; out.push({ field, wire, start: begin, end: at }); break
      case 2: {
        const len = varint(at)
        at = len.next + len.value
        if (at > end) throw fail('a field runs past its message')
        out.push({ field, wire, start: begin, end: at, body: { start: len.next, end: at } })
        break
      }
      default: throw fail(`wire type ${wire}`)
    }
  }
  if (at !== end) throw fail('a field runs past its message')
  return out
}

/** Writes fields (or raw bytes copied from another message) and joins them once at the end. */
export class WireWriter {
  private readonly parts: Uint8Array[] = []
  private size = 0

  raw (b: Uint8Array): this {
    this.parts.push(b)
    this.size += b.byteLength
    return this
  }

  /** Negative numbers as protobuf writes an int64: ten bytes of two's complement. */
  varint (n: number): this {
    const bytes: number[] = []
    if (n < 0 || !Number.isSafeInteger(n)) {
      let v = BigInt.asUintN(64, BigInt(n))
      while (v >= 0x80n) {
        bytes.push(Number(v & 0x7fn) | 0x80)
        v >>= 7n
      }
      bytes.push(Number(v))
    } else {
      while (n >= 0x80) {
        bytes.push((n % 0x80) | 0x80)
        n = Math.floor(n / 0x80)
      }
      bytes.push(n)
    }
    return this.raw(Uint8Array.from(bytes))
  }

  tag (field: number, wire: 0 | 2 | 5): this {
    return this.varint(field * 8 + wire)
  }

  int (field: number, n: number): this {
    return this.tag(field, 0).varint(n)
  }

  bytesField (field: number, b: Uint8Array): this {
    return this.tag(field, 2).varint(b.byteLength).raw(b)
  }

  string (field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s))
  }

  float (field: number, x: number): this {
    const b = new Uint8Array(4)
    new DataView(b.buffer).setFloat32(0, x, true)
    return this.tag(field, 5).raw(b)
  }

  message (field: number, build: (w: WireWriter) => void): this {
    const inner = new WireWriter()
    build(inner)
    return this.bytesField(field, inner.finish())
  }

  finish (): Uint8Array {
    const out = new Uint8Array(this.size)
    let at = 0
    for (const p of this.parts) {
      out.set(p, at)
      at += p.byteLength
    }
    return out
  }
}

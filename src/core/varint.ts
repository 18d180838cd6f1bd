/** Protobuf's unsigned varint, read where the model readers walk ONNX bytes field by field. */

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

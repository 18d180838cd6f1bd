/** NumPy .npy reading and writing, against files as numpy 2.4 np.save writes them. */
import { describe, expect, it } from 'vitest'
import { DTYPES, DTYPE_BYTES, elementCount } from '../../src/core/tensor.js'
import type { WireTensor } from '../../src/core/tensor.js'
import { parseNpy, writeNpy } from '../../src/models/npy.js'
import { failure } from '../helpers/errors.js'

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], b => parseInt(b, 16))

const ascii = (s: string): number[] => [...s].map(c => c.charCodeAt(0))

/** A .npy file: magic, version, header length, the dict, numpy's padding spaces, '\n', the data. */
function npy (version: 1 | 2 | 3, dict: string, spaces: number, dataHex: string): Uint8Array {
  const header = dict + ' '.repeat(spaces) + '\n'
  const length = [header.length & 0xff, header.length >> 8, ...(version === 1 ? [] : [0, 0])]
  return Uint8Array.from([0x93, ...ascii('NUMPY'), version, 0, ...length, ...ascii(header), ...hex(dataHex)])
}

// Byte for byte what `np.save` writes (numpy ≥ 1.24 pads the header to grow the first axis in place).
const F32_2x3 = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 58, '000000000000803f0000004000004040000080400000a040')
const BOOL_SCALAR = npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", 62, '01')
const F16_2 = npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 60, '003e00c0')
const U16_0x4 = npy(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (0, 4), }", 58, '')

describe('parseNpy', () => {
  it('reads the numpy fixtures', () => {
    expect(F32_2x3.length).toBe(152)
    const t = parseNpy(F32_2x3, 'x')
    expect(t).toMatchObject({ name: 'x', dtype: 'float32', dims: [2, 3] })
    expect([...new Float32Array(t.data.buffer)]).toEqual([0, 1, 2, 3, 4, 5])
    expect(parseNpy(BOOL_SCALAR, 'b')).toEqual({ name: 'b', dtype: 'bool', dims: [], data: Uint8Array.of(1) })
    expect(parseNpy(F16_2, 'h')).toEqual({ name: 'h', dtype: 'float16', dims: [2], data: hex('003e00c0') })
    expect(parseNpy(U16_0x4, 'e')).toEqual({ name: 'e', dtype: 'uint16', dims: [0, 4], data: new Uint8Array(0) })
  })

  it('reads format versions 2 and 3 (4-byte header length)', () => {
    const v2 = npy(2, "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }", 58, '0100000000000000ffffffffffffffff')
    expect([...new BigUint64Array(parseNpy(v2, 'u').data.buffer)]).toEqual([1n, 2n ** 64n - 1n])
    const v3 = npy(3, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 58, 'fbffffffffffffff0000000000000040')
    expect([...new BigInt64Array(parseNpy(v3, 'i').data.buffer)]).toEqual([-5n, 2n ** 62n])
  })

  it('converts big-endian data to little-endian', () => {
    const i16 = parseNpy(npy(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }", 60, '000000010002'), 'i')
    expect(i16).toMatchObject({ dtype: 'int16', dims: [3] })
    expect([...new Int16Array(i16.data.buffer)]).toEqual([0, 1, 2])
    const f64 = parseNpy(npy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", 60, '3ff8000000000000bfd0000000000000'), 'f')
    expect([...new Float64Array(f64.data.buffer)]).toEqual([1.5, -0.25])
  })

  it("accepts '=' and '|' byte orders, double quotes, odd spacing and Python 2 long dims", () => {
    const t = parseNpy(npy(1, '{"shape":(2L,),"descr":"=i4","fortran_order":False}', 0, '0100000002000000'), 't')
    expect([...new Int32Array(t.data.buffer)]).toEqual([1, 2])
    expect(parseNpy(npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1), }", 0, 'ff'), 'u').data).toEqual(Uint8Array.of(255))
  })

  it('rejects what it cannot read, saying why', () => {
    const fortran = npy(1, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", 59, '000000000300000001000000040000000200000005000000')
    expect(failure(() => parseNpy(fortran, 'x'))).toMatch(/bad-request: x: .*Fortran order/)
    const complex = npy(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 60, '0000803f000000000000004000000000')
    expect(failure(() => parseNpy(complex, 'x'))).toMatch(/unsupported \.npy dtype '<c8'/)
    expect(failure(() => parseNpy(npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 0, '00000000'), 'x'))).toMatch(/structured/)
    expect(failure(() => parseNpy(npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 0, '00'), 'x'))).toMatch(/unsupported \.npy dtype/)
    expect(failure(() => parseNpy(F32_2x3.subarray(0, 150), 'x'))).toMatch(/data is 22 bytes, expected 24/)
    expect(failure(() => parseNpy(Uint8Array.from([...F32_2x3, 0]), 'x'))).toMatch(/data is 25 bytes, expected 24/)
    expect(failure(() => parseNpy(F32_2x3.subarray(0, 100), 'x'))).toMatch(/truncated/)
    expect(failure(() => parseNpy(new Uint8Array(0), 'x'))).toMatch(/not a \.npy file/)
    expect(failure(() => parseNpy(new TextEncoder().encode('{"dims": [1], "data": [1]}'), 'x'))).toMatch(/not a \.npy file/)
    const v9 = Uint8Array.from(F32_2x3)
    v9[6] = 9
    expect(failure(() => parseNpy(v9, 'x'))).toMatch(/unsupported \.npy version 9/)
    expect(failure(() => parseNpy(npy(1, "{'descr': '<f4', 'shape': (1,)}", 0, '00000000'), 'x'))).toMatch(/fortran_order/)
    expect(failure(() => parseNpy(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0, ''), 'x'))).toMatch(/malformed/)
    expect(failure(() => parseNpy(npy(1, "{'descr': '<f4' 'fortran_order': False}", 0, ''), 'x'))).toMatch(/malformed/)
    expect(failure(() => parseNpy(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", 0, ''), 'x'))).toMatch(/expected/)
  })
})

describe('writeNpy', () => {
  it('writes exactly what numpy writes', () => {
    expect(writeNpy(parseNpy(F32_2x3, 'x'))).toEqual(F32_2x3)
    expect(writeNpy(parseNpy(BOOL_SCALAR, 'x'))).toEqual(BOOL_SCALAR)
    expect(writeNpy(parseNpy(F16_2, 'x'))).toEqual(F16_2)
    expect(writeNpy(parseNpy(U16_0x4, 'x'))).toEqual(U16_0x4)
  })

  it.each(DTYPES)('round-trips %s in every rank', dtype => {
    for (const dims of [[], [5], [2, 3], [0, 4], [1, 2, 1, 3]]) {
      const data = Uint8Array.from({ length: elementCount(dims) * DTYPE_BYTES[dtype] }, (_, i) => (i * 37 + 11) & (dtype === 'bool' ? 1 : 0xff))
      const t: WireTensor = { name: 't', dtype, dims, data }
      const file = writeNpy(t)
      expect((file.length - data.length) % 64).toBe(0)
      expect(parseNpy(file, 't')).toEqual(t)
    }
  })

  it('refuses a tensor whose bytes do not match its dims', () => {
    expect(failure(() => writeNpy({ name: 't', dtype: 'int32', dims: [2], data: new Uint8Array(7) }))).toMatch(/7 bytes/)
  })
})

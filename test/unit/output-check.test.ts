import { describe, expect, it } from 'vitest'
import { outputProblem } from '../../src/core/output-check.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import { builtinModel } from '../../src/models/catalog.js'

const digits = builtinModel('digits')
const input = (batch: number) => fromTypedArray('input', 'float32', [batch, 1, 28, 28], new Float32Array(batch * 784))
const f32 = (name: string, dims: number[]) => fromTypedArray(name, 'float32', dims, new Float32Array(dims.reduce((a, b) => a * b, 1)))

describe('outputProblem', () => {
  it('accepts what the model declares', () => {
    expect(outputProblem(digits, [input(1)], [], [f32('logits', [1, 10]), f32('probs', [1, 10])])).toBeUndefined()
    expect(outputProblem(digits, [input(3)], ['probs'], [f32('probs', [3, 10])])).toBeUndefined()
  })

  it('refuses missing, extra, repeated, retyped and reshaped outputs (the attack run\'s lies)', () => {
    expect(outputProblem(digits, [input(1)], [], [f32('logits', [1, 10])])).toMatch(/expected 2 output/)
    expect(outputProblem(digits, [input(1)], ['probs'], [f32('probs', [1, 3])])).toMatch(/shape \[1,3\]/)
    expect(outputProblem(digits, [input(1)], ['probs'], [f32('probs', [2, 10])])).toMatch(/shape|batch/)
    expect(outputProblem(digits, [input(1)], ['probs'], [f32('logits', [1, 10])])).toMatch(/appears 0 times/)
    expect(outputProblem(digits, [input(1)], ['probs'], [fromTypedArray('probs', 'int32', [1, 10], new Int32Array(10))])).toMatch(/int32/)
    expect(outputProblem(digits, [input(1)], ['nope'], [f32('nope', [1, 10])])).toMatch(/declares no output/)
    expect(outputProblem(digits, [input(1)], [], [f32('probs', [1, 10]), f32('probs', [1, 10])])).toMatch(/appears (0|2) times/)
  })

  it('binds symbolic dims to the inputs and keeps them consistent across outputs', () => {
    const det = builtinModel('ocr-det')
    const x = f32('x', [1, 3, 64, 96])
    expect(outputProblem(det, [x], [], [f32('sigmoid_0.tmp_0', [1, 1, 64, 96])])).toBeUndefined()
    expect(outputProblem(det, [x], [], [f32('sigmoid_0.tmp_0', [1, 1, 8, 8])])).toMatch(/height/)
    const model = { inputs: [], outputs: [{ name: 'a', dtype: 'float32', dims: ['n'] }, { name: 'b', dtype: 'float32', dims: ['n'] }] }
    expect(outputProblem(model, [], [], [f32('a', [2]), f32('b', [3])])).toMatch(/"n"/)
    expect(outputProblem({ inputs: [], outputs: [{ name: 'a', dtype: 'float32', dims: [], rankKnown: false }] }, [], [], [f32('a', [7, 7])])).toBeUndefined()
  })
})

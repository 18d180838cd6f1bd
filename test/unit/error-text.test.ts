/**
 * Task errors in words: the texts are what onnxruntime-node itself throws (run through the worker's
 * own OrtRunner, as a remote peer would), never hand-written imitations of them.
 */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { OrtRunner } from '../../src/runtime/ort-runner.js'
import { TaskError } from '../../src/core/errors.js'
import { describeTaskError, stripBuildPaths } from '../../src/core/error-text.js'
import { peerName } from '../../src/core/peer-name.js'
import { sha256Hex } from '../../src/core/hash.js'
import { fromTypedArray } from '../../src/core/tensor.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { dynamicAddMul } from '../../src/models/test-models.js'
import { MODELS_DIR } from '../../src/node/node-peer.js'
import type { OrtModule } from '../../src/runtime/ort-runner.js'
import type { ModelRef } from '../../src/core/task-types.js'
import type { WireTensor } from '../../src/core/tensor.js'
import type { TaskErrorCode } from '../../src/core/errors.js'

const PEER = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
const NAME = peerName(PEER)

/** The TaskError a real OrtRunner throws for these inputs. */
async function ortFailure (bytes: Uint8Array, ref: ModelRef, inputs: WireTensor[]): Promise<TaskError> {
  const runner = new OrtRunner(ort as unknown as OrtModule, async () => bytes, { backend: 'test', threads: 1 })
  try {
    await runner.execute({ taskId: 't', jobId: 'j', model: ref, inputs, timeoutMs: 0, outputNames: [] })
  } catch (err) {
    expect(err).toBeInstanceOf(TaskError)
    return err as TaskError
  } finally {
    await runner.release(ref.sha256)
  }
  throw new Error('expected onnxruntime to refuse the inputs')
}

const digits = builtinModel('digits')
const digitBytes = async (): Promise<Uint8Array> => new Uint8Array(await readFile(MODELS_DIR + digits.file))
const addMul = dynamicAddMul()
const addMulRef = async (): Promise<ModelRef> => ({ sha256: await sha256Hex(addMul), size: addMul.byteLength, name: 'add_mul' })
const f32 = (name: string, dims: number[]): WireTensor => fromTypedArray(name, 'float32', dims, new Float32Array(dims.reduce((a, b) => a * b, 1)))

describe('describeTaskError with onnxruntime-node\'s own messages', () => {
  it('a fixed axis sent wrong: names the peer, the input, the shape expected and the shape sent; raw text in details', async () => {
    const inputs = [f32('input', [2, 1, 28, 27])]
    const err = await ortFailure(await digitBytes(), modelRef(digits), inputs)
    expect(err.message).toContain('Got invalid dimensions for input: input')
    const text = describeTaskError(err, PEER, { inputs })
    expect(text.headline).toBe(`peer ${NAME} (…${PEER.slice(-6)}) could not run the model: input 'input' has the wrong shape (expected [2, 1, 28, 28], got [2, 1, 28, 27])`)
    expect(text.details).toBe(err.message)
    // Without the inputs sent, the axes at fault.
    expect(describeTaskError(err, PEER).headline).toContain("input 'input' has the wrong shape (axis 3 must be 28, got 27)")
  })

  it('a wrong rank and a wrong dtype are restated', async () => {
    const rank = await ortFailure(await digitBytes(), modelRef(digits), [f32('input', [784])])
    expect(describeTaskError(rank, PEER).headline).toBe(`peer ${NAME} (…${PEER.slice(-6)}) could not run the model: input 'input' has the wrong number of dimensions (expected 4, got 1)`)
    const dtype = await ortFailure(addMul, await addMulRef(), [fromTypedArray('a', 'int32', [1, 2], new Int32Array(2)), f32('b', [1, 2])])
    expect(describeTaskError(dtype, 'self').headline).toBe('this tab could not run the model: an input has the wrong type (expected float32, got int32)')
  })

  it('shapes that do not broadcast: no build path or C++ signature in the headline, all of it in details', async () => {
    const err = await ortFailure(addMul, await addMulRef(), [f32('a', [2, 2]), f32('b', [1, 3])])
    // onnxruntime's raw text carries its source path and a C++ signature.
    expect(err.message).toMatch(/\/onnxruntime[^ ]*\.h:\d+/)
    const text = describeTaskError(err, PEER)
    expect(text.headline).toMatch(new RegExp(`^peer ${NAME} .*could not run the model: the inputs' shapes do not fit together: a dimension of 2 meets one of 3 in (Add|Mul) node '(sum|product)'$`))
    expect(text.headline).not.toMatch(/\.h:|::|\//)
    expect(text.details).toBe(err.message)
  })

  it('onnxruntime-web\'s wording of the same error (as Chromium gave it in test/e2e/inputs.test.ts): no node, a build path', () => {
    const raw = 'onnxruntime: failed to call OrtRun(). ERROR_CODE: 1, ERROR_MESSAGE: /mnt/azure_nvme_temp/_work/1/s/onnxruntime/core/providers/cpu/math/element_wise_ops.h:563 void onnxruntime::BroadcastIterator::Init(ptrdiff_t, ptrdiff_t) axis == 1 || axis == largest was false. Attempting to broadcast an axis by a dimension other than 1. 2 by 3'
    expect(describeTaskError({ code: 'inference-failed', message: raw }, PEER)).toEqual({
      headline: `peer ${NAME} (…${PEER.slice(-6)}) could not run the model: the inputs' shapes do not fit together: a dimension of 2 meets one of 3`,
      details: raw
    })
  })

  it('a file that is not a model', async () => {
    const junk = new Uint8Array([1, 2, 3, 4, 5])
    const err = await ortFailure(junk, { sha256: await sha256Hex(junk), size: junk.byteLength, name: 'junk' }, [f32('x', [1])])
    expect(describeTaskError(err, PEER).headline).toMatch(/could not run the model: the model file is not a valid ONNX model$/)
  })
})

describe('describeTaskError for every code', () => {
  const codes: TaskErrorCode[] = ['bad-request', 'model-unavailable', 'busy', 'inference-failed', 'timeout', 'model-hash-mismatch', 'peer-gone', 'no-peer']
  it.each(codes)('%s: a headline in words naming the peer, no build path', (code) => {
    const raw = 'Status Message: /home/runner/work/onnxruntime/onnxruntime/core/framework/execution_frame.cc:171 onnxruntime::common::Status onnxruntime::IExecutionFrame::GetOrCreateNodeOutputMLValue(int, int, const TensorShape*, OrtValue*&, const Node&) shape mismatch'
    const text = describeTaskError({ code, message: raw }, PEER)
    expect(text.headline).not.toMatch(/\/home|\.cc|::/)
    if (code !== 'no-peer') expect(text.headline).toContain(NAME)
    expect(text.details).toBe(raw)
  })

  it('messages already in words are kept in the headline, with no details to repeat them', () => {
    expect(describeTaskError({ code: 'bad-request', message: 'missing input(s): b' }, PEER))
      .toEqual({ headline: `peer ${NAME} (…${PEER.slice(-6)}) refused the task: missing input(s): b` })
    expect(describeTaskError({ code: 'no-peer', message: 'no worker has advertised yet: open the app in another tab or device' }))
      .toEqual({ headline: 'no peer can take the task: no worker has advertised yet: open the app in another tab or device' })
    expect(describeTaskError({ code: 'busy', message: 'queue full' }).headline).toBe('a peer is busy; try again or choose another peer')
  })

  it('strips source paths and signatures', () => {
    expect(stripBuildPaths('at /onnxruntime_src/onnxruntime/core/providers/cpu/math/element_wise_ops.h:563 void onnxruntime::BroadcastIterator::Init(ptrdiff_t, ptrdiff_t) axis == 1 was false'))
      .toBe('at axis == 1 was false')
    expect(stripBuildPaths('C:\\a\\_work\\1\\s\\onnxruntime\\core\\session\\inference_session.cc:1234 failed')).toBe('failed')
  })

  // A remote peer writes the error message: every regex here must take time linear in what it is
  // given, and what it is given is capped. The old path regex was cubic on a run of slashes (1024
  // of them took ~0.5 s); 100,000 characters of each shape below would take hours there, so
  // finishing within vitest's default timeout is the proof, not a measured duration.
  it('handles adversarial messages of 100,000 characters (no catastrophic backtracking)', () => {
    const n = 100_000
    const hostile = ['/'.repeat(n), '\\'.repeat(n), '/a'.repeat(n / 2), 'a'.repeat(n), 'a '.repeat(n / 2), `C:${'/x'.repeat(n / 2)}`, `${'/a'.repeat(n / 2)}.h`, `${'std::a'.repeat(n / 6)}(`]
    for (const message of hostile) {
      for (const code of ['inference-failed', 'bad-request', 'no-peer'] as const) {
        const text = describeTaskError({ code, message }, PEER)
        expect(text.headline.length).toBeLessThan(400)
      }
      expect(stripBuildPaths(message).length).toBeLessThanOrEqual(n)
    }
  })

  it('still strips a build path deep in a long line', () => {
    const path = `/onnxruntime_src/${'dir/'.repeat(40)}element_wise_ops.h:563`
    expect(stripBuildPaths(`at ${path} axis == 1 was false`)).toBe('at axis == 1 was false')
  })
})

/**
 * A hostile requester that sends a task for a model it "holds", then serves the model as a header
 * and a byte a second: the worker gives up on the transfer (minimum rate, model-unavailable)
 * instead of holding its only slot, and the next task runs.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { MODEL_PROTOCOL } from '../../src/core/model-transfer/codec.js'
import { ModelReply } from '../../src/core/model-transfer/pb/model.js'
import { lengthPrefixed } from '../../src/core/framing.js'
import { DEFAULT_TRANSFER_LIMITS } from '../../src/core/model-transfer/limits.js'
import { Cleanup, WAIT_MS, digitsTask, heldOutDigits, rejectionOf, startBarePeer, startPeer, startRelay, waitForDirect, withTimeout } from './helpers.js'

describe('model transfer from a holder that trickles', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  it('the worker gives up with model-unavailable and its only slot takes the next task', async () => {
    const relay = await startRelay(cleanup)
    const worker = await startPeer(cleanup, relay.addr, { queue: { slots: 1, maxQueued: 0 } })
    const hostile = await startBarePeer(cleanup, relay.addr, 'trickling requester')
    const size = 1024 * 1024
    let trickled = 0
    await hostile.unhandle(MODEL_PROTOCOL)
    await hostile.handle(MODEL_PROTOCOL, (stream) => {
      stream.send(lengthPrefixed(ModelReply.encode({ header: { size: BigInt(size) } })))
      // One byte a second: each byte would have re-armed a no-data timer for ever.
      const timer = setInterval(() => {
        if (stream.status !== 'open') { clearInterval(timer); return }
        trickled++
        stream.send(lengthPrefixed(ModelReply.encode({ chunk: Uint8Array.of(trickled % 256) })))
      }, 1000)
      stream.addEventListener('close', () => { clearInterval(timer) })
      cleanup.add('trickle timer', () => { clearInterval(timer) })
    }, { runOnLimitedConnection: false })
    await waitForDirect(hostile, worker.node)

    const digit = heldOutDigits()[0]
    const trickle = { ...digitsTask('trickled', digit.pixels), model: { sha256: 'e'.repeat(64), size, name: 'trickled' } }
    const err = await withTimeout(rejectionOf(hostile.services.tasks.run(worker.node.peerId, trickle)),
      DEFAULT_TRANSFER_LIMITS.windowMs + WAIT_MS, () => `the worker to give up on the trickled model (${trickled} bytes trickled)`)
    expect(err.code).toBe('model-unavailable')
    expect(err.message).toMatch(/too slow/)

    // The slot is free: the next task (a model the worker has) runs at once, not `busy`.
    const next = await withTimeout(hostile.services.tasks.run(worker.node.peerId, digitsTask('next', digit.pixels)), WAIT_MS, 'the next task')
    expect(next.result.outputs.length).toBeGreaterThan(0)
  })
})

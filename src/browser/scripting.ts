/**
 * `window.p2pAgents`: a small scripting API on the page for automation (the bench, and anyone who
 * wants to drive a tab from devtools). It calls the same TabPeer the UI uses.
 */
import { fromTypedArray, toTypedArray } from '../core/tensor.js'
import { builtinModel, modelRef } from '../models/catalog.js'
import { DIGITS_INPUT, DIGITS_OUTPUT_PROBS } from '../models/digits.js'
import type { TabPeer, Target } from './tab-peer.js'

export interface DigitTaskTiming {
  roundTripMs: number
  networkMs: number
  queueMs: number
  loadMs: number
  inferenceMs: number
  totalMs: number
  probs: number[]
}

export interface ScriptingApi {
  peerId(): string
  /** Page open → ready to work, ms (undefined until ready). */
  readyMs(): number | undefined
  /** Durations of the direct WebRTC dials this tab made, ms. */
  dialTimes(): number[]
  /** Runs the digit model on a 28×28 input `count` times, one after another, and returns each task's timings. */
  runDigits(pixels: number[], count: number, target: Target): Promise<DigitTaskTiming[]>
}

declare global {
  interface Window { p2pAgents: ScriptingApi }
}

export function scriptingApi (peer: () => TabPeer | undefined): ScriptingApi {
  const need = (): TabPeer => {
    const p = peer()
    if (p == null) throw new Error('this tab is not ready yet')
    return p
  }
  let counter = 0
  return {
    peerId: () => peer()?.peerId ?? '',
    readyMs: () => peer()?.readyMs,
    dialTimes: () => [...(peer()?.directory?.dialTimes ?? [])],
    async runDigits (pixels, count, target) {
      const tab = need()
      const model = modelRef(builtinModel('digits'))
      const input = Float32Array.from(pixels)
      const out: DigitTaskTiming[] = []
      for (let i = 0; i < count; i++) {
        const run = await tab.run({
          taskId: `script-${Date.now().toString(36)}-${++counter}`,
          jobId: 'script',
          model,
          inputs: [fromTypedArray(DIGITS_INPUT, 'float32', [1, 1, 28, 28], input)],
          timeoutMs: 30_000,
          outputNames: [DIGITS_OUTPUT_PROBS]
        }, target)
        const probs = run.result.outputs.find(o => o.name === DIGITS_OUTPUT_PROBS)
        out.push({ roundTripMs: run.roundTripMs, networkMs: run.networkMs, ...run.result.timings, probs: probs != null ? Array.from(toTypedArray(probs) as Float32Array) : [] })
      }
      return out
    }
  }
}

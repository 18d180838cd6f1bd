/** Shared set-up for the browser tests: one served build + relay and one Chromium per file. */
import * as ort from 'onnxruntime-node'
import { startAppServer } from '../../src/node/app-server.js'
import { launchChromium } from '../../src/node/chromium.js'
import { digitCanvasRGBA, PAD_SIZE } from '../../src/node/page-driver.js'
import { preprocessDrawing, DIGITS_INPUT, DIGITS_OUTPUT_PROBS } from '../../src/models/digits.js'
import { MODELS_DIR } from '../../src/node/node-peer.js'
import type { AppServer } from '../../src/node/app-server.js'
import type { Browser } from 'playwright-core'

export interface E2E {
  server: AppServer
  browser: Browser
}

export async function startE2E (): Promise<E2E> {
  const server = await startAppServer()
  try {
    return { server, browser: await launchChromium() }
  } catch (err) {
    await server.stop()
    throw err
  }
}

export async function stopE2E (e?: E2E): Promise<void> {
  await e?.browser.close().catch(() => {})
  await e?.server.stop()
}

let session: Promise<ort.InferenceSession> | undefined

/** What onnxruntime-node answers for a digit painted on the pad: the reference for browser results. */
export async function referenceProbs (pixels: Float32Array): Promise<number[]> {
  session ??= ort.InferenceSession.create(MODELS_DIR + 'digits.onnx')
  const input = preprocessDrawing(digitCanvasRGBA(pixels), PAD_SIZE, PAD_SIZE)
  const out = await (await session).run({ [DIGITS_INPUT]: new ort.Tensor('float32', input, [1, 1, 28, 28]) })
  return Array.from(out[DIGITS_OUTPUT_PROBS].data as Float32Array)
}

/** POST /v1/run (one task, answered when its result is verified) and POST /v1/ocr (pages → text). */
import { ocrPageJson } from '../../index.js'
import { GatewayError } from '../errors.js'
import { pngImages } from '../images.js'
import { DEFAULT_OCR_TIMEOUT_MS, DEFAULT_RUN_TIMEOUT_MS, MAX_CONCURRENT_OCR, MAX_CONCURRENT_RUNS, MAX_IMAGE_PIXELS, MAX_RUN_BODY_BYTES, MAX_OCR_IMAGES, MAX_TOTAL_PIXELS } from '../limits.js'
import { OcrBody, OcrResponse, RunBody, RunResponse, responses } from '../schemas.js'
import { clientGone } from '../streams.js'
import type { FastifyReply } from 'fastify'
import type { App, GatewayContext } from '../context.js'


/**
 * Runs `work` with a signal that aborts when the client goes away or after `timeoutMs`; a timeout
 * is answered 504 'cancelled' (a client that went away is answered nothing).
 */
async function withDeadline<T> (reply: FastifyReply, timeoutMs: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const gone = clientGone(reply)
  const timeout = new AbortController()
  const timer = setTimeout(() => { timeout.abort() }, timeoutMs)
  try {
    return await work(AbortSignal.any([gone, timeout.signal]))
  } catch (err) {
    if (timeout.signal.aborted && !gone.aborted) throw new GatewayError('cancelled', 504, `no verified result within ${timeoutMs} ms (timeout_ms)`)
    throw err
  } finally {
    clearTimeout(timer)
  }
}

export function taskRoutes (app: App, ctx: GatewayContext): void {
  app.post('/v1/run', {
    bodyLimit: Math.min(ctx.maxBodyBytes, MAX_RUN_BODY_BYTES),
    onRequest: async (_request, reply) => { ctx.slots.runs.take(reply.raw) },
    schema: {
      summary: 'Run one task',
      description: `Answers once the task's result is verified (replicas agreeing, spot check included). Waits up to timeout_ms (default ${DEFAULT_RUN_TIMEOUT_MS} ms): 504 'cancelled' after; 503 'no-workers' when no worker joins within ${ctx.waitForWorkersMs / 1000} s. A client that goes away cancels the task. At most ${MAX_CONCURRENT_RUNS} calls at once (429 'busy' beyond).`,
      tags: ['tasks'],
      body: RunBody,
      response: responses({ 200: RunResponse }, [400, 401, 404, 413, 415, 429, 502, 503, 504])
    }
  }, async (request, reply) => {
    const body = request.body
    const timeoutMs = body.timeout_ms ?? DEFAULT_RUN_TIMEOUT_MS
    const out = await withDeadline(reply, timeoutMs, async (signal) => await ctx.net.run(body.model, body.inputs, {
      replicas: body.replicas,
      tolerance: body.tolerance,
      argmax: body.argmax,
      spotCheck: body.spotCheck,
      diversity: body.diversity,
      waitForWorkersMs: Math.min(ctx.waitForWorkersMs, timeoutMs),
      signal
    }))
    return { outputs: out.outputs ?? [], agreedBy: out.agreedBy ?? [] }
  })

  app.post('/v1/ocr', {
    bodyLimit: ctx.maxBodyBytes,
    onRequest: async (_request, reply) => { ctx.slots.ocr.take(reply.raw) },
    schema: {
      summary: 'Read text from page images',
      description: `Up to ${MAX_OCR_IMAGES} PNG pages (base64), each at most ${MAX_IMAGE_PIXELS / 1e6} MP and ${MAX_TOTAL_PIXELS / 1e6} MP together: text detection and recognition run on the network's workers. Each page gives its text and lines with their boxes; a page whose detection failed says so in its error. Waits up to timeout_ms (default ${DEFAULT_OCR_TIMEOUT_MS} ms): 504 'cancelled' after; a client that goes away stops it. At most ${MAX_CONCURRENT_OCR} calls at once (429 'busy' beyond).`,
      tags: ['tasks'],
      body: OcrBody,
      response: responses({ 200: OcrResponse }, [400, 401, 413, 415, 429, 503, 504])
    }
  }, async (request, reply) => {
    const images = pngImages(request.body.images)
    const timeoutMs = request.body.timeout_ms ?? DEFAULT_OCR_TIMEOUT_MS
    const pages = await withDeadline(reply, timeoutMs, async (signal) => await ctx.net.ocr(images, {
      replicas: request.body.replicas,
      waitForWorkersMs: Math.min(ctx.waitForWorkersMs, timeoutMs),
      signal
    }))
    return { pages: pages.map(ocrPageJson) }
  })
}

/** POST /v1/models (an .onnx body) and GET /v1/models. */
import { Type } from 'typebox'
import { MAX_MODEL_BYTES } from '../limits.js'
import { ModelQuery, ModelResponse, responses } from '../schemas.js'
import type { App, GatewayContext } from '../context.js'

const MiB = 1024 * 1024

export function modelRoutes (app: App, ctx: GatewayContext): void {
  // Only this route takes raw bytes: elsewhere an octet-stream body is refused (415) before it is read.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })

  app.post('/v1/models', {
    bodyLimit: MAX_MODEL_BYTES,
    onRequest: async (_request, reply) => { ctx.slots.uploads.take(reply.raw) },
    schema: {
      summary: 'Upload an ONNX model',
      description: `The body is the .onnx file (application/octet-stream, at most ${MAX_MODEL_BYTES / MiB} MiB, weights inside the file). Answers what it declares; workers fetch it from this gateway by sha256. Uploading the same bytes again answers the same model.`,
      tags: ['models'],
      querystring: ModelQuery,
      body: { content: { 'application/octet-stream': { schema: Type.Unknown({ description: 'The .onnx file.' }) } } },
      response: responses({ 200: ModelResponse }, [400, 401, 413, 415, 429])
    }
  }, async (request) => {
    const body = request.body as Buffer
    return await ctx.net.model({ bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength), name: request.query.name ?? 'model.onnx' })
  })

  app.get('/v1/models', {
    schema: {
      summary: 'List the models',
      description: 'The built-in models, then every model uploaded (kept in the gateway\'s data directory).',
      tags: ['models'],
      response: responses({ 200: Type.Object({ models: Type.Array(ModelResponse) }) }, [401])
    }
  }, async () => ({ models: await ctx.net.models() }))
}

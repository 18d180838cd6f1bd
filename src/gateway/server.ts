/**
 * The HTTP gateway: the library's requester behind a JSON API (fastify, TypeBox schemas, OpenAPI
 * 3.1 at /openapi.json generated from the same schemas). startGateway() connects to the network,
 * resumes the jobs its data directory holds that did not finish, and listens; close() stops
 * listening, ends open streams and leaves the network (running jobs stay resumable).
 *
 *   const gw = await startGateway({ relays: ['/ip4/…/p2p/12D3Koo…'], dataDir: '.data/gateway' })
 *   console.log(gw.url)   // http://127.0.0.1:8787
 *   await gw.close()
 */
import Fastify from 'fastify'
import swagger from '@fastify/swagger'
import { connect } from '../index.js'
import { Access, isLoopback } from './auth.js'
import { GatewayError, clientErrorHandler, errorHandler, frameworkErrors, notFoundHandler } from './errors.js'
import { JobDesk } from './jobs.js'
import { jsonParserOf } from './json-body.js'
import { DEFAULT_MAX_BODY_BYTES, MAX_CONCURRENT_OCR, MAX_CONCURRENT_RUNS, MAX_CONCURRENT_UPLOADS, MAX_CONNECTIONS, MAX_STREAMS, MAX_STREAMS_PER_JOB, REQUEST_TIMEOUT_MS } from './limits.js'
import { KeyedSlots, Slots } from './slots.js'
import { schemaErrorFormatter, validatorCompiler } from './validation.js'
import { jobRoutes } from './routes/jobs.js'
import { modelRoutes } from './routes/models.js'
import { networkRoutes } from './routes/network.js'
import { taskRoutes } from './routes/tasks.js'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { ConnectOptions, Requester } from '../index.js'
import type { App, GatewayContext } from './context.js'

export interface GatewayOptions {
  /** Relay multiaddrs (each with /p2p/<relay peer id>). */
  relays: string | readonly string[]
  /** Where jobs, uploaded models and the gateway's key are kept (default '.data/gateway'); null keeps nothing on disk. */
  dataDir?: string | null
  /** Address to bind (default 127.0.0.1); anything but loopback needs a token. */
  host?: string
  /** Port (default 8787; 0 picks a free one). */
  port?: number
  /** Bearer token every /v1 route requires (at least 16 characters). */
  token?: string
  /** Defaults for jobs that do not say (the library's otherwise). */
  spotCheck?: number
  diversity?: ConnectOptions['diversity']
  /** Largest JSON or JSONL body (default 64 MiB). */
  maxBodyBytes?: number
  /** How long /v1/run and /v1/ocr wait for a first worker (default 10 s). */
  waitForWorkersMs?: number
  /** SSE keep-alive comment interval (default 15 s) and progress event interval (default 250 ms). */
  heartbeatMs?: number
  progressMs?: number
  /** Where the gateway reports what it does and unexpected errors (default: nowhere). */
  log?: (line: string) => void
  /** Peer options beyond these (tests). */
  peer?: ConnectOptions['peer']
}

export interface Gateway {
  /** http://host:port, as clients reach it. */
  url: string
  requester: Requester
  /** Jobs resumed at start. */
  resumed: number
  close(): Promise<void>
}

/** Paths answered without a token. */
const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/openapi.json'])

/** Starts the gateway; GatewayError 'bad-request' for bad options, RequesterError 'relay-unreachable'. */
export async function startGateway (options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? '127.0.0.1'
  if (options.token == null && !isLoopback(host)) {
    throw new GatewayError('bad-request', 400, `binding ${host} (not loopback) needs a token: give --token-file`)
  }
  const access = new Access(options.token)
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  if (!(Number.isSafeInteger(maxBodyBytes) && maxBodyBytes > 0)) throw new GatewayError('bad-request', 400, 'the body limit must be a positive number of bytes')
  const log = options.log ?? (() => {})

  const net = await connect({ relays: options.relays, dataDir: options.dataDir === undefined ? '.data/gateway' : options.dataDir, spotCheck: options.spotCheck, diversity: options.diversity, peer: options.peer })
  let app: App | undefined
  try {
    const desk = new JobDesk(net, log)
    const resumed = await desk.resumeAll()
    const ctx: GatewayContext = {
      net,
      desk,
      maxBodyBytes,
      waitForWorkersMs: options.waitForWorkersMs ?? 10_000,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      progressMs: options.progressMs ?? 250,
      slots: {
        runs: new Slots('/v1/run calls', MAX_CONCURRENT_RUNS),
        ocr: new Slots('/v1/ocr calls', MAX_CONCURRENT_OCR),
        uploads: new Slots('uploads (models and jobs)', MAX_CONCURRENT_UPLOADS),
        streams: new KeyedSlots('results and events streams', MAX_STREAMS_PER_JOB, MAX_STREAMS)
      }
    }
    let closing = false
    app = Fastify({
      logger: false,
      bodyLimit: maxBodyBytes,
      requestTimeout: REQUEST_TIMEOUT_MS,
      forceCloseConnections: true,
      // No HEAD twins: a HEAD on a stream would hold a stream slot for nothing.
      exposeHeadRoutes: false,
      return503OnClosing: false,
      clientErrorHandler,
      frameworkErrors,
      schemaErrorFormatter
    }).withTypeProvider<TypeBoxTypeProvider>()
    app.setValidatorCompiler(validatorCompiler)
    // Response schemas document the API; replies are written as they are (no field is dropped or coerced).
    app.setSerializerCompiler(() => (data) => JSON.stringify(data))
    app.setErrorHandler(errorHandler(log))
    app.setNotFoundHandler(notFoundHandler)
    // Only JSON everywhere; raw bytes and JSONL only on the routes that take them (their scopes below).
    app.removeAllContentTypeParsers()
    const parse = jsonParserOf(app)
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
      try {
        done(null, parse(body as string, 'the JSON body'))
      } catch (err) {
        done(err as Error, undefined)
      }
    })
    app.addHook('onRequest', async (request) => {
      if (closing) throw new GatewayError('cancelled', 503, 'the gateway is shutting down')
      access.check(request.headers, !PUBLIC_ROUTES.has(request.routeOptions.url ?? ''))
    })

    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'P2P AI Agents gateway',
          version: '1',
          description: 'Run ONNX models on the peer-to-peer network\'s workers over HTTP. Every error is { "error": { "code", "message" } }.'
        },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: access.tokenRequired ? [{ bearer: [] }] : [],
        tags: [{ name: 'models' }, { name: 'jobs' }, { name: 'tasks' }, { name: 'network' }]
      }
    })
    const api = app
    api.get('/openapi.json', { schema: { hide: true } }, async () => api.swagger())
    networkRoutes(api, ctx)
    taskRoutes(api, ctx)
    await api.register(async (scope) => { modelRoutes(scope, ctx) })
    await api.register(async (scope) => { jobRoutes(scope, ctx) })

    await api.listen({ host, port: options.port ?? 8787 })
    api.server.maxConnections = MAX_CONNECTIONS
    const address = api.server.address()
    const port = typeof address === 'object' && address != null ? address.port : options.port ?? 8787
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
    log(`listening on ${url} (${access.tokenRequired ? 'bearer token required' : 'no token: loopback only'}); ${resumed} job(s) resumed`)

    let closed: Promise<void> | undefined
    return {
      url,
      requester: net,
      resumed,
      close: async () => {
        closed ??= (async () => {
          closing = true
          // Jobs first: their streams see the run end and close; /v1/run calls answer 503.
          await net.close()
          await api.close()
        })()
        await closed
      }
    }
  } catch (err) {
    await app?.close().catch(() => {})
    await net.close()
    throw err
  }
}

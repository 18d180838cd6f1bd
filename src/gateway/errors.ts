/**
 * Every failure the gateway answers is JSON `{ "error": { "code", "message" } }` with the library's
 * error codes (RequesterError) and a fitting HTTP status: the library's own errors, fastify's (a
 * malformed or oversized body, a wrong content type, a schema violation, an unknown route), and
 * anything unexpected (500 'internal', logged here, never a stack trace to the client).
 */
import { STATUS_CODES } from 'node:http'
import { RequesterError } from '../index.js'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { RequesterErrorCode } from '../index.js'

/** The library's codes, and what only an HTTP server can say. */
export type GatewayErrorCode = RequesterErrorCode
  /** No such route. */
  | 'not-found'
  /** A fault of the gateway itself (logged there). */
  | 'internal'

/** An error with the HTTP status it is answered with. */
export class GatewayError extends Error {
  constructor (readonly code: GatewayErrorCode, readonly status: number, message: string) {
    super(message)
    this.name = 'GatewayError'
  }
}

const STATUS: Readonly<Record<GatewayErrorCode, number>> = {
  'bad-request': 400,
  'bad-input': 400,
  'bad-model': 400,
  'bad-image': 400,
  'unknown-model': 404,
  'unknown-job': 404,
  'not-found': 404,
  'too-large': 413,
  unauthenticated: 401,
  conflict: 409,
  busy: 429,
  internal: 500,
  'task-failed': 502,
  'no-workers': 503,
  'relay-unreachable': 503,
  // The network cannot run it now (too few different workers, none able to run the model): try later.
  stalled: 503,
  // A job or run stopped by the gateway shutting down (a client's own cancel is not answered).
  cancelled: 503
}

export interface ErrorBody {
  error: { code: GatewayErrorCode, message: string }
}

export function errorBody (code: GatewayErrorCode, message: string): ErrorBody {
  return { error: { code, message } }
}

const MiB = 1024 * 1024

/** What fastify's own errors mean for a client, by fastify's code. */
function fastifyError (err: FastifyError, request: FastifyRequest | undefined): GatewayError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': {
      const limit = request?.routeOptions.bodyLimit
      return new GatewayError('too-large', 413, `the body is larger than this route takes${limit != null ? ` (${limit / MiB} MiB)` : ''}`)
    }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError('bad-request', 415, `content type ${JSON.stringify(request?.headers['content-type'] ?? 'none')} is not accepted by ${request?.method ?? ''} ${request?.routeOptions.url ?? 'this route'} (see /openapi.json)`)
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GatewayError('bad-request', 400, 'the JSON body is empty')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatewayError('bad-request', 400, 'the body does not match its Content-Length')
  }
  if (err.validation != null) {
    // Too many items (inputs, images) is a size limit, as a body too large is.
    const tooMany = err.validation.some(e => e.keyword === 'maxItems')
    return tooMany ? new GatewayError('too-large', 413, err.message) : new GatewayError('bad-request', 400, err.message)
  }
  if (err.statusCode != null && err.statusCode >= 400 && err.statusCode < 500) {
    return new GatewayError(err.statusCode === 404 ? 'not-found' : 'bad-request', err.statusCode, err.message)
  }
  return undefined
}

/** `err` as the error a client is told: its code, status and message. */
export function toGatewayError (err: unknown, request?: FastifyRequest): GatewayError {
  if (err instanceof GatewayError) return err
  if (err instanceof RequesterError) return new GatewayError(err.code, STATUS[err.code], err.message)
  return fastifyError(err as FastifyError, request) ?? new GatewayError('internal', 500, 'the gateway failed to answer this request (see its log)')
}

export function sendError (reply: FastifyReply, err: GatewayError): void {
  if (err.code === 'unauthenticated' && err.status === 401) reply.header('www-authenticate', 'Bearer')
  reply.status(err.status).type('application/json; charset=utf-8').send(errorBody(err.code, err.message))
}

/** fastify's error handler: every error in the JSON shape; unexpected ones logged with their stack. */
export function errorHandler (log: (line: string) => void) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const answer = toGatewayError(err, request)
    if (answer.code === 'internal') log(`${request.method} ${request.url}: ${err.stack ?? String(err)}`)
    if (reply.sent || reply.raw.headersSent) {
      // A stream that fails mid-way can only be cut short.
      reply.raw.destroy()
      return
    }
    sendError(reply, answer)
  }
}

export function notFoundHandler (request: FastifyRequest, reply: FastifyReply): void {
  sendError(reply, new GatewayError('not-found', 404, `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)} (see /openapi.json)`))
}

/** Errors fastify raises before routing (a malformed URL): the same JSON shape. */
export function frameworkErrors (err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  sendError(reply, new GatewayError('bad-request', err.statusCode ?? 400, err.message))
}

/**
 * A request node's HTTP parser could not read (a malformed request line or headers, a header
 * section too large, a timeout): answered in the same shape, then the connection is closed.
 */
export function clientErrorHandler (err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy()
    return
  }
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
  const message = status === 408 ? 'the request took too long to arrive' : status === 431 ? 'the request headers are too large' : 'malformed HTTP request'
  const body = JSON.stringify(errorBody(status === 431 ? 'too-large' : 'bad-request', message))
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}

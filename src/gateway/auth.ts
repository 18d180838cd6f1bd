/**
 * Who may call the gateway. With a token (--token-file) every /v1 route needs
 * `Authorization: Bearer <token>`, compared in constant time. Without one the gateway binds only a
 * loopback address and answers only requests addressed to a loopback name: a web page cannot
 * reach it by pointing its own domain at 127.0.0.1 (DNS rebinding), since the browser then sends
 * that domain as the Host header.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import { GatewayError } from './errors.js'

/** Shortest token accepted: 16 characters (`openssl rand -hex 32` gives 64). */
export const MIN_TOKEN_LENGTH = 16

/** Whether `host` (an address or name to bind or a Host header's name) is this machine's loopback. */
export function isLoopback (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h)
  return false
}

/** The name part of a Host header: `[::1]:8787` → `::1`, `localhost:8787` → `localhost`. */
function hostName (header: string): string {
  const bracketed = header.match(/^\[([^\]]*)\]/)
  if (bracketed != null) return bracketed[1]!
  return header.replace(/:\d*$/, '')
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

export class Access {
  private readonly expected?: Buffer

  constructor (token: string | undefined) {
    if (token != null) {
      if (/\s/.test(token)) throw new GatewayError('bad-request', 400, 'the token must not contain spaces or line breaks')
      if (token.length < MIN_TOKEN_LENGTH) throw new GatewayError('bad-request', 400, `the token is ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (openssl rand -hex 32)`)
      this.expected = digest(token)
    }
  }

  get tokenRequired (): boolean {
    return this.expected != null
  }

  /** Throws GatewayError 'unauthenticated' unless the request may go on. */
  check (headers: { authorization?: string, host?: string }, needsToken: boolean): void {
    if (this.expected == null) {
      const host = headers.host
      if (host != null && !isLoopback(hostName(host))) {
        throw new GatewayError('unauthenticated', 403, `this gateway has no token and answers only requests to a loopback name (127.0.0.1, localhost), not ${JSON.stringify(host.slice(0, 100))}`)
      }
      return
    }
    if (!needsToken) return
    const m = headers.authorization?.match(/^Bearer[ \t]+(\S+)[ \t]*$/i)
    if (m == null) throw new GatewayError('unauthenticated', 401, 'this gateway needs Authorization: Bearer <token>')
    // Digests of equal length: the comparison takes the same time whatever the token given.
    if (!timingSafeEqual(digest(m[1]!), this.expected)) throw new GatewayError('unauthenticated', 401, 'wrong token')
  }
}

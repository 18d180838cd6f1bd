/**
 * Serves the built app with the headers that make the page cross-origin isolated
 * (COOP same-origin + COEP require-corp), so onnxruntime-web can use WASM threads,
 * plus /config.json (the relay addresses as seen from the requesting host, ICE servers), /healthz
 * and /metrics. Over https when given a certificate.
 */
import { createServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { extname, join, normalize, resolve, sep } from 'node:path'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8'
}

export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin'
} as const

/** An RTCIceServer as the page passes it to RTCPeerConnection. */
export interface IceServer {
  urls: string
  username?: string
  credential?: string
}

export interface StaticServerOptions {
  root: string
  host: string
  port: number
  /** Relay address for a browser that reached us as `hostname`. */
  relayAddrFor: (hostname: string) => string
  /** Other relays of the network (multiaddrs with /p2p/<id>), listed after ours in `relays`. */
  otherRelays?: string[]
  /** STUN/TURN servers for the page's WebRTC connections. */
  iceServers?: IceServer[]
  /** PEM certificate and key: serve https instead of http. */
  tls?: { cert: string, key: string }
  metrics: () => Record<string, number>
}

/** What GET /config.json answers (read by src/browser/config.ts). */
export interface ServedConfig {
  /** This relay, under the host name the page was loaded from. */
  relay: string
  /** This relay first, then the other relays of the network. */
  relays: string[]
  iceServers: IceServer[]
}

/** Longest request path served (undecoded); a longer one is answered 414 before touching the disk. */
const MAX_PATH_LENGTH = 2048

/**
 * The path a request target names, raw and percent-decoded, or the 4xx status that refuses it: a
 * target that is not a path (or an absolute URL), a path that does not decode as UTF-8, or one
 * with a NUL byte (no file has one; the file system would throw on it) is a 400, an overlong one 414.
 */
export function requestPath (target: string): { raw: string, decoded: string } | 400 | 414 {
  let raw: string
  if (target.startsWith('/')) {
    raw = target.replace(/[?#].*$/s, '')
  } else {
    // absolute-form, as sent to proxies: allowed by HTTP/1.1, and its path is what counts
    try {
      raw = new URL(target).pathname
    } catch {
      return 400
    }
  }
  if (raw.length > MAX_PATH_LENGTH) return 414
  let decoded: string
  try {
    decoded = decodeURIComponent(raw)
  } catch {
    return 400
  }
  if (decoded.includes('\0')) return 400
  return { raw, decoded }
}

export async function startStaticServer (options: StaticServerOptions): Promise<Server> {
  const root = resolve(options.root)
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' })
      res.end(`internal error: ${err.message}`)
    })
  }
  // An https.Server is an http.Server (a tls.Server underneath): callers use one API for both.
  const server: Server = options.tls != null
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener)
    : createServer(listener)

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v)
    const target = requestPath(req.url ?? '/')
    if (typeof target === 'number') {
      res.writeHead(target, { 'Content-Type': 'text/plain' }).end(target === 414 ? 'path too long' : 'malformed request path')
      return
    }
    if (target.raw === '/config.json') {
      const hostname = (req.headers.host ?? 'localhost').replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
      const relay = options.relayAddrFor(hostname)
      const others = (options.otherRelays ?? []).filter(a => a !== relay)
      const body: ServedConfig = { relay, relays: [relay, ...new Set(others)], iceServers: options.iceServers ?? [] }
      sendJson(res, body)
      return
    }
    if (target.raw === '/healthz') { sendJson(res, { ok: true }); return }
    if (target.raw === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' })
      res.end(Object.entries(options.metrics()).map(([k, v]) => `p2p_ai_agents_${k} ${v}`).join('\n') + '\n')
      return
    }
    let path = normalize(join(root, target.decoded))
    if (path !== root && !path.startsWith(root + sep)) { res.writeHead(403).end(); return }
    let info = await stat(path).catch(() => undefined)
    if (info?.isDirectory() === true) {
      path = join(path, 'index.html')
      info = await stat(path).catch(() => undefined)
    }
    if (info == null && extname(target.decoded) === '') {
      // Client-side routes fall back to the app shell.
      path = join(root, 'index.html')
      info = await stat(path).catch(() => undefined)
    }
    if (info == null) { res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found'); return }
    const hashed = target.raw.startsWith('/assets/')
    res.writeHead(200, {
      'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream',
      'Content-Length': info.size,
      'Cache-Control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache'
    })
    if (req.method === 'HEAD') { res.end(); return }
    // a file gone or unreadable between stat and read ends this response, not the relay
    createReadStream(path).on('error', (err) => { res.destroy(err) }).pipe(res)
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => { resolve() })
  })
  return server
}

function sendJson (res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
  res.end(JSON.stringify(body))
}

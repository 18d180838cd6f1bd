/**
 * Serves the built app with the headers that make the page cross-origin isolated
 * (COOP same-origin + COEP require-corp), so onnxruntime-web can use WASM threads,
 * plus /config.json (the relay address as seen from the requesting host), /healthz and /metrics.
 */
import { createServer } from 'node:http'
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

export interface StaticServerOptions {
  root: string
  host: string
  port: number
  /** Relay address for a browser that reached us as `hostname`. */
  relayAddrFor: (hostname: string) => string
  metrics: () => Record<string, number>
}

export async function startStaticServer (options: StaticServerOptions): Promise<Server> {
  const root = resolve(options.root)
  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' })
      res.end(`internal error: ${err.message}`)
    })
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v)
    if (url.pathname === '/config.json') {
      const hostname = (req.headers.host ?? 'localhost').replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
      sendJson(res, { relay: options.relayAddrFor(hostname) })
      return
    }
    if (url.pathname === '/healthz') { sendJson(res, { ok: true }); return }
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' })
      res.end(Object.entries(options.metrics()).map(([k, v]) => `p2p_ai_agents_${k} ${v}`).join('\n') + '\n')
      return
    }
    let path = normalize(join(root, decodeURIComponent(url.pathname)))
    if (path !== root && !path.startsWith(root + sep)) { res.writeHead(403).end(); return }
    let info = await stat(path).catch(() => undefined)
    if (info?.isDirectory() === true) {
      path = join(path, 'index.html')
      info = await stat(path).catch(() => undefined)
    }
    if (info == null && extname(url.pathname) === '') {
      // Client-side routes fall back to the app shell.
      path = join(root, 'index.html')
      info = await stat(path).catch(() => undefined)
    }
    if (info == null) { res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found'); return }
    const hashed = url.pathname.startsWith('/assets/')
    res.writeHead(200, {
      'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream',
      'Content-Length': info.size,
      'Cache-Control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache'
    })
    if (req.method === 'HEAD') { res.end(); return }
    createReadStream(path).pipe(res)
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

/**
 * The relay's HTTP server against malformed request targets, over real HTTP on loopback: raw
 * request lines (no client library to tidy them up), each answered with a 4xx — never a 500, never
 * the app shell — and the server keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, createServer as createNetServer } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startStaticServer } from '../../relay/static-server.js'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

let server: Server
let port: number
let root: string

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'static-urls-'))
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>app shell</title>')
  writeFileSync(join(root, 'a b.txt'), 'spaced')
  server = await startStaticServer({ root, host: '127.0.0.1', port: 0, relayAddrFor: () => '/dns4/x/tcp/1/ws', metrics: () => ({}) })
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  await new Promise(resolve => server.close(resolve))
  rmSync(root, { recursive: true, force: true })
})

/** Sends `target` byte for byte in a GET request line; resolves with the status code and body. */
async function get (target: string | Buffer): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', c => chunks.push(c))
    socket.on('error', reject)
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)
      if (status == null) { reject(new Error(`no HTTP status in ${JSON.stringify(text.slice(0, 80))}`)); return }
      resolve({ status: Number(status[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) })
    })
    // written, not ended: a half-closed client may get no answer from Node's server
    socket.write(Buffer.concat([Buffer.from('GET '), Buffer.from(target), Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')]))
  })
}

describe('malformed URLs', () => {
  it.each([
    ['a lone percent sign', '/%'],
    ['a percent sign before non-hex', '/%zz'],
    ['a truncated UTF-8 sequence', '/%E0%A4%A'],
    ['an invalid UTF-8 byte', '/%FF'],
    ['an encoded NUL byte', '/index.html%00.png'],
    ['an encoded NUL byte in a route', '/%00'],
    ['a target that is not a path', 'http://['],
    ['an absolute-form target with a bad escape', 'http://127.0.0.1/%']
  ])('answers 400 to %s (%s)', async (_what, target) => {
    const res = await get(target)
    expect(res.status).toBe(400)
    expect(res.body).not.toContain('app shell')
  })

  it('answers 414 to an overlong path, and Node itself 431 to one past its header limit', async () => {
    expect((await get('/' + 'a'.repeat(5000))).status).toBe(414)
    expect((await get('/' + 'a'.repeat(20_000))).status).toBe(431)
  })

  it('answers 400 to a raw NUL byte in the request line (Node\'s parser)', async () => {
    expect((await get(Buffer.from([0x2f, 0x61, 0x00, 0x62]))).status).toBe(400)
  })

  it('ends the response, not the relay, when a file cannot be read after stat (a socket file)', async () => {
    const socketFile = createNetServer()
    await new Promise<void>(resolve => socketFile.listen(join(root, 'sock.txt'), resolve))
    try {
      await get('/sock.txt').catch(() => undefined)
      expect((await get('/healthz')).status).toBe(200)
    } finally {
      await new Promise(resolve => socketFile.close(resolve))
    }
  })

  it('still serves well-formed paths, escapes and client-side routes after all that', async () => {
    expect(await get('/a%20b.txt')).toEqual({ status: 200, body: 'spaced' })
    expect((await get('/index.html?x=%')).status).toBe(200)
    expect((await get('/some/route')).body).toContain('app shell')
    expect((await get('/missing.js')).status).toBe(404)
    expect((await get('/%2e%2e/%2e%2e/etc/passwd')).status).toBe(403)
    expect((await get('/healthz')).body).toContain('{"ok":true}')
  })
})

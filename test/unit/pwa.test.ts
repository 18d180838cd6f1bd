import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runInNewContext } from 'node:vm'
import { crc32, inflateSync } from 'node:zlib'
import { describe, expect, it, vi } from 'vitest'

const PUBLIC = resolve(dirname(fileURLToPath(import.meta.url)), '../../public')
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

interface ManifestIcon { src: string, sizes: string, type: string, purpose?: string }

function readManifest (): Record<string, unknown> & { icons: ManifestIcon[] } {
  return JSON.parse(readFileSync(join(PUBLIC, 'manifest.webmanifest'), 'utf8'))
}

interface PngChunk { type: string, data: Buffer }

/** Splits a PNG into chunks, checking the signature and every chunk's CRC on the way. */
function readPng (file: Buffer): { width: number, height: number, chunks: PngChunk[] } {
  expect(file.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true)
  const chunks: PngChunk[] = []
  let o = 8
  while (o < file.length) {
    const length = file.readUInt32BE(o)
    const type = file.toString('latin1', o + 4, o + 8)
    const data = file.subarray(o + 8, o + 8 + length)
    expect(file.readUInt32BE(o + 8 + length), `CRC of ${type}`).toBe(crc32(file.subarray(o + 4, o + 8 + length)))
    chunks.push({ type, data })
    o += 12 + length
  }
  expect(o).toBe(file.length)
  expect(chunks[0].type).toBe('IHDR')
  expect(chunks.at(-1)?.type).toBe('IEND')
  return { width: chunks[0].data.readUInt32BE(0), height: chunks[0].data.readUInt32BE(4), chunks }
}

describe('web app manifest', () => {
  it('parses and has the fields an installable PWA needs', () => {
    const m = readManifest()
    expect(m).toMatchObject({
      name: 'P2P AI Agents',
      short_name: 'P2P AI',
      start_url: '/',
      scope: '/',
      display: 'standalone',
      background_color: '#0b1120',
      theme_color: '#0b1120'
    })
    expect(typeof m.description).toBe('string')
    expect(Array.isArray(m.categories)).toBe(true)
    const purposes = m.icons.map(i => `${i.sizes} ${i.purpose ?? 'any'}`)
    expect(purposes).toEqual(expect.arrayContaining(['192x192 any', '512x512 any', '512x512 maskable']))
  })

  it('lists icons that exist as valid PNGs of the stated size', () => {
    for (const icon of readManifest().icons) {
      const path = join(PUBLIC, icon.src)
      expect(existsSync(path), icon.src).toBe(true)
      expect(icon.type).toBe('image/png')
      const png = readPng(readFileSync(path))
      expect(`${png.width}x${png.height}`).toBe(icon.sizes)
      const ihdr = png.chunks[0].data
      expect([ihdr[8], ihdr[9], ihdr[12]]).toEqual([8, 6, 0]) // 8-bit RGBA, not interlaced
      const raw = inflateSync(Buffer.concat(png.chunks.filter(c => c.type === 'IDAT').map(c => c.data)))
      expect(raw.length).toBe(png.height * (1 + png.width * 4))
    }
  })
})

describe('service worker (public/sw.js)', () => {
  const path = join(PUBLIC, 'sw.js')
  const ORIGIN = 'https://app.example'

  it('is valid JavaScript', () => {
    execFileSync(process.execPath, ['--check', path], { stdio: 'pipe' })
  })

  /** Evaluates sw.js against a fake worker global and returns its fetch handler plus the fakes. */
  function loadWorker (): {
    onFetch: (event: unknown) => void
    fetch: ReturnType<typeof vi.fn>
    put: ReturnType<typeof vi.fn>
  } {
    const handlers = new Map<string, (event: unknown) => void>()
    const put = vi.fn(async () => {})
    const cache = { match: vi.fn(async () => undefined), put, keys: async () => [], delete: async () => true }
    const fetch = vi.fn(async () => ({ ok: true, status: 200, type: 'basic', redirected: false, clone () { return this } }))
    const self = { location: new URL(`${ORIGIN}/sw.js`), addEventListener: (type: string, fn: (event: unknown) => void) => handlers.set(type, fn) }
    const caches = { open: async () => cache, match: cache.match, keys: async () => [], delete: async () => true }
    runInNewContext(readFileSync(path, 'utf8'), { self, caches, fetch, URL, Set, Promise, Error }, { filename: path })
    expect([...handlers.keys()].sort()).toEqual(['activate', 'fetch', 'install'])
    return { onFetch: handlers.get('fetch')!, fetch, put }
  }

  function fakeEvent (url: string, init: { method?: string, mode?: string } = {}): {
    event: unknown
    responses: Array<Promise<unknown>>
    waits: Array<Promise<unknown>>
  } {
    const responses: Array<Promise<unknown>> = []
    const waits: Array<Promise<unknown>> = []
    const request = { url, method: init.method ?? 'GET', mode: init.mode ?? 'cors', headers: new Headers() }
    const event = { request, respondWith: (p: Promise<unknown>) => responses.push(p), waitUntil: (p: Promise<unknown>) => waits.push(p) }
    return { event, responses, waits }
  }

  it('leaves /config.json, /healthz and /metrics to the network', () => {
    const sw = loadWorker()
    for (const p of ['/config.json', '/healthz', '/metrics']) {
      for (const mode of ['cors', 'navigate']) {
        const { event, responses, waits } = fakeEvent(`${ORIGIN}${p}`, { mode })
        sw.onFetch(event)
        expect(responses, `${p} (${mode})`).toHaveLength(0)
        expect(waits).toHaveLength(0)
      }
    }
    expect(sw.fetch).not.toHaveBeenCalled()
    expect(sw.put).not.toHaveBeenCalled()
  })

  it('does not intercept cross-origin or non-GET requests', () => {
    const sw = loadWorker()
    for (const [url, method] of [['https://other.example/assets/x.js', 'GET'], [`${ORIGIN}/assets/x.js`, 'POST']]) {
      const { event, responses } = fakeEvent(url, { method })
      sw.onFetch(event)
      expect(responses, `${method} ${url}`).toHaveLength(0)
    }
  })

  it('answers /assets/* itself and caches the network response on first use', async () => {
    const sw = loadWorker()
    const { event, responses, waits } = fakeEvent(`${ORIGIN}/assets/x.js`)
    sw.onFetch(event)
    expect(responses).toHaveLength(1)
    const response = await responses[0]
    await Promise.all(waits)
    expect(sw.fetch).toHaveBeenCalledTimes(1)
    expect(sw.put).toHaveBeenCalledTimes(1)
    // The very response object from the network is stored: the worker never synthesises its own.
    expect(sw.put.mock.calls[0]).toEqual([(event as { request: unknown }).request, response])
  })
})

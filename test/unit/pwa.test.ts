import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runInNewContext } from 'node:vm'
import { crc32, inflateSync } from 'node:zlib'
import { describe, expect, it, vi } from 'vitest'
import { buildId, injectBuild, precacheList } from '../../scripts/sw-precache.js'
import { BUILTIN_CACHE, BUILTIN_VERIFY_MARK, BuiltinModelCache } from '../../src/browser/cache-model-store.js'
import { sha256Hex } from '../../src/core/hash.js'

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

/** A Map-backed Cache Storage: enough of the API for sw.js and BuiltinModelCache, keyed by absolute URL. */
class FakeCaches {
  readonly stores = new Map<string, Map<string, unknown>>()
  constructor (private readonly origin: string) {}

  private key (k: string | { url: string }): string {
    return new URL(typeof k === 'string' ? k : k.url, this.origin).href
  }

  async open (name: string): Promise<{
    match: (k: string | { url: string }) => Promise<unknown>
    put: (k: string | { url: string }, v: unknown) => Promise<void>
    keys: () => Promise<Array<{ url: string }>>
    delete: (k: string | { url: string }) => Promise<boolean>
  }> {
    let store = this.stores.get(name)
    if (store == null) this.stores.set(name, store = new Map())
    const s = store
    return {
      // Like Cache Storage, each match is a fresh response (a body can be read once).
      match: async (k) => { const v = s.get(this.key(k)); return v instanceof Response ? v.clone() : v },
      put: async (k, v) => { s.set(this.key(k), v) },
      keys: async () => [...s.keys()].map(url => ({ url })),
      delete: async (k) => s.delete(this.key(k))
    }
  }

  async keys (): Promise<string[]> { return [...this.stores.keys()] }
  async delete (name: string): Promise<boolean> { return this.stores.delete(name) }
  cached (name: string): string[] { return [...(this.stores.get(name)?.keys() ?? [])].map(u => new URL(u).pathname) }
}

describe('service worker build step (scripts/sw-precache.ts)', () => {
  const files = [
    'index.html', 'sw.js', 'manifest.webmanifest', 'models/ocr-det.onnx', 'datasets/digits-test.json',
    'assets/index-B7IiEHbm.js', 'assets/index-GWHs6z2j.css', 'assets/inference-worker-DyKqXiJA.js',
    'assets/ort-wasm-simd-threaded-DcHrbrbl.wasm', 'assets/ort-wasm-simd-threaded.asyncify-D5D0fo7z.wasm',
    'assets/ort-wasm-simd-threaded.jsep-Aa1Bb2Cc.wasm', 'assets/ort.wasm.bundle.min-0A5rgwmB.js'
  ]

  it('precaches the shell and every built asset but the WebGPU builds of onnxruntime, nothing outside assets/', () => {
    expect(precacheList(files)).toEqual([
      '/',
      '/assets/index-B7IiEHbm.js', '/assets/index-GWHs6z2j.css', '/assets/inference-worker-DyKqXiJA.js',
      '/assets/ort-wasm-simd-threaded-DcHrbrbl.wasm', '/assets/ort.wasm.bundle.min-0A5rgwmB.js'
    ])
  })

  it('gives a build a new id when a file name or the shell changes, the same id otherwise', () => {
    const list = precacheList(files)
    const id = buildId(list, '<html>a</html>')
    expect(id).toMatch(/^[0-9a-f]{16}$/)
    expect(buildId([...list], '<html>a</html>')).toBe(id)
    expect(buildId(list, '<html>b</html>')).not.toBe(id)
    expect(buildId(list.map(f => f.replace('B7IiEHbm', 'Xx1Yy2Zz')), '<html>a</html>')).not.toBe(id)
  })

  it('writes the build into sw.js, and refuses a sw.js without the line to replace', () => {
    const source = readFileSync(join(PUBLIC, 'sw.js'), 'utf8')
    const built = injectBuild(source, { id: 'abc', precache: ['/', '/assets/a.js'] })
    expect(built).toContain('const BUILD = {"id":"abc","precache":["/","/assets/a.js"]}')
    expect(built).not.toContain("id: 'unbuilt'")
    expect(() => injectBuild(built, { id: 'x', precache: [] })).toThrow(/missing/)
  })
})

describe('service worker (public/sw.js)', () => {
  const path = join(PUBLIC, 'sw.js')
  const ORIGIN = 'https://app.example'
  const BUILD = { id: 'b1', precache: ['/', '/assets/index-1.js', '/assets/ort-2.wasm'] }
  const SHELL = 'p2p-ai-agents-shell-b1'
  const RUNTIME = 'p2p-ai-agents-runtime-v2'

  it('is valid JavaScript', () => {
    execFileSync(process.execPath, ['--check', path], { stdio: 'pipe' })
  })

  interface FakeResponse { ok: boolean, status: number, type: string, redirected: boolean, url: string, clone: () => FakeResponse }

  function response (url: string, status = 200): FakeResponse {
    return { ok: status < 400, status, type: 'basic', redirected: false, url, clone () { return this } }
  }

  /** Evaluates the built sw.js against a fake worker global; `online` false makes every fetch fail as offline. */
  function loadWorker (): {
    on: (type: string) => (event: unknown) => void
    fetch: ReturnType<typeof vi.fn>
    caches: FakeCaches
    net: { online: boolean, status: (url: string) => number }
  } {
    const handlers = new Map<string, (event: unknown) => void>()
    const caches = new FakeCaches(ORIGIN)
    const net = { online: true, status: (_url: string) => 200 }
    const fetch = vi.fn(async (input: string | { url: string }) => {
      const url = new URL(typeof input === 'string' ? input : input.url, ORIGIN).href
      if (!net.online) throw new TypeError('Failed to fetch')
      return response(url, net.status(url))
    })
    const self = {
      location: new URL(`${ORIGIN}/sw.js`),
      addEventListener: (type: string, fn: (event: unknown) => void) => handlers.set(type, fn),
      skipWaiting: async () => {},
      clients: { claim: async () => {} },
      registration: {}
    }
    const source = injectBuild(readFileSync(path, 'utf8'), BUILD)
    runInNewContext(source, { self, caches, fetch, URL, Set, Promise, Error, TypeError }, { filename: path })
    expect([...handlers.keys()].sort()).toEqual(['activate', 'fetch', 'install'])
    return { on: (type) => handlers.get(type)!, fetch, caches, net }
  }

  /** A lifecycle event (install, activate): resolves when its waitUntil promise does. */
  async function lifecycle (sw: ReturnType<typeof loadWorker>, type: string): Promise<void> {
    const waits: Array<Promise<unknown>> = []
    sw.on(type)({ waitUntil: (p: Promise<unknown>) => waits.push(p) })
    await Promise.all(waits)
  }

  /** A fetch event: the response the worker answers with, or undefined when it does not intercept. */
  async function request (sw: ReturnType<typeof loadWorker>, url: string, init: { method?: string, mode?: string } = {}): Promise<FakeResponse | undefined> {
    const responses: Array<Promise<FakeResponse>> = []
    const waits: Array<Promise<unknown>> = []
    const req = { url: new URL(url, ORIGIN).href, method: init.method ?? 'GET', mode: init.mode ?? 'cors', headers: new Headers() }
    sw.on('fetch')({ request: req, preloadResponse: Promise.resolve(undefined), respondWith: (p: Promise<FakeResponse>) => responses.push(p), waitUntil: (p: Promise<unknown>) => waits.push(p) })
    if (responses.length === 0) return undefined
    const answer = await responses[0]
    await Promise.all(waits)
    return answer
  }

  it('installs by caching every file of the build\'s shell, and fails the install if one is missing', async () => {
    const sw = loadWorker()
    await lifecycle(sw, 'install')
    expect(sw.caches.cached(SHELL).sort()).toEqual([...BUILD.precache].sort())
    // What a tab needs to start and read text offline, though the first visit's own fetches bypassed the worker.
    expect(sw.caches.cached(RUNTIME)).toEqual(expect.arrayContaining(['/config.json', '/models/ocr-keys.txt', '/manifest.webmanifest', '/icons/icon-192.png']))

    const broken = loadWorker()
    broken.net.status = (url) => url.endsWith('.wasm') ? 404 : 200
    await expect(lifecycle(broken, 'install')).rejects.toThrow(/ort-2\.wasm: 404/)
  })

  it('on activate deletes this app\'s other caches (older builds and versions) and nothing else', async () => {
    const sw = loadWorker()
    for (const name of ['p2p-ai-agents-v1', 'p2p-ai-agents-shell-old', 'p2p-ai-agents-runtime-v1', SHELL, RUNTIME, 'p2p-models-v1', BUILTIN_CACHE]) await sw.caches.open(name)
    await lifecycle(sw, 'activate')
    expect((await sw.caches.keys()).sort()).toEqual([BUILTIN_CACHE, RUNTIME, SHELL, 'p2p-models-v1'].sort())
  })

  it('opens offline: a navigation the network cannot answer gets the cached shell', async () => {
    const sw = loadWorker()
    await lifecycle(sw, 'install')
    sw.net.online = false
    const shell = await request(sw, '/?relay=x', { mode: 'navigate' })
    // The very response stored at install (with its COOP/COEP headers), not one the worker made up.
    expect(shell).toBe((await (await sw.caches.open(SHELL)).match('/')))
    expect(await request(sw, '/assets/ort-2.wasm')).toBe(await (await sw.caches.open(SHELL)).match('/assets/ort-2.wasm'))
  })

  it('serves the last /config.json seen when the network fails, and the OCR keys and samples used before', async () => {
    const sw = loadWorker()
    const paths = ['/config.json', '/models/ocr-keys.txt', '/samples/ocr/samples.json', '/samples/ocr/note.png']
    const online = await Promise.all(paths.map(async p => await request(sw, p)))
    sw.net.online = false
    for (const [i, p] of paths.entries()) expect(await request(sw, p), p).toBe(online[i])
    await expect(request(sw, '/samples/ocr/never-seen.png')).rejects.toThrow(/Failed to fetch/)
  })

  it('leaves /healthz, /metrics, .onnx models, datasets, cross-origin and non-GET requests to the network', async () => {
    const sw = loadWorker()
    for (const p of ['/healthz', '/metrics', '/models/ocr-det.onnx', '/datasets/digits-test.json']) {
      expect(await request(sw, p), p).toBeUndefined()
    }
    expect(await request(sw, '/metrics', { mode: 'navigate' })).toBeUndefined()
    expect(await request(sw, 'https://other.example/assets/x.js')).toBeUndefined()
    expect(await request(sw, '/assets/x.js', { method: 'POST' })).toBeUndefined()
    expect(sw.fetch).not.toHaveBeenCalled()
  })

  it('answers /assets/* from the cache first, caching a file first used (not precached) as it comes', async () => {
    const sw = loadWorker()
    const first = await request(sw, '/assets/ort-wasm.asyncify-9.wasm')
    expect(sw.fetch).toHaveBeenCalledTimes(1)
    // The very response object from the network is stored: the worker never synthesises its own.
    expect(await (await sw.caches.open(SHELL)).match('/assets/ort-wasm.asyncify-9.wasm')).toBe(first)
    sw.net.online = false
    expect(await request(sw, '/assets/ort-wasm.asyncify-9.wasm')).toBe(first)
    expect(sw.fetch).toHaveBeenCalledTimes(1)
  })

  it('never caches an error or a redirected response', async () => {
    const sw = loadWorker()
    sw.net.status = () => 500
    expect((await request(sw, '/config.json'))?.status).toBe(500)
    expect(sw.caches.cached(RUNTIME)).toEqual([])
  })
})

describe('built-in models kept for offline use (BuiltinModelCache)', () => {
  const ORIGIN = 'https://app.example'
  const bytes = new Uint8Array([8, 1, 18, 4, 116, 101, 115, 116])

  function setup (current: string[]): { cache: BuiltinModelCache, caches: FakeCaches, fetch: ReturnType<typeof vi.fn>, body: { bytes: Uint8Array, online: boolean } } {
    const caches = new FakeCaches(ORIGIN)
    const body = { bytes, online: true }
    const fetch = vi.fn(async () => {
      if (!body.online) throw new TypeError('Failed to fetch')
      return new Response(new Uint8Array(body.bytes))
    })
    const cache = new BuiltinModelCache({ current, caches: caches as unknown as CacheStorage, fetch: fetch as unknown as typeof globalThis.fetch })
    return { cache, caches, fetch, body }
  }

  it('fetches a built-in once, then serves it from Cache Storage with no network', async () => {
    const sha = await sha256Hex(bytes)
    const t = setup([sha])
    expect(await t.cache.get(sha, `${ORIGIN}/models/m.onnx`)).toEqual(bytes)
    t.body.online = false
    const again = new BuiltinModelCache({ current: [sha], caches: t.caches as unknown as CacheStorage, fetch: t.fetch as unknown as typeof globalThis.fetch })
    expect(await again.get(sha, `${ORIGIN}/models/m.onnx`)).toEqual(bytes)
    expect(t.fetch).toHaveBeenCalledTimes(1)
  })

  it('does not keep bytes that are not the model asked for', async () => {
    const sha = await sha256Hex(bytes)
    const t = setup([sha])
    t.body.bytes = new Uint8Array([1, 2, 3])
    // Not handed out either: the model is then fetched like any other, from a peer that has it.
    expect(await t.cache.get(sha, `${ORIGIN}/models/m.onnx`)).toBeUndefined()
    expect(t.caches.cached(BUILTIN_CACHE)).toEqual([])
    t.body.bytes = bytes
    expect(await t.cache.get(sha, `${ORIGIN}/models/m.onnx`)).toEqual(bytes)
    expect(t.caches.cached(BUILTIN_CACHE)).toEqual([`/p2p-builtin/${sha}`])
  })

  it('hashes a built-in once per page: its first read from Cache Storage, never the later ones', async () => {
    const sha = await sha256Hex(bytes)
    const t = setup([sha])
    await t.cache.get(sha, `${ORIGIN}/models/m.onnx`)
    const page = new BuiltinModelCache({ current: [sha], caches: t.caches as unknown as CacheStorage, fetch: t.fetch as unknown as typeof globalThis.fetch })
    const hashes = (): number => performance.getEntriesByName(BUILTIN_VERIFY_MARK).filter(m => (m as PerformanceMark).detail.sha256 === sha).length
    const before = hashes()
    for (let i = 0; i < 3; i++) expect(await page.get(sha, `${ORIGIN}/models/m.onnx`)).toEqual(bytes)
    expect(hashes() - before).toBe(1)
    expect(t.fetch).toHaveBeenCalledTimes(1)
  })

  it('never hands out a damaged Cache Storage entry: it fetches the model afresh and stores the good bytes', async () => {
    const sha = await sha256Hex(bytes)
    const t = setup([sha])
    await (await t.caches.open(BUILTIN_CACHE)).put(`/p2p-builtin/${sha}`, new Response(new Uint8Array([9, 9, 9])))
    expect(await t.cache.get(sha, `${ORIGIN}/models/m.onnx`)).toEqual(bytes)
    expect(t.fetch).toHaveBeenCalledTimes(1)
    const stored = await (await t.caches.open(BUILTIN_CACHE)).match(`/p2p-builtin/${sha}`) as Response
    expect(new Uint8Array(await stored.arrayBuffer())).toEqual(bytes)
  })

  it('hashes every download, even of a built-in verified before in this page (the file behind the URL can change)', async () => {
    const sha = await sha256Hex(bytes)
    const body = { bytes }
    const fetch = vi.fn(async () => new Response(new Uint8Array(body.bytes)))
    // No Cache Storage (an insecure context): every read downloads.
    const cache = new BuiltinModelCache({ current: [sha], caches: undefined, fetch: fetch as unknown as typeof globalThis.fetch })
    expect(typeof globalThis.caches).toBe('undefined')
    expect(await cache.get(sha, `${ORIGIN}/models/m.onnx`)).toEqual(bytes)
    body.bytes = new Uint8Array([1, 2, 3])
    expect(await cache.get(sha, `${ORIGIN}/models/m.onnx`)).toBeUndefined()
    expect(fetch).toHaveBeenCalledTimes(2)
  })

  it('shares one download between concurrent reads of a built-in', async () => {
    const sha = await sha256Hex(bytes)
    const t = setup([sha])
    const reads = await Promise.all([1, 2, 3].map(async () => await t.cache.get(sha, `${ORIGIN}/models/m.onnx`)))
    expect(reads).toEqual([bytes, bytes, bytes])
    expect(t.fetch).toHaveBeenCalledTimes(1)
  })

  it('deletes built-ins of an older build (a sha256 this build does not ship)', async () => {
    const sha = await sha256Hex(bytes)
    const t = setup([sha])
    await (await t.caches.open(BUILTIN_CACHE)).put(`/p2p-builtin/${'0'.repeat(64)}`, new Response('old'))
    await t.cache.get(sha, `${ORIGIN}/models/m.onnx`)
    await vi.waitFor(() => { expect(t.caches.cached(BUILTIN_CACHE)).toEqual([`/p2p-builtin/${sha}`]) })
  })
})

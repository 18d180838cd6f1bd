/*
 * Service worker for P2P AI Agents: the installed app opens instantly, and with no network at all.
 * Plain JS copied from public/ by the build, which then writes the BUILD line below
 * (scripts/sw-precache.ts): it has to live at the site root to control scope "/", and the browser
 * detects an update by comparing this file's bytes, which change with every build.
 *
 * The page must stay cross-origin isolated (COOP + COEP, for WASM threads), which needs those headers
 * on the document and on every worker script, offline too. The Cache API stores a response together
 * with its headers, so this worker only ever caches real same-origin network responses (ok, type
 * "basic") and never builds a Response of its own: whatever comes out of a cache still carries
 * COOP/COEP/CORP.
 *
 * Two caches:
 *   shell   "p2p-ai-agents-shell-<build id>": index.html (as "/") and every file under /assets/ the
 *           build made (JS, CSS, the inference worker, onnxruntime's WASM build), fetched at install:
 *           if one fails, the install fails and the previous worker and its cache stay. onnxruntime's
 *           WebGPU build (27 MB) is cached on first use only. Dropped when the next build activates.
 *   runtime "p2p-ai-agents-runtime-v<VERSION>": small files refreshed whenever the network answers
 *           and served from the cache when it does not: /config.json (the last one seen, so the page
 *           knows its relays offline), /models/ except .onnx (the OCR keys), /samples/, manifest, icons;
 *           the first four kinds are fetched at install as well.
 * Built-in .onnx models are not intercepted: the page keeps the ones it has used in its own cache,
 * keyed by sha256 (src/browser/cache-model-store.ts), so they are stored once.
 *
 * Same-origin GET only; anything else is not intercepted:
 *   navigations               network first (navigation preload), the cached shell when offline
 *   /assets/*                 cache first (content-hashed names), cached on first use if not precached
 *   runtime files (above)     network first, cache fallback
 *   /healthz, /metrics        network only
 *   everything else           not intercepted (/datasets/, .onnx)
 */

// Written by the build (scripts/sw-precache.ts): this build's id and the files of its app shell.
const BUILD = { id: 'unbuilt', precache: [] }
/** Bump when this file's caching logic changes: activate deletes this app's other caches. */
const VERSION = 2
const PREFIX = 'p2p-ai-agents-'
const SHELL_CACHE = `${PREFIX}shell-${BUILD.id}`
const RUNTIME_CACHE = `${PREFIX}runtime-v${VERSION}`
const SHELL = '/'
const ICONS = ['/manifest.webmanifest', '/icons/icon-192.png', '/icons/icon-512.png', '/icons/icon-maskable-512.png']
/**
 * Runtime files fetched at install too: the first visit's page is not controlled yet, so what it
 * fetches itself does not pass through here. The relays (/config.json) and the OCR keys are what a
 * tab needs to start and to read text offline.
 */
const EXTRAS = ['/config.json', '/models/ocr-keys.txt', '/samples/ocr/samples.json', ...ICONS]
const NETWORK_ONLY = new Set(['/healthz', '/metrics'])

/** Only real, complete, same-origin responses go into a cache (they keep the isolation headers). */
function cacheable (response) {
  return response != null && response.ok && response.type === 'basic' && !response.redirected
}

/** Where a same-origin GET goes: 'navigate', 'shell', 'runtime', or undefined (not intercepted). */
function route (pathname, mode) {
  if (NETWORK_ONLY.has(pathname)) return undefined
  if (mode === 'navigate') return 'navigate'
  if (pathname.startsWith('/assets/')) return 'shell'
  if (pathname.startsWith('/models/')) return pathname.endsWith('.onnx') ? undefined : 'runtime'
  if (pathname === '/config.json' || pathname.startsWith('/samples/') || ICONS.includes(pathname)) return 'runtime'
  return undefined
}

async function fetchInto (cache, url) {
  // Hashed assets may come from the HTTP cache (immutable); the rest is revalidated.
  const response = await fetch(url, url.startsWith('/assets/') ? {} : { cache: 'no-cache' })
  if (!cacheable(response)) throw new Error(`GET ${url}: ${response.status} ${response.type}`)
  await cache.put(url, response)
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const shell = await caches.open(SHELL_CACHE)
    await Promise.all(BUILD.precache.map((url) => fetchInto(shell, url)))
    // Nice to have offline, refreshed on every use: a missing one (no relay serving /config.json) must not block the install.
    const runtime = await caches.open(RUNTIME_CACHE)
    await Promise.all(EXTRAS.map((url) => fetchInto(runtime, url).catch(() => {})))
    await self.skipWaiting()
  })())
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== SHELL_CACHE && name !== RUNTIME_CACHE) await caches.delete(name)
    }
    await self.registration?.navigationPreload?.enable().catch(() => {})
    await self.clients.claim()
  })())
})

self.addEventListener('fetch', (event) => {
  const { request } = event
  if (request.method !== 'GET' || request.headers.has('range')) return
  const url = new URL(request.url)
  if (url.origin !== self.location.origin) return
  const where = route(url.pathname, request.mode)
  if (where === 'navigate') event.respondWith(navigate(event))
  else if (where === 'shell') event.respondWith(cacheFirst(event, SHELL_CACHE))
  else if (where === 'runtime') event.respondWith(networkFirst(event, RUNTIME_CACHE))
})

async function navigate (event) {
  try {
    return (await event.preloadResponse) ?? await fetch(event.request)
  } catch (err) {
    // Offline (or the server is down): the shell of this worker's own build, whose assets it holds.
    const cached = await caches.open(SHELL_CACHE).then((cache) => cache.match(SHELL))
    if (cached != null) return cached
    throw err
  }
}

async function cacheFirst (event, name) {
  const cache = await caches.open(name)
  const cached = await cache.match(event.request)
  if (cached != null) return cached
  const response = await fetch(event.request)
  if (cacheable(response)) event.waitUntil(cache.put(event.request, response.clone()))
  return response
}

async function networkFirst (event, name) {
  const cache = await caches.open(name)
  try {
    const response = await fetch(event.request)
    if (cacheable(response)) event.waitUntil(cache.put(event.request, response.clone()))
    return response
  } catch (err) {
    const cached = await cache.match(event.request)
    if (cached != null) return cached
    throw err
  }
}

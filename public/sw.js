/*
 * Service worker for P2P AI Agents: caches the app shell so the installed app opens instantly, and
 * offline. Plain JS copied as-is from public/ (no build step): it has to live at the site root to
 * control scope "/", and the browser detects an update by comparing this file's bytes.
 *
 * The page must stay cross-origin isolated (COOP + COEP, for WASM threads), which needs those headers
 * on the document and on every worker script. The Cache API stores a response together with its
 * headers, so this worker only ever caches real same-origin network responses (ok, type "basic") and
 * never builds a Response of its own: whatever comes out of the cache still carries COOP/COEP/CORP.
 *
 * Same-origin GET only; anything else is not intercepted:
 *   navigations                       network first (navigation preload), cached "/" when offline
 *   /assets/*                         cache first, cached on first use (content-hashed names: JS, CSS,
 *                                     the inference worker, onnxruntime's .wasm files)
 *   /models/*                         network first, cache fallback (the app checks model bytes by hash)
 *   manifest and icons                network first, cache fallback (precached at install)
 *   /config.json, /healthz, /metrics  network only (dynamic; never served from a cache)
 *   everything else                   not intercepted
 *
 * When a fresh "/" references other /assets/ files than the cached one (a new deploy), assets the new
 * shell does not reference are dropped, so old builds do not pile up; the lazily loaded ones (worker,
 * .wasm) come back on next use, usually straight from the HTTP cache (they are served immutable).
 *
 * Bump VERSION when this file's caching logic changes: activate deletes this app's other caches.
 */

const VERSION = 1
const PREFIX = 'p2p-ai-agents-'
const CACHE = `${PREFIX}v${VERSION}`
const SHELL = '/'
const EXTRAS = ['/manifest.webmanifest', '/icons/icon-192.png', '/icons/icon-512.png', '/icons/icon-maskable-512.png']
const NETWORK_ONLY = new Set(['/config.json', '/healthz', '/metrics'])

/** Only real, complete, same-origin responses go into the cache (they keep the isolation headers). */
function cacheable (response) {
  return response != null && response.ok && response.type === 'basic' && !response.redirected
}

/** The /assets/ URLs that index.html loads directly (entry script, CSS, modulepreloads). */
function shellAssets (html) {
  const urls = new Set()
  for (const m of html.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']?(\/assets\/[^"'\s>]+)/gi)) urls.add(m[1])
  return [...urls]
}

async function fetchInto (cache, url, init) {
  const response = await fetch(url, init)
  if (!cacheable(response)) throw new Error(`GET ${url}: ${response.status} ${response.type}`)
  await cache.put(url, response)
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE)
    const shell = await fetch(SHELL, { cache: 'reload' })
    if (!cacheable(shell)) throw new Error(`GET ${SHELL}: ${shell.status} ${shell.type}`)
    const html = await shell.clone().text()
    // The shell and what it loads must all be cached, or the install fails and the old worker stays.
    await Promise.all(shellAssets(html).map((url) => fetchInto(cache, url)))
    // Manifest and icons are nice to have offline; a missing one must not block the install.
    await Promise.all(EXTRAS.map((url) => fetchInto(cache, url, { cache: 'reload' }).catch(() => {})))
    await cache.put(SHELL, shell)
    await self.skipWaiting()
  })())
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name)
    }
    await self.registration?.navigationPreload?.enable().catch(() => {})
    await self.clients.claim()
  })())
})

self.addEventListener('fetch', (event) => {
  const { request } = event
  if (request.method !== 'GET' || request.headers.has('range')) return
  const url = new URL(request.url)
  if (url.origin !== self.location.origin || NETWORK_ONLY.has(url.pathname)) return
  if (request.mode === 'navigate') {
    event.respondWith(navigate(event, url))
  } else if (url.pathname.startsWith('/assets/')) {
    event.respondWith(cacheFirst(event))
  } else if (url.pathname.startsWith('/models/') || EXTRAS.includes(url.pathname)) {
    event.respondWith(networkFirst(event))
  }
})

async function navigate (event, url) {
  try {
    const response = (await event.preloadResponse) ?? await fetch(event.request)
    if (url.pathname === '/' || url.pathname === '/index.html') event.waitUntil(refreshShell(response.clone()))
    return response
  } catch (err) {
    const cached = await caches.open(CACHE).then((cache) => cache.match(SHELL))
    if (cached != null) return cached
    throw err
  }
}

async function refreshShell (response) {
  if (!cacheable(response)) return
  const cache = await caches.open(CACHE)
  const previous = await cache.match(SHELL)
  const html = await response.clone().text()
  await cache.put(SHELL, response)
  if (previous == null) return
  const before = shellAssets(await previous.text())
  const now = new Set(shellAssets(html))
  if (before.length === now.size && before.every((u) => now.has(u))) return
  for (const key of await cache.keys()) {
    const path = new URL(key.url).pathname
    if (path.startsWith('/assets/') && !now.has(path)) await cache.delete(key)
  }
}

async function cacheFirst (event) {
  const cache = await caches.open(CACHE)
  const cached = await cache.match(event.request)
  if (cached != null) return cached
  const response = await fetch(event.request)
  if (cacheable(response)) event.waitUntil(cache.put(event.request, response.clone()))
  return response
}

async function networkFirst (event) {
  const cache = await caches.open(CACHE)
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

/**
 * Build step for the service worker (public/sw.js): after `vite build` has written the app, the
 * copy of sw.js in the output gets the build's id and the list of files to precache written into
 * it. The list comes from the build output itself, so it always names the hashed files this build
 * made; and since the id changes with every build, so do sw.js's bytes, which is how a browser
 * notices a new deploy and installs the new worker.
 */
import { createHash } from 'node:crypto'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join, relative, resolve, sep } from 'node:path'
import type { Plugin } from 'vite'

/** The line of public/sw.js that the build replaces (the unbuilt worker precaches nothing). */
export const BUILD_MARKER = /^const BUILD = \{ id: 'unbuilt', precache: \[\] \}$/m

export interface SwBuild {
  /** Changes whenever any precached file's name or the shell's bytes change. */
  id: string
  /** URL paths to fetch and cache at install, the shell ("/") first. */
  precache: string[]
}

/**
 * onnxruntime-web's WebGPU builds (asyncify/jsep, 27 MB) are needed only where a real GPU adapter
 * exists: the service worker caches them on first use instead of making every install fetch them.
 */
const ON_FIRST_USE = /^assets\/ort-wasm-[^/]*\.(asyncify|jsep)[^/]*\.wasm$/

/** The app shell: index.html (as "/") and every file under assets/ except those cached on first use. */
export function precacheList (files: string[]): string[] {
  const assets = files
    .map(f => f.split(sep).join('/'))
    .filter(f => f.startsWith('assets/') && !ON_FIRST_USE.test(f))
    .sort()
  return ['/', ...assets.map(f => '/' + f)]
}

/** A short id for this build: the hash of the precached names (content-hashed) and of index.html. */
export function buildId (precache: string[], indexHtml: string | Uint8Array): string {
  return createHash('sha256').update(precache.join('\n')).update('\0').update(indexHtml).digest('hex').slice(0, 16)
}

/** sw.js's source with the build written in; throws if the marker line is missing (an edited sw.js). */
export function injectBuild (swSource: string, build: SwBuild): string {
  if (!BUILD_MARKER.test(swSource)) throw new Error('sw.js: the line `const BUILD = { id: \'unbuilt\', precache: [] }` is missing')
  return swSource.replace(BUILD_MARKER, () => `const BUILD = ${JSON.stringify(build)}`)
}

async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter(e => e.isFile()).map(e => relative(dir, join(e.parentPath, e.name)))
}

/** Vite plugin: writes the build into <outDir>/sw.js once the bundle (workers and .wasm included) is on disk. */
export function swPrecache (): Plugin {
  let outDir = ''
  return {
    name: 'p2p-sw-precache',
    apply: 'build',
    configResolved (config) {
      outDir = resolve(config.root, config.build.outDir)
    },
    // After a successful write only (closeBundle also runs after a failed build, whose error it would hide).
    async writeBundle () {
      const sw = join(outDir, 'sw.js')
      const precache = precacheList(await filesUnder(join(outDir, 'assets')).then(files => files.map(f => join('assets', f))))
      const build = { id: buildId(precache, await readFile(join(outDir, 'index.html'))), precache }
      await writeFile(sw, injectBuild(await readFile(sw, 'utf8'), build))
    }
  }
}

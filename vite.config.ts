import { defineConfig } from 'vite'
import { svelte } from '@sveltejs/vite-plugin-svelte'
import { swPrecache } from './scripts/sw-precache.js'

// Same isolation headers as relay/static-server.ts, so WASM threads work in dev and preview too.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin'
}

export default defineConfig({
  plugins: [svelte(), swPrecache()],
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 2048 },
  server: { headers: isolation },
  preview: { headers: isolation }
})

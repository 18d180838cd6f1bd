/** Finds and launches a local Chromium for the demo, e2e tests and bench: never downloads one. */
import { existsSync } from 'node:fs'
import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'

/** Flags that work on a headless server; WebRTC host candidates stay real IPs (no mDNS). */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--enable-unsafe-webgpu'
]

export function findChromium (): string {
  const candidates = [
    process.env.CHROMIUM_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome',
    safe(() => chromium.executablePath())
  ].filter((p): p is string => p != null && p !== '')
  const found = candidates.find(p => existsSync(p))
  if (found == null) {
    throw new Error('no Chromium found: install it (Debian: `apt-get install -y chromium`) or set CHROMIUM_PATH')
  }
  return found
}

function safe (fn: () => string): string | undefined {
  try { return fn() } catch { return undefined }
}

export async function launchChromium (): Promise<Browser> {
  return await chromium.launch({ executablePath: findChromium(), headless: true, args: CHROMIUM_FLAGS })
}

/**
 * Remembers each model's measured backend across reloads (localStorage, shared by the origin's
 * tabs: same machine, same hardware), keyed by the set of backends measured, so a tab that gains
 * or loses one (a GPU adapter appears) measures again.
 */
import type { BackendChoice } from '../core/backend-picker.js'

const KEY = 'p2p-backend-choices-v1'

type Stored = Record<string, Record<string, BackendChoice>>

function read (): Stored {
  try {
    const parsed = JSON.parse(localStorage.getItem(KEY) ?? '{}') as unknown
    return typeof parsed === 'object' && parsed != null ? parsed as Stored : {}
  } catch {
    return {}
  }
}

export function rememberedChoices (backends: string[]): Record<string, BackendChoice> {
  return read()[backends.join(' | ')] ?? {}
}

export function rememberChoice (backends: string[], sha256: string, choice: BackendChoice): void {
  try {
    const all = read()
    const key = backends.join(' | ')
    all[key] = { ...all[key], [sha256]: choice }
    localStorage.setItem(KEY, JSON.stringify(all))
  } catch {
    // Storage full or unavailable: the next reload measures again.
  }
}

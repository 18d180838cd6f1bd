/**
 * What a volunteer gives from this tab, kept across reloads (localStorage): WASM threads and task
 * slots, "only while visible" and "pause on battery" are the device's (shared by the origin's
 * tabs); paused or not is the tab's own, kept with its identity slot, since each tab of a browser
 * is a peer of its own and a reloaded tab gets its slot back. Pure logic: storage is passed in, so
 * the rules are tested without a browser.
 */

export interface VolunteerSettings {
  /** Paused by the volunteer: running tasks finish, no new ones are taken. */
  paused: boolean
  /** WASM threads per inference worker; undefined: the page's default (`?threads=` or min(4, cores)). */
  threads?: number
  /** Tasks run at once, each in an inference worker of its own (each holds its own copy of a model). */
  slots: number
  /** Take work only while this tab is visible. */
  visibleOnly: boolean
  /** Take no work while the device runs on battery (where the browser says so). */
  pauseOnBattery: boolean
}

export const DEFAULT_SETTINGS: Readonly<VolunteerSettings> = Object.freeze({ paused: false, slots: 1, visibleOnly: false, pauseOnBattery: false })

/** Upper bounds whatever the device claims: each slot is a Web Worker holding its own model copies. */
export const MAX_SLOTS = 8
export const MAX_THREADS = 16

export const SETTINGS_KEY = 'p2p-ai-agents:volunteer'
/** Where the pause of the tab holding identity slot `slot` is kept. */
export const pausedKey = (slot: number): string => `${SETTINGS_KEY}:paused:${slot}`

export class VolunteerSettingsError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'VolunteerSettingsError'
  }
}

/** Slots and threads a device with `cores` logical cores may give: at least 1, at most its cores (and the caps). */
export function limits (cores: number): { maxSlots: number, maxThreads: number } {
  const n = Number.isInteger(cores) && cores > 0 ? cores : 1
  return { maxSlots: Math.min(MAX_SLOTS, n), maxThreads: Math.min(MAX_THREADS, n) }
}

/** Checks a change the volunteer asks for; throws VolunteerSettingsError saying what is allowed. */
export function validate (settings: VolunteerSettings, cores: number): VolunteerSettings {
  const { maxSlots, maxThreads } = limits(cores)
  if (!Number.isInteger(settings.slots) || settings.slots < 1 || settings.slots > maxSlots) {
    throw new VolunteerSettingsError(`slots must be a whole number from 1 to ${maxSlots} on this device (got ${String(settings.slots)})`)
  }
  if (settings.threads !== undefined && (!Number.isInteger(settings.threads) || settings.threads < 1 || settings.threads > maxThreads)) {
    throw new VolunteerSettingsError(`threads must be a whole number from 1 to ${maxThreads} on this device (got ${String(settings.threads)})`)
  }
  return settings
}

/**
 * The device's settings as stored (the pause is kept per tab, see loadSettings), read leniently: a field that is missing, of the wrong type or out of range
 * (another version wrote it, or the device has fewer cores now) takes its default; nothing throws.
 */
export function parseSettings (raw: string | null, cores: number): VolunteerSettings {
  let stored: Record<string, unknown> = {}
  try {
    const parsed = JSON.parse(raw ?? '{}') as unknown
    if (parsed != null && typeof parsed === 'object' && !Array.isArray(parsed)) stored = parsed as Record<string, unknown>
  } catch {
    // unreadable: defaults
  }
  const { maxSlots, maxThreads } = limits(cores)
  const whole = (v: unknown, max: number): number | undefined => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max ? v : undefined
  return {
    paused: false,
    threads: whole(stored.threads, maxThreads),
    slots: whole(stored.slots, maxSlots) ?? DEFAULT_SETTINGS.slots,
    visibleOnly: stored.visibleOnly === true,
    pauseOnBattery: stored.pauseOnBattery === true
  }
}

type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem'>

/** The device's settings, and the pause of the tab in identity slot `slot` (not paused while the slot is unknown). */
export function loadSettings (storage: Storage | undefined, cores: number, slot?: number): VolunteerSettings {
  try {
    const settings = parseSettings(storage?.getItem(SETTINGS_KEY) ?? null, cores)
    return { ...settings, paused: slot !== undefined && storage?.getItem(pausedKey(slot)) === 'true' }
  } catch {
    // storage refused (private mode, disabled): defaults
    return { ...DEFAULT_SETTINGS }
  }
}

/**
 * Validates and stores (the pause under `slot`, if known); throws VolunteerSettingsError for a
 * value out of range. Returns false if storage refused it.
 */
export function saveSettings (storage: Storage | undefined, settings: VolunteerSettings, cores: number, slot?: number): boolean {
  validate(settings, cores)
  const { paused, ...device } = settings
  try {
    storage?.setItem(SETTINGS_KEY, JSON.stringify(device))
    if (slot !== undefined) storage?.setItem(pausedKey(slot), String(paused))
    return storage != null
  } catch {
    return false
  }
}

/** Why this tab takes no work now, in the volunteer's words; empty while it works. */
export type PauseReason = 'paused by you' | 'this tab is hidden' | 'on battery'

export interface Surroundings {
  visible: boolean
  /** undefined where the browser does not say (no navigator.getBattery). */
  onBattery?: boolean
}

export function pauseReasons (settings: VolunteerSettings, around: Surroundings): PauseReason[] {
  const reasons: PauseReason[] = []
  if (settings.paused) reasons.push('paused by you')
  if (settings.visibleOnly && !around.visible) reasons.push('this tab is hidden')
  if (settings.pauseOnBattery && around.onBattery === true) reasons.push('on battery')
  return reasons
}

/** Slots and threads take effect on a reload: the running inference workers keep theirs. */
export function needsReload (saved: VolunteerSettings, running: { slots: number, threads?: number }): boolean {
  return saved.slots !== running.slots || (saved.threads !== undefined && saved.threads !== running.threads)
}

/**
 * The volunteer's controls in the page: the stored settings, and what they mean right now given
 * the tab's visibility and the battery. Says (via `onChange`) whether the tab should take work,
 * and shows its state in the tab title and favicon so a person sees it from the tab strip.
 */
import { loadSettings, pauseReasons, saveSettings, SETTINGS_KEY } from './volunteer-settings.js'
import { tabTitle } from './volunteer-words.js'
import type { PauseReason, VolunteerSettings } from './volunteer-settings.js'

/** The part of the Battery Status API used here (Chromium exposes it; Firefox and Safari do not). */
interface BatteryLike extends EventTarget {
  charging: boolean
}

export class VolunteerControls {
  settings: VolunteerSettings
  /** Undefined where the browser does not say (then "pause on battery" is not offered). */
  onBattery?: boolean
  batterySupported: boolean
  private readonly cores: number
  private readonly onChange: () => void
  /** This tab's identity slot, once claimed: its pause is kept under it. */
  private slot?: number

  constructor (onChange: () => void) {
    this.cores = navigator.hardwareConcurrency || 1
    this.settings = loadSettings(storage(), this.cores)
    this.onChange = onChange
    this.batterySupported = typeof (navigator as { getBattery?: unknown }).getBattery === 'function'
    document.addEventListener('visibilitychange', () => { this.onChange() })
    // The device's settings are shared by the app's tabs: a change in another tab applies here too
    // (a pause is each tab's own, under its slot's key).
    addEventListener('storage', (evt) => {
      if (evt.key !== SETTINGS_KEY) return
      this.settings = { ...loadSettings(storage(), this.cores, this.slot), paused: this.settings.paused }
      this.onChange()
    })
    if (this.batterySupported) {
      (navigator as unknown as { getBattery: () => Promise<BatteryLike> }).getBattery().then((battery) => {
        const read = (): void => { this.onBattery = !battery.charging; this.onChange() }
        battery.addEventListener('chargingchange', read)
        read()
      }, () => {
        // Refused (a permissions policy): like a browser without the API.
        this.batterySupported = false
        this.onChange()
      })
    }
  }

  /**
   * The tab's identity slot is known (a reloaded tab gets its own back): its kept pause applies, and
   * a pause pressed before (while the tab was starting) is kept under it. Returns whether to pause.
   */
  bindSlot (slot: number): boolean {
    this.slot = slot
    const kept = loadSettings(storage(), this.cores, slot).paused
    if (this.settings.paused && !kept) this.update({ paused: true })
    else this.settings = { ...this.settings, paused: kept }
    this.onChange()
    return this.reasons.length > 0
  }

  get reasons (): PauseReason[] {
    return pauseReasons(this.settings, { visible: document.visibilityState === 'visible', onBattery: this.onBattery })
  }

  /** Stores a change (validated; throws VolunteerSettingsError) and applies what can apply at once. */
  update (patch: Partial<VolunteerSettings>): void {
    const next = { ...this.settings, ...patch }
    if (!saveSettings(storage(), next, this.cores, this.slot)) console.warn('volunteer settings could not be stored: they last until this tab closes')
    this.settings = next
    this.onChange()
  }
}

function storage (): Storage | undefined {
  try {
    return localStorage
  } catch {
    return undefined
  }
}

const BASE_TITLE = 'P2P AI Agents'
let baseIcon: HTMLImageElement | undefined
let shownIcon = ''

/** Tab title and favicon: a pause sign or a green dot over the app's icon while paused or working. */
export function showTabState (state: { reasons: readonly PauseReason[], running: number }): void {
  document.title = tabTitle(BASE_TITLE, state)
  const mark = state.reasons.length > 0 ? 'paused' : state.running > 0 ? 'working' : 'idle'
  if (mark === shownIcon) return
  shownIcon = mark
  const link = document.querySelector<HTMLLinkElement>('link[rel=icon]')
  if (link == null) return
  link.dataset.state = mark
  if (baseIcon == null) {
    baseIcon = new Image()
    baseIcon.src = link.href
  }
  const draw = (): void => {
    if (shownIcon !== mark) return
    const canvas = document.createElement('canvas')
    canvas.width = canvas.height = 64
    const ctx = canvas.getContext('2d')
    if (ctx == null) return
    ctx.drawImage(baseIcon!, 0, 0, 64, 64)
    if (mark === 'working') {
      ctx.fillStyle = '#4ade80'
      ctx.beginPath()
      ctx.arc(48, 48, 14, 0, 2 * Math.PI)
      ctx.fill()
    } else if (mark === 'paused') {
      ctx.fillStyle = '#fbbf24'
      ctx.beginPath()
      ctx.arc(46, 46, 17, 0, 2 * Math.PI)
      ctx.fill()
      ctx.fillStyle = '#0b1120'
      ctx.fillRect(38, 36, 5, 20)
      ctx.fillRect(49, 36, 5, 20)
    }
    link.href = canvas.toDataURL('image/png')
  }
  if (baseIcon.complete) draw()
  else baseIcon.addEventListener('load', draw, { once: true })
}

/**
 * The volunteer's settings and what the page says about the tab, as pure logic: stored settings
 * read leniently and validated on save, pause reasons, the tab title, backends and relays in
 * words, the kept results and work log bounded, and relay addresses checked before dialling.
 */
import { describe, expect, it } from 'vitest'
import { DEFAULT_SETTINGS, limits, loadSettings, needsReload, parseSettings, pausedKey, pauseReasons, saveSettings, SETTINGS_KEY, VolunteerSettingsError } from '../../src/browser/volunteer-settings.js'
import { backendsInWords, keepRelayErrors, relaysInWords, relayUnreachableWords, tabTitle } from '../../src/browser/volunteer-words.js'
import type { RelayView } from '../../src/net/relays.js'
import { isResultRow, isServedRow, loadKept, loadRows, MAX_KEPT_SERVED, saveKept, saveRows, SERVED_KEY } from '../../src/browser/volunteer-log.js'
import { checkRelayAddress, RelayAddressError } from '../../src/browser/config.js'

const RELAY_ID = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'

function memoryStorage (): Storage & { data: Map<string, string> } {
  const data = new Map<string, string>()
  return {
    data,
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => { data.set(k, v) },
    removeItem: (k: string) => { data.delete(k) },
    clear: () => { data.clear() },
    key: () => null,
    get length () { return data.size }
  }
}

describe('volunteer settings', () => {
  it('survive a save and load (a pause kept across reloads)', () => {
    const storage = memoryStorage()
    expect(loadSettings(storage, 4, 0)).toEqual({ ...DEFAULT_SETTINGS, threads: undefined })
    const chosen = { paused: true, threads: 2, slots: 3, visibleOnly: true, pauseOnBattery: true }
    expect(saveSettings(storage, chosen, 4, 0)).toBe(true)
    expect(loadSettings(storage, 4, 0)).toEqual(chosen)
  })

  it('keep a pause with the tab that paused (its identity slot), the device settings for every tab', () => {
    const storage = memoryStorage()
    saveSettings(storage, { ...DEFAULT_SETTINGS, paused: true, slots: 2 }, 4, 1)
    // The tab in slot 1 (reloaded: same slot) is paused; the browser's other tab is not, but shares the slots.
    expect(loadSettings(storage, 4, 1)).toMatchObject({ paused: true, slots: 2 })
    expect(loadSettings(storage, 4, 0)).toMatchObject({ paused: false, slots: 2 })
    // Before its slot is known a tab is not paused by someone else's pause.
    expect(loadSettings(storage, 4).paused).toBe(false)
    expect(storage.getItem(pausedKey(1))).toBe('true')
    expect(JSON.parse(storage.getItem(SETTINGS_KEY)!)).not.toHaveProperty('paused')
  })

  it('refuse slots and threads out of range on save, naming what is allowed', () => {
    const storage = memoryStorage()
    for (const bad of [{ slots: 0 }, { slots: 5 }, { slots: 1.5 }, { slots: Number.NaN }, { threads: 0 }, { threads: 9 }]) {
      expect(() => saveSettings(storage, { ...DEFAULT_SETTINGS, ...bad }, 4)).toThrow(VolunteerSettingsError)
    }
    expect(() => saveSettings(storage, { ...DEFAULT_SETTINGS, slots: 5 }, 4)).toThrow(/from 1 to 4 on this device \(got 5\)/)
    expect(storage.data.size).toBe(0)
  })

  it('read damaged or foreign stored values as defaults, field by field, never throwing', () => {
    for (const raw of ['not json', '[1,2]', 'null', '"x"', '{"paused":"yes","slots":99,"threads":-1,"visibleOnly":1}']) {
      expect(parseSettings(raw, 4)).toEqual({ paused: false, threads: undefined, slots: 1, visibleOnly: false, pauseOnBattery: false })
    }
    // Fewer cores than when saved: the slots fall back rather than overcommit the device.
    expect(parseSettings(JSON.stringify({ visibleOnly: true, slots: 8 }), 2)).toMatchObject({ visibleOnly: true, slots: 1 })
    const throwing = { getItem: () => { throw new Error('denied') }, setItem: () => { throw new Error('denied') } }
    expect(loadSettings(throwing, 4).paused).toBe(false)
    expect(saveSettings(throwing, { ...DEFAULT_SETTINGS }, 4)).toBe(false)
  })

  it('bound slots and threads by the cores, and by the caps whatever a device claims', () => {
    expect(limits(2)).toEqual({ maxSlots: 2, maxThreads: 2 })
    expect(limits(128)).toEqual({ maxSlots: 8, maxThreads: 16 })
    expect(limits(0)).toEqual({ maxSlots: 1, maxThreads: 1 })
  })

  it('pause for each reason that applies: the volunteer, a hidden tab, the battery', () => {
    const s = { ...DEFAULT_SETTINGS }
    expect(pauseReasons(s, { visible: false, onBattery: true })).toEqual([])
    expect(pauseReasons({ ...s, paused: true }, { visible: true })).toEqual(['paused by you'])
    expect(pauseReasons({ ...s, visibleOnly: true }, { visible: false })).toEqual(['this tab is hidden'])
    expect(pauseReasons({ ...s, visibleOnly: true }, { visible: true })).toEqual([])
    expect(pauseReasons({ ...s, pauseOnBattery: true }, { visible: true, onBattery: true })).toEqual(['on battery'])
    // A browser that does not say: no pause on a guess.
    expect(pauseReasons({ ...s, pauseOnBattery: true }, { visible: true })).toEqual([])
  })

  it('say when saved slots or threads wait for a reload', () => {
    expect(needsReload({ ...DEFAULT_SETTINGS, slots: 2 }, { slots: 1, threads: 2 })).toBe(true)
    expect(needsReload({ ...DEFAULT_SETTINGS, threads: 1 }, { slots: 1, threads: 2 })).toBe(true)
    expect(needsReload({ ...DEFAULT_SETTINGS }, { slots: 1, threads: 2 })).toBe(false)
  })
})

describe('the tab in words', () => {
  it('names the backends as a volunteer reads them, with why WebGPU is not used', () => {
    expect(backendsInWords([{ backend: 'wasm', threads: 2 }, { backend: 'wasm', threads: 1 }], 1, 'no WebGPU adapter'))
      .toBe('CPU (WebAssembly), 2 threads · 1 task at a time; WebGPU not available: no WebGPU adapter')
    expect(backendsInWords([{ backend: 'wasm', threads: 1 }, { backend: 'webgpu', threads: 1, adapter: 'nvidia ampere' }], 2))
      .toBe('CPU (WebAssembly), 1 thread · GPU (WebGPU, nvidia ampere) · 2 tasks at a time')
  })

  it('says the relay is unreachable and retrying, naming it and why, never "undefined"', () => {
    const addr = `/ip4/127.0.0.1/tcp/1/ws/p2p/${RELAY_ID}`
    expect(relaysInWords([{ addr, peerId: RELAY_ID, state: 'disconnected', error: undefined }], true)).toBe(`relay unreachable, retrying: ${addr} (no answer)`)
    expect(relaysInWords([{ addr, peerId: RELAY_ID, state: 'disconnected', error: 'undefined' }], true)).not.toMatch(/undefined/)
    expect(relaysInWords([{ addr, peerId: RELAY_ID, state: 'disconnected', error: 'connection refused' }], true)).toMatch(/\(connection refused\)$/)
    expect(relaysInWords([{ addr, peerId: RELAY_ID, state: 'ready' }], true)).toBe(`connected to the network through the relay at ${addr}`)
    // Starting: connecting is just that. After an outage began, a redial between failures is still the outage.
    expect(relaysInWords([{ addr, peerId: RELAY_ID, state: 'connecting' }], false)).toBe(`connecting to ${addr}…`)
    expect(relaysInWords([{ addr, peerId: RELAY_ID, state: 'connecting' }], true)).toBe(`relay unreachable, retrying: ${addr} (redialling)`)
  })

  it('words an outage the same through every redial: each relay keeps its last error, in its configured order', () => {
    const a = `/ip4/127.0.0.1/tcp/1/ws/p2p/${RELAY_ID}`
    const b = `/ip4/127.0.0.1/tcp/2/ws/p2p/${RELAY_ID}x`
    const last = new Map<string, string>()
    const words = (views: RelayView[]): string => relayUnreachableWords(keepRelayErrors(views, last))
    const failed = words([{ addr: a, peerId: 'a', state: 'disconnected', error: 'connection refused' }, { addr: b, peerId: 'b', state: 'disconnected', error: 'timed out' }])
    expect(failed).toBe(`relay unreachable, retrying: ${a} (connection refused); ${b} (timed out)`)
    // The relay set clears the error at each attempt: the words do not change while it redials.
    expect(words([{ addr: a, peerId: 'a', state: 'connecting' }, { addr: b, peerId: 'b', state: 'disconnected', error: 'timed out' }])).toBe(failed)
    expect(words([{ addr: a, peerId: 'a', state: 'disconnected', error: 'connection refused' }, { addr: b, peerId: 'b', state: 'reserving' }])).toBe(failed)
    // The status bar says the same as a blocked job.
    expect(relaysInWords(keepRelayErrors([{ addr: a, peerId: 'a', state: 'connecting' }, { addr: b, peerId: 'b', state: 'connecting' }], last), true)).toBe(failed)
    // Back: the error is forgotten, a later outage says its own.
    keepRelayErrors([{ addr: a, peerId: 'a', state: 'ready' }, { addr: b, peerId: 'b', state: 'ready' }], last)
    expect(words([{ addr: a, peerId: 'a', state: 'connecting' }])).toBe(`relay unreachable, retrying: ${a} (redialling)`)
    // A dial error with no message is "no answer", never "(undefined)"; a standby is not named.
    expect(relayUnreachableWords([{ addr: a, state: 'disconnected', error: 'undefined' }, { addr: b, state: 'standby' }])).toBe(`relay unreachable, retrying: ${a} (no answer)`)
  })

  it('puts paused (and why) or the tasks being worked on in the tab title', () => {
    expect(tabTitle('App', { reasons: [], running: 0 })).toBe('App')
    expect(tabTitle('App', { reasons: [], running: 2 })).toBe('▶ Working on 2 tasks · App')
    expect(tabTitle('App', { reasons: ['paused by you', 'on battery'], running: 1 })).toBe('⏸ Paused (paused by you, on battery) · App')
  })
})

describe('kept results and work log', () => {
  it('keep at most the cap, newest first, and skip damaged rows', () => {
    const storage = memoryStorage()
    const rows = Array.from({ length: MAX_KEPT_SERVED + 20 }, (_, i) => ({ taskId: `t${i}`, requester: 'self', model: 'digits', state: 'done' }))
    saveRows(storage, SERVED_KEY, rows, MAX_KEPT_SERVED)
    const back = loadRows(storage, SERVED_KEY, MAX_KEPT_SERVED, isServedRow)
    expect(back).toHaveLength(MAX_KEPT_SERVED)
    expect(back[0].taskId).toBe('t0')
    storage.setItem(SERVED_KEY, JSON.stringify([null, 7, { taskId: 't', requester: 'r', model: 'm', state: 'exploded' }, rows[3]]))
    expect(loadRows(storage, SERVED_KEY, MAX_KEPT_SERVED, isServedRow)).toEqual([rows[3]])
    storage.setItem(SERVED_KEY, '{broken')
    expect(loadRows(storage, SERVED_KEY, MAX_KEPT_SERVED, isServedRow)).toEqual([])
    expect(isResultRow({ taskId: 'a', target: 'any', status: 'running' })).toBe(false)
    const timings = { networkMs: 1, queueMs: 0, loadMs: 0, inferenceMs: 0.2, roundTripMs: 1.5, totalMs: 1.2 }
    const done = { taskId: 'a', target: 'any', status: 'done', prediction: 3, probs: [0.1, 0.9], worker: 'self', timings }
    expect(isResultRow(done)).toBe(true)
    // Rows the result card could not render (another version wrote them, or they were damaged) are skipped.
    expect(isResultRow({ ...done, prediction: '3' })).toBe(false)
    expect(isResultRow({ ...done, timings: { ...timings, roundTripMs: undefined } })).toBe(false)
    expect(isResultRow({ taskId: 'b', target: 'any', status: 'failed', error: 'busy: paused' })).toBe(false)
    expect(isResultRow({ taskId: 'b', target: 'any', status: 'failed', error: { code: 'busy', message: 'paused', peer: 'self' } })).toBe(true)
    expect(isServedRow({ taskId: 't', requester: 'r', model: 'm', state: 'done', timings: {} })).toBe(false)
  })

  it('keep each tab\'s rows under its identity slot: two tabs of one browser never overwrite each other, a reloaded tab reads its own', () => {
    const storage = memoryStorage()
    const row = (taskId: string): object => ({ taskId, requester: 'peerX', model: 'digits', state: 'done' })
    const result = (taskId: string): object => ({ taskId, target: 'any', status: 'failed', error: { code: 'busy', message: 'paused' } })
    expect(saveKept(storage, 0, { results: [result('r0')], served: [row('a1'), row('a0')] })).toBe(true)
    expect(saveKept(storage, 1, { results: [result('r1')], served: [row('b0')] })).toBe(true)
    expect(loadKept(storage, 0)).toEqual({ results: [result('r0')], served: [row('a1'), row('a0')] })
    expect(loadKept(storage, 1)).toEqual({ results: [result('r1')], served: [row('b0')] })
    expect(loadKept(storage, 2)).toEqual({ results: [], served: [] })
  })
})

describe('relay addresses', () => {
  it('accepts a WebSocket multiaddr ending with the relay peer id', () => {
    const ok = `/ip4/127.0.0.1/tcp/9090/ws/p2p/${RELAY_ID}`
    expect(checkRelayAddress(ok)).toBe(ok)
    expect(checkRelayAddress(`/dns4/relay.example.org/tcp/443/wss/p2p/${RELAY_ID}`)).toMatch(/wss/)
  })

  it('names a wrong value and says what a relay address looks like', () => {
    const cases: Array<[string, RegExp]> = [
      ['hello', /relay address "hello" is not a multiaddr/],
      [`/ip4/127.0.0.1/tcp/99999/ws/p2p/${RELAY_ID}`, /is not a multiaddr/],
      [`/ip4/127.0.0.1/tcp/9090/p2p/${RELAY_ID}`, /has no \/ws or \/wss part/],
      ['/ip4/127.0.0.1/tcp/9090/ws', /does not end with \/p2p\//],
      ['/ip4/127.0.0.1/tcp/9090/ws/p2p/QmNotAPeerId', /"QmNotAPeerId", which is not a peer id|is not a multiaddr/]
    ]
    for (const [text, message] of cases) {
      expect(() => checkRelayAddress(text)).toThrow(RelayAddressError)
      expect(() => checkRelayAddress(text)).toThrow(message)
      expect(() => checkRelayAddress(text)).toThrow(/a relay address looks like \/ip4\/.*\/ws\/p2p\//)
    }
  })
})


/** Capability adverts: what a worker tells requesters, and how requesters read it. */
import { describe, expect, it } from 'vitest'
import { canRun, decodeAdvert, encodeAdvert, hasModel, NOT_A_WORKER } from '../../src/core/discovery/advert.js'
import { failure } from '../helpers/errors.js'
import type { Advert } from '../../src/core/discovery/advert.js'

const sha = (n: number): string => n.toString(16).padStart(64, '0')

const worker: Advert = {
  worker: true,
  paused: false,
  backend: 'wasm simd 2 threads | wasm simd 1 thread',
  threads: 2,
  slots: 2,
  freeSlots: 1,
  models: [sha(1), sha(2)],
  cached: [sha(1)],
  speeds: { [sha(1)]: 0.25 },
  maxModelBytes: 256 * 1024 * 1024,
  backends: { [sha(1)]: 'wasm simd 1 thread' }
}

describe('adverts', () => {
  it('round-trip every field, the model size cap and the chosen backends included', () => {
    expect(decodeAdvert(encodeAdvert(worker))).toEqual(worker)
    expect(decodeAdvert(encodeAdvert(NOT_A_WORKER))).toEqual(NOT_A_WORKER)
  })

  it('keep the first 256 models of a long cache, so a receiver never rejects the advert', () => {
    const many = { ...worker, models: Array.from({ length: 300 }, (_, i) => sha(i)) }
    const back = decodeAdvert(encodeAdvert(many))
    expect(back.models).toHaveLength(256)
    expect(back.models.slice(0, 2)).toEqual([sha(0), sha(1)])
  })

  it('reject a malformed advert with a clear error', () => {
    expect(failure(() => decodeAdvert(new Uint8Array([0x3a, 0xff, 0xff])))).toMatch(/^bad-request: malformed advert/)
  })

  it('say who can run a model: it has it, or fetches models that large; never when paused', () => {
    expect(canRun(worker, sha(2), 1e9)).toBe(true) // has it
    expect(canRun(worker, sha(9), 1000)).toBe(true) // would fetch it
    expect(canRun(worker, sha(9), 1e9)).toBe(false) // too big to fetch
    expect(canRun({ ...worker, paused: true }, sha(1), 1)).toBe(false)
    expect(canRun({ ...worker, maxModelBytes: 0 }, sha(9), 1)).toBe(false)
    expect(canRun(NOT_A_WORKER, sha(1), 1)).toBe(false)
    expect(hasModel(worker, sha(2))).toBe(true)
    expect(hasModel(worker, sha(9))).toBe(false)
  })
})

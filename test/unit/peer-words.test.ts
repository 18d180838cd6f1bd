import { describe, expect, it } from 'vitest'
import { backendWords, kindWords, loadWords, modelName, msWords } from '../../src/ui/dashboard/peer-words.js'
import { NOT_A_WORKER } from '../../src/core/discovery/advert.js'
import { builtinModel } from '../../src/models/catalog.js'
import type { Advert } from '../../src/core/discovery/advert.js'

const worker = (over: Partial<Advert>): Advert => ({ ...NOT_A_WORKER, kind: 'tab', worker: true, slots: 2, freeSlots: 2, threads: 2, ...over })

describe('peer words', () => {
  it('says what computes in plain words, not the engine labels', () => {
    expect(backendWords(worker({ backend: 'wasm simd 2 threads | wasm simd 1 thread' }))).toBe('CPU (WASM), 2 threads')
    expect(backendWords(worker({ kind: 'node', backend: 'onnxruntime-node cpu 2 threads | onnxruntime-node cpu 1 thread' }))).toBe('CPU (Node), 2 threads')
    expect(backendWords(worker({ backend: 'wasm simd 1 thread', threads: 1 }))).toBe('CPU (WASM), 1 thread')
    expect(backendWords(worker({ backend: 'webgpu (apple m2)', threads: 1 }))).toBe('WebGPU')
    expect(backendWords(worker({ backend: 'wasm simd 4 threads | wasm simd 1 thread | webgpu (nvidia)', threads: 4 }))).toBe('WebGPU + CPU (WASM), 4 threads')
    expect(backendWords(worker({ backend: 'wasm simd 4 threads | webgpu (nvidia)', threads: 4, backends: { ['a'.repeat(64)]: 'webgpu (nvidia)' } })))
      .toBe('WebGPU (fastest for 1 model) + CPU (WASM), 4 threads')
    expect(backendWords(undefined)).toBe('—')
    expect(backendWords({ ...NOT_A_WORKER, kind: 'tab' })).toBe('—')
  })

  it('names kinds: tab, Node worker, requester only, relay', () => {
    expect(kindWords(worker({ kind: 'tab' }))).toBe('tab')
    expect(kindWords(worker({ kind: 'node' }))).toBe('Node worker')
    expect(kindWords({ ...NOT_A_WORKER, kind: 'node' })).toBe('Node (requester only)')
    expect(kindWords({ ...NOT_A_WORKER, kind: 'relay' })).toBe('relay')
    expect(kindWords(undefined)).toMatch(/unknown/)
  })

  it('tells load as running tasks of execution slots, the pipelined credit apart', () => {
    // A Node worker with 1 slot advertises 2 credits (1 slot + 1 queued): "1 slot", not "2/2 free".
    expect(loadWords(worker({ slots: 2, freeSlots: 2 }))).toBe('idle, 1 slot')
    expect(loadWords(worker({ slots: 2, freeSlots: 1 }))).toBe('1 running of 1 slot')
    expect(loadWords(worker({ slots: 2, freeSlots: 0 }))).toBe('1 running of 1 slot (+1 queued)')
    expect(loadWords(worker({ slots: 3, freeSlots: 1 }))).toBe('2 running of 2 slots')
    expect(loadWords(worker({ paused: true }))).toBe('paused')
  })

  it('names built-in models and shortens the others', () => {
    expect(modelName(builtinModel('digits').sha256)).toBe('digits')
    expect(modelName('ab'.repeat(32))).toBe('abababab…')
    expect(msWords(0.42)).toBe('0.4 ms')
    expect(msWords(123.4)).toBe('123 ms')
    expect(msWords(2500)).toBe('2.5 s')
    expect(msWords(undefined)).toBe('—')
  })
})

import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ModelSpeed {
  sha256: string
  ms: number
}

export namespace ModelSpeed {
  let _codec: Codec<ModelSpeed>

  export const codec = (): Codec<ModelSpeed> => {
    if (_codec == null) {
      _codec = message<ModelSpeed>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.sha256 != null && obj.sha256 !== '')) {
          w.uint32(10)
          w.string(obj.sha256)
        }

        if ((obj.ms != null && obj.ms !== 0)) {
          w.uint32(17)
          w.double(obj.ms)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          sha256: '',
          ms: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.sha256 = reader.string()
              break
            }
            case 2: {
              obj.ms = reader.double()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.sha256`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.ms`,
                value: reader.double()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ModelSpeedSha256FieldEvent {
    field: '$.sha256'
    value: string
  }

  export interface ModelSpeedMsFieldEvent {
    field: '$.ms'
    value: number
  }

  export function encode (obj: Partial<ModelSpeed>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelSpeed.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelSpeed>): ModelSpeed {
    return decodeMessage(buf, ModelSpeed.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelSpeed>): Generator<ModelSpeedSha256FieldEvent | ModelSpeedMsFieldEvent> {
    return streamMessage(buf, ModelSpeed.codec(), opts)
  }
}

export interface ModelBackend {
  sha256: string
  backend: string
}

export namespace ModelBackend {
  let _codec: Codec<ModelBackend>

  export const codec = (): Codec<ModelBackend> => {
    if (_codec == null) {
      _codec = message<ModelBackend>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.sha256 != null && obj.sha256 !== '')) {
          w.uint32(10)
          w.string(obj.sha256)
        }

        if ((obj.backend != null && obj.backend !== '')) {
          w.uint32(18)
          w.string(obj.backend)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          sha256: '',
          backend: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.sha256 = reader.string()
              break
            }
            case 2: {
              obj.backend = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.sha256`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.backend`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ModelBackendSha256FieldEvent {
    field: '$.sha256'
    value: string
  }

  export interface ModelBackendBackendFieldEvent {
    field: '$.backend'
    value: string
  }

  export function encode (obj: Partial<ModelBackend>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelBackend.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelBackend>): ModelBackend {
    return decodeMessage(buf, ModelBackend.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelBackend>): Generator<ModelBackendSha256FieldEvent | ModelBackendBackendFieldEvent> {
    return streamMessage(buf, ModelBackend.codec(), opts)
  }
}

export interface Advert {
  worker: boolean
  paused: boolean
  backend: string
  threads: number
  slots: number
  freeSlots: number
  models: string[]
  cached: string[]
  speeds: ModelSpeed[]
  maxModelBytes: bigint
  backends: ModelBackend[]
}

export namespace Advert {
  let _codec: Codec<Advert>

  export const codec = (): Codec<Advert> => {
    if (_codec == null) {
      _codec = message<Advert>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.worker != null && obj.worker !== false)) {
          w.uint32(8)
          w.bool(obj.worker)
        }

        if ((obj.paused != null && obj.paused !== false)) {
          w.uint32(16)
          w.bool(obj.paused)
        }

        if ((obj.backend != null && obj.backend !== '')) {
          w.uint32(26)
          w.string(obj.backend)
        }

        if ((obj.threads != null && obj.threads !== 0)) {
          w.uint32(32)
          w.uint32(obj.threads)
        }

        if ((obj.slots != null && obj.slots !== 0)) {
          w.uint32(40)
          w.uint32(obj.slots)
        }

        if ((obj.freeSlots != null && obj.freeSlots !== 0)) {
          w.uint32(48)
          w.uint32(obj.freeSlots)
        }

        if (obj.models != null && obj.models.length > 0) {
          for (const value of obj.models) {
            w.uint32(58)
            w.string(value)
          }
        }

        if (obj.cached != null && obj.cached.length > 0) {
          for (const value of obj.cached) {
            w.uint32(66)
            w.string(value)
          }
        }

        if (obj.speeds != null && obj.speeds.length > 0) {
          for (const value of obj.speeds) {
            w.uint32(74)
            ModelSpeed.codec().encode(value, w)
          }
        }

        if ((obj.maxModelBytes != null && obj.maxModelBytes !== 0n)) {
          w.uint32(80)
          w.uint64(obj.maxModelBytes)
        }

        if (obj.backends != null && obj.backends.length > 0) {
          for (const value of obj.backends) {
            w.uint32(90)
            ModelBackend.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          worker: false,
          paused: false,
          backend: '',
          threads: 0,
          slots: 0,
          freeSlots: 0,
          models: [],
          cached: [],
          speeds: [],
          maxModelBytes: 0n,
          backends: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.worker = reader.bool()
              break
            }
            case 2: {
              obj.paused = reader.bool()
              break
            }
            case 3: {
              obj.backend = reader.string()
              break
            }
            case 4: {
              obj.threads = reader.uint32()
              break
            }
            case 5: {
              obj.slots = reader.uint32()
              break
            }
            case 6: {
              obj.freeSlots = reader.uint32()
              break
            }
            case 7: {
              if (opts.limits?.models != null && obj.models.length === opts.limits.models) {
                throw new MaxLengthError('Decode error - repeated field "models" had too many elements')
              }

              obj.models.push(reader.string())
              break
            }
            case 8: {
              if (opts.limits?.cached != null && obj.cached.length === opts.limits.cached) {
                throw new MaxLengthError('Decode error - repeated field "cached" had too many elements')
              }

              obj.cached.push(reader.string())
              break
            }
            case 9: {
              if (opts.limits?.speeds != null && obj.speeds.length === opts.limits.speeds) {
                throw new MaxLengthError('Decode error - repeated field "speeds" had too many elements')
              }

              obj.speeds.push(ModelSpeed.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.speeds$
              }))
              break
            }
            case 10: {
              obj.maxModelBytes = reader.uint64()
              break
            }
            case 11: {
              if (opts.limits?.backends != null && obj.backends.length === opts.limits.backends) {
                throw new MaxLengthError('Decode error - repeated field "backends" had too many elements')
              }

              obj.backends.push(ModelBackend.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.backends$
              }))
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          models: 0,
          cached: 0,
          speeds: 0,
          backends: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.worker`,
                value: reader.bool()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.paused`,
                value: reader.bool()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.backend`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.threads`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.slots`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.freeSlots`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              if (opts.limits?.models != null && obj.models === opts.limits.models) {
                throw new MaxLengthError('Streaming decode error - repeated field "models" had too many elements')
              }

              yield {
                field: `${prefix}.models[]`,
                index: obj.models,
                value: reader.string()
              }

              obj.models++

              break
            }
            case 8: {
              if (opts.limits?.cached != null && obj.cached === opts.limits.cached) {
                throw new MaxLengthError('Streaming decode error - repeated field "cached" had too many elements')
              }

              yield {
                field: `${prefix}.cached[]`,
                index: obj.cached,
                value: reader.string()
              }

              obj.cached++

              break
            }
            case 9: {
              if (opts.limits?.speeds != null && obj.speeds === opts.limits.speeds) {
                throw new MaxLengthError('Streaming decode error - repeated field "speeds" had too many elements')
              }

              for (const evt of ModelSpeed.codec().stream(reader, reader.uint32(), `${prefix}.speeds[]`, {
                limits: opts.limits?.speeds$
              })) {
                yield {
                  ...evt,
                  index: obj.speeds
                }
              }

              obj.speeds++

              break
            }
            case 10: {
              yield {
                field: `${prefix}.maxModelBytes`,
                value: reader.uint64()
              }
              break
            }
            case 11: {
              if (opts.limits?.backends != null && obj.backends === opts.limits.backends) {
                throw new MaxLengthError('Streaming decode error - repeated field "backends" had too many elements')
              }

              for (const evt of ModelBackend.codec().stream(reader, reader.uint32(), `${prefix}.backends[]`, {
                limits: opts.limits?.backends$
              })) {
                yield {
                  ...evt,
                  index: obj.backends
                }
              }

              obj.backends++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface AdvertWorkerFieldEvent {
    field: '$.worker'
    value: boolean
  }

  export interface AdvertPausedFieldEvent {
    field: '$.paused'
    value: boolean
  }

  export interface AdvertBackendFieldEvent {
    field: '$.backend'
    value: string
  }

  export interface AdvertThreadsFieldEvent {
    field: '$.threads'
    value: number
  }

  export interface AdvertSlotsFieldEvent {
    field: '$.slots'
    value: number
  }

  export interface AdvertFreeSlotsFieldEvent {
    field: '$.freeSlots'
    value: number
  }

  export interface AdvertModelsFieldEvent {
    field: '$.models[]'
    index: number
    value: string
  }

  export interface AdvertCachedFieldEvent {
    field: '$.cached[]'
    index: number
    value: string
  }

  export interface AdvertSpeedsSha256FieldEvent {
    field: '$.speeds[].sha256'
    value: string
    index: number
  }

  export interface AdvertSpeedsMsFieldEvent {
    field: '$.speeds[].ms'
    value: number
    index: number
  }

  export interface AdvertMaxModelBytesFieldEvent {
    field: '$.maxModelBytes'
    value: bigint
  }

  export interface AdvertBackendsSha256FieldEvent {
    field: '$.backends[].sha256'
    value: string
    index: number
  }

  export interface AdvertBackendsBackendFieldEvent {
    field: '$.backends[].backend'
    value: string
    index: number
  }

  export function encode (obj: Partial<Advert>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Advert.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Advert>): Advert {
    return decodeMessage(buf, Advert.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Advert>): Generator<AdvertWorkerFieldEvent | AdvertPausedFieldEvent | AdvertBackendFieldEvent | AdvertThreadsFieldEvent | AdvertSlotsFieldEvent | AdvertFreeSlotsFieldEvent | AdvertModelsFieldEvent | AdvertCachedFieldEvent | AdvertSpeedsSha256FieldEvent | AdvertSpeedsMsFieldEvent | AdvertMaxModelBytesFieldEvent | AdvertBackendsSha256FieldEvent | AdvertBackendsBackendFieldEvent> {
    return streamMessage(buf, Advert.codec(), opts)
  }
}

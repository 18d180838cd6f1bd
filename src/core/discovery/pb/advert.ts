import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ModelInfo {
  sha256: Uint8Array<ArrayBuffer>
  loaded: boolean
  ms: number
  backend: string
}

export namespace ModelInfo {
  let _codec: Codec<ModelInfo>

  export const codec = (): Codec<ModelInfo> => {
    if (_codec == null) {
      _codec = message<ModelInfo>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.sha256 != null && obj.sha256.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.sha256)
        }

        if ((obj.loaded != null && obj.loaded !== false)) {
          w.uint32(16)
          w.bool(obj.loaded)
        }

        if ((obj.ms != null && obj.ms !== 0)) {
          w.uint32(29)
          w.float(obj.ms)
        }

        if ((obj.backend != null && obj.backend !== '')) {
          w.uint32(34)
          w.string(obj.backend)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          sha256: uint8ArrayAlloc(0),
          loaded: false,
          ms: 0,
          backend: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.sha256 = reader.bytes()
              break
            }
            case 2: {
              obj.loaded = reader.bool()
              break
            }
            case 3: {
              obj.ms = reader.float()
              break
            }
            case 4: {
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
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.loaded`,
                value: reader.bool()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.ms`,
                value: reader.float()
              }
              break
            }
            case 4: {
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

  export interface ModelInfoSha256FieldEvent {
    field: '$.sha256'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ModelInfoLoadedFieldEvent {
    field: '$.loaded'
    value: boolean
  }

  export interface ModelInfoMsFieldEvent {
    field: '$.ms'
    value: number
  }

  export interface ModelInfoBackendFieldEvent {
    field: '$.backend'
    value: string
  }

  export function encode (obj: Partial<ModelInfo>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelInfo.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelInfo>): ModelInfo {
    return decodeMessage(buf, ModelInfo.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelInfo>): Generator<ModelInfoSha256FieldEvent | ModelInfoLoadedFieldEvent | ModelInfoMsFieldEvent | ModelInfoBackendFieldEvent> {
    return streamMessage(buf, ModelInfo.codec(), opts)
  }
}

export interface AdvertBody {
  seq: bigint
  kind: number
  addrs: Uint8Array<ArrayBuffer>[]
  leaving: boolean
  worker: boolean
  paused: boolean
  backend: string
  threads: number
  slots: number
  freeSlots: number
  maxModelBytes: bigint
  models: ModelInfo[]
  tasksDone: bigint
  tasksFailed: bigint
  queueDepth: number
}

export namespace AdvertBody {
  let _codec: Codec<AdvertBody>

  export const codec = (): Codec<AdvertBody> => {
    if (_codec == null) {
      _codec = message<AdvertBody>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(8)
          w.uint64(obj.seq)
        }

        if ((obj.kind != null && obj.kind !== 0)) {
          w.uint32(16)
          w.uint32(obj.kind)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(26)
            w.bytes(value)
          }
        }

        if ((obj.leaving != null && obj.leaving !== false)) {
          w.uint32(32)
          w.bool(obj.leaving)
        }

        if ((obj.worker != null && obj.worker !== false)) {
          w.uint32(40)
          w.bool(obj.worker)
        }

        if ((obj.paused != null && obj.paused !== false)) {
          w.uint32(48)
          w.bool(obj.paused)
        }

        if ((obj.backend != null && obj.backend !== '')) {
          w.uint32(58)
          w.string(obj.backend)
        }

        if ((obj.threads != null && obj.threads !== 0)) {
          w.uint32(64)
          w.uint32(obj.threads)
        }

        if ((obj.slots != null && obj.slots !== 0)) {
          w.uint32(72)
          w.uint32(obj.slots)
        }

        if ((obj.freeSlots != null && obj.freeSlots !== 0)) {
          w.uint32(80)
          w.uint32(obj.freeSlots)
        }

        if ((obj.maxModelBytes != null && obj.maxModelBytes !== 0n)) {
          w.uint32(88)
          w.uint64(obj.maxModelBytes)
        }

        if (obj.models != null && obj.models.length > 0) {
          for (const value of obj.models) {
            w.uint32(98)
            ModelInfo.codec().encode(value, w)
          }
        }

        if ((obj.tasksDone != null && obj.tasksDone !== 0n)) {
          w.uint32(104)
          w.uint64(obj.tasksDone)
        }

        if ((obj.tasksFailed != null && obj.tasksFailed !== 0n)) {
          w.uint32(112)
          w.uint64(obj.tasksFailed)
        }

        if ((obj.queueDepth != null && obj.queueDepth !== 0)) {
          w.uint32(120)
          w.uint32(obj.queueDepth)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          seq: 0n,
          kind: 0,
          addrs: [],
          leaving: false,
          worker: false,
          paused: false,
          backend: '',
          threads: 0,
          slots: 0,
          freeSlots: 0,
          maxModelBytes: 0n,
          models: [],
          tasksDone: 0n,
          tasksFailed: 0n,
          queueDepth: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.seq = reader.uint64()
              break
            }
            case 2: {
              obj.kind = reader.uint32()
              break
            }
            case 3: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            case 4: {
              obj.leaving = reader.bool()
              break
            }
            case 5: {
              obj.worker = reader.bool()
              break
            }
            case 6: {
              obj.paused = reader.bool()
              break
            }
            case 7: {
              obj.backend = reader.string()
              break
            }
            case 8: {
              obj.threads = reader.uint32()
              break
            }
            case 9: {
              obj.slots = reader.uint32()
              break
            }
            case 10: {
              obj.freeSlots = reader.uint32()
              break
            }
            case 11: {
              obj.maxModelBytes = reader.uint64()
              break
            }
            case 12: {
              if (opts.limits?.models != null && obj.models.length === opts.limits.models) {
                throw new MaxLengthError('Decode error - repeated field "models" had too many elements')
              }

              obj.models.push(ModelInfo.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.models$
              }))
              break
            }
            case 13: {
              obj.tasksDone = reader.uint64()
              break
            }
            case 14: {
              obj.tasksFailed = reader.uint64()
              break
            }
            case 15: {
              obj.queueDepth = reader.uint32()
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
          addrs: 0,
          models: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.kind`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.bytes()
              }

              obj.addrs++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.leaving`,
                value: reader.bool()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.worker`,
                value: reader.bool()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.paused`,
                value: reader.bool()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.backend`,
                value: reader.string()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.threads`,
                value: reader.uint32()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.slots`,
                value: reader.uint32()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.freeSlots`,
                value: reader.uint32()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.maxModelBytes`,
                value: reader.uint64()
              }
              break
            }
            case 12: {
              if (opts.limits?.models != null && obj.models === opts.limits.models) {
                throw new MaxLengthError('Streaming decode error - repeated field "models" had too many elements')
              }

              for (const evt of ModelInfo.codec().stream(reader, reader.uint32(), `${prefix}.models[]`, {
                limits: opts.limits?.models$
              })) {
                yield {
                  ...evt,
                  index: obj.models
                }
              }

              obj.models++

              break
            }
            case 13: {
              yield {
                field: `${prefix}.tasksDone`,
                value: reader.uint64()
              }
              break
            }
            case 14: {
              yield {
                field: `${prefix}.tasksFailed`,
                value: reader.uint64()
              }
              break
            }
            case 15: {
              yield {
                field: `${prefix}.queueDepth`,
                value: reader.uint32()
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

  export interface AdvertBodySeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface AdvertBodyKindFieldEvent {
    field: '$.kind'
    value: number
  }

  export interface AdvertBodyAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface AdvertBodyLeavingFieldEvent {
    field: '$.leaving'
    value: boolean
  }

  export interface AdvertBodyWorkerFieldEvent {
    field: '$.worker'
    value: boolean
  }

  export interface AdvertBodyPausedFieldEvent {
    field: '$.paused'
    value: boolean
  }

  export interface AdvertBodyBackendFieldEvent {
    field: '$.backend'
    value: string
  }

  export interface AdvertBodyThreadsFieldEvent {
    field: '$.threads'
    value: number
  }

  export interface AdvertBodySlotsFieldEvent {
    field: '$.slots'
    value: number
  }

  export interface AdvertBodyFreeSlotsFieldEvent {
    field: '$.freeSlots'
    value: number
  }

  export interface AdvertBodyMaxModelBytesFieldEvent {
    field: '$.maxModelBytes'
    value: bigint
  }

  export interface AdvertBodyModelsSha256FieldEvent {
    field: '$.models[].sha256'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface AdvertBodyModelsLoadedFieldEvent {
    field: '$.models[].loaded'
    value: boolean
    index: number
  }

  export interface AdvertBodyModelsMsFieldEvent {
    field: '$.models[].ms'
    value: number
    index: number
  }

  export interface AdvertBodyModelsBackendFieldEvent {
    field: '$.models[].backend'
    value: string
    index: number
  }

  export interface AdvertBodyTasksDoneFieldEvent {
    field: '$.tasksDone'
    value: bigint
  }

  export interface AdvertBodyTasksFailedFieldEvent {
    field: '$.tasksFailed'
    value: bigint
  }

  export interface AdvertBodyQueueDepthFieldEvent {
    field: '$.queueDepth'
    value: number
  }

  export function encode (obj: Partial<AdvertBody>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, AdvertBody.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AdvertBody>): AdvertBody {
    return decodeMessage(buf, AdvertBody.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AdvertBody>): Generator<AdvertBodySeqFieldEvent | AdvertBodyKindFieldEvent | AdvertBodyAddrsFieldEvent | AdvertBodyLeavingFieldEvent | AdvertBodyWorkerFieldEvent | AdvertBodyPausedFieldEvent | AdvertBodyBackendFieldEvent | AdvertBodyThreadsFieldEvent | AdvertBodySlotsFieldEvent | AdvertBodyFreeSlotsFieldEvent | AdvertBodyMaxModelBytesFieldEvent | AdvertBodyModelsSha256FieldEvent | AdvertBodyModelsLoadedFieldEvent | AdvertBodyModelsMsFieldEvent | AdvertBodyModelsBackendFieldEvent | AdvertBodyTasksDoneFieldEvent | AdvertBodyTasksFailedFieldEvent | AdvertBodyQueueDepthFieldEvent> {
    return streamMessage(buf, AdvertBody.codec(), opts)
  }
}

export interface SignedAdvert {
  publicKey: Uint8Array<ArrayBuffer>
  body: Uint8Array<ArrayBuffer>
  signature: Uint8Array<ArrayBuffer>
}

export namespace SignedAdvert {
  let _codec: Codec<SignedAdvert>

  export const codec = (): Codec<SignedAdvert> => {
    if (_codec == null) {
      _codec = message<SignedAdvert>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.publicKey != null && obj.publicKey.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.publicKey)
        }

        if ((obj.body != null && obj.body.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.body)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          publicKey: uint8ArrayAlloc(0),
          body: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.publicKey = reader.bytes()
              break
            }
            case 2: {
              obj.body = reader.bytes()
              break
            }
            case 3: {
              obj.signature = reader.bytes()
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
                field: `${prefix}.publicKey`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.body`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
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

  export interface SignedAdvertPublicKeyFieldEvent {
    field: '$.publicKey'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedAdvertBodyFieldEvent {
    field: '$.body'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedAdvertSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<SignedAdvert>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SignedAdvert.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedAdvert>): SignedAdvert {
    return decodeMessage(buf, SignedAdvert.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedAdvert>): Generator<SignedAdvertPublicKeyFieldEvent | SignedAdvertBodyFieldEvent | SignedAdvertSignatureFieldEvent> {
    return streamMessage(buf, SignedAdvert.codec(), opts)
  }
}

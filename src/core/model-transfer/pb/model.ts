import { decodeMessage, encodeMessage, message, streamMessage } from 'protons-runtime'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ModelRequest {
  sha256: string
  offset: bigint
}

export namespace ModelRequest {
  let _codec: Codec<ModelRequest>

  export const codec = (): Codec<ModelRequest> => {
    if (_codec == null) {
      _codec = message<ModelRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.sha256 != null && obj.sha256 !== '')) {
          w.uint32(10)
          w.string(obj.sha256)
        }

        if ((obj.offset != null && obj.offset !== 0n)) {
          w.uint32(16)
          w.uint64(obj.offset)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          sha256: '',
          offset: 0n
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
              obj.offset = reader.uint64()
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
                field: `${prefix}.offset`,
                value: reader.uint64()
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

  export interface ModelRequestSha256FieldEvent {
    field: '$.sha256'
    value: string
  }

  export interface ModelRequestOffsetFieldEvent {
    field: '$.offset'
    value: bigint
  }

  export function encode (obj: Partial<ModelRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelRequest>): ModelRequest {
    return decodeMessage(buf, ModelRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelRequest>): Generator<ModelRequestSha256FieldEvent | ModelRequestOffsetFieldEvent> {
    return streamMessage(buf, ModelRequest.codec(), opts)
  }
}

export interface ModelHeader {
  size: bigint
}

export namespace ModelHeader {
  let _codec: Codec<ModelHeader>

  export const codec = (): Codec<ModelHeader> => {
    if (_codec == null) {
      _codec = message<ModelHeader>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.size != null && obj.size !== 0n)) {
          w.uint32(8)
          w.uint64(obj.size)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          size: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.size = reader.uint64()
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
                field: `${prefix}.size`,
                value: reader.uint64()
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

  export interface ModelHeaderSizeFieldEvent {
    field: '$.size'
    value: bigint
  }

  export function encode (obj: Partial<ModelHeader>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelHeader.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelHeader>): ModelHeader {
    return decodeMessage(buf, ModelHeader.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelHeader>): Generator<ModelHeaderSizeFieldEvent> {
    return streamMessage(buf, ModelHeader.codec(), opts)
  }
}

export interface ModelError {
  code: string
  message: string
}

export namespace ModelError {
  let _codec: Codec<ModelError>

  export const codec = (): Codec<ModelError> => {
    if (_codec == null) {
      _codec = message<ModelError>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.code != null && obj.code !== '')) {
          w.uint32(10)
          w.string(obj.code)
        }

        if ((obj.message != null && obj.message !== '')) {
          w.uint32(18)
          w.string(obj.message)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          code: '',
          message: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.code = reader.string()
              break
            }
            case 2: {
              obj.message = reader.string()
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
                field: `${prefix}.code`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.message`,
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

  export interface ModelErrorCodeFieldEvent {
    field: '$.code'
    value: string
  }

  export interface ModelErrorMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export function encode (obj: Partial<ModelError>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelError.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelError>): ModelError {
    return decodeMessage(buf, ModelError.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelError>): Generator<ModelErrorCodeFieldEvent | ModelErrorMessageFieldEvent> {
    return streamMessage(buf, ModelError.codec(), opts)
  }
}

export interface ModelReply {
  header?: ModelHeader
  chunk?: Uint8Array<ArrayBuffer>
  error?: ModelError
}

export namespace ModelReply {
  let _codec: Codec<ModelReply>

  export const codec = (): Codec<ModelReply> => {
    if (_codec == null) {
      _codec = message<ModelReply>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.header != null) {
          w.uint32(10)
          ModelHeader.codec().encode(obj.header, w)
        }

        if (obj.chunk != null) {
          w.uint32(18)
          w.bytes(obj.chunk)
        }

        if (obj.error != null) {
          w.uint32(26)
          ModelError.codec().encode(obj.error, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.header = ModelHeader.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.header
              })
              break
            }
            case 2: {
              obj.chunk = reader.bytes()
              break
            }
            case 3: {
              obj.error = ModelError.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.error
              })
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
              yield * ModelHeader.codec().stream(reader, reader.uint32(), `${prefix}.header`, {
                limits: opts.limits?.header
              })

              break
            }
            case 2: {
              yield {
                field: `${prefix}.chunk`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield * ModelError.codec().stream(reader, reader.uint32(), `${prefix}.error`, {
                limits: opts.limits?.error
              })

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

  export interface ModelReplyHeaderSizeFieldEvent {
    field: '$.header.size'
    value: bigint
  }

  export interface ModelReplyChunkFieldEvent {
    field: '$.chunk'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ModelReplyErrorCodeFieldEvent {
    field: '$.error.code'
    value: string
  }

  export interface ModelReplyErrorMessageFieldEvent {
    field: '$.error.message'
    value: string
  }

  export function encode (obj: Partial<ModelReply>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelReply.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelReply>): ModelReply {
    return decodeMessage(buf, ModelReply.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelReply>): Generator<ModelReplyHeaderSizeFieldEvent | ModelReplyChunkFieldEvent | ModelReplyErrorCodeFieldEvent | ModelReplyErrorMessageFieldEvent> {
    return streamMessage(buf, ModelReply.codec(), opts)
  }
}

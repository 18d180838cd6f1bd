import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, ParseError, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export enum DType {
  DTYPE_UNSPECIFIED = 'DTYPE_UNSPECIFIED',
  FLOAT32 = 'FLOAT32',
  FLOAT64 = 'FLOAT64',
  FLOAT16 = 'FLOAT16',
  INT8 = 'INT8',
  INT16 = 'INT16',
  INT32 = 'INT32',
  INT64 = 'INT64',
  UINT8 = 'UINT8',
  UINT16 = 'UINT16',
  UINT32 = 'UINT32',
  UINT64 = 'UINT64',
  BOOL = 'BOOL'
}

enum __DTypeValues {
  DTYPE_UNSPECIFIED = 0,
  FLOAT32 = 1,
  FLOAT64 = 2,
  FLOAT16 = 3,
  INT8 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  UINT8 = 8,
  UINT16 = 9,
  UINT32 = 10,
  UINT64 = 11,
  BOOL = 12
}

export namespace DType {
  export const codec = (): Codec<DType> => {
    return enumeration<DType>(__DTypeValues)
  }
}

export interface Tensor {
  name: string
  dtype: DType
  dims: number[]
  data: Uint8Array<ArrayBuffer>
}

export namespace Tensor {
  let _codec: Codec<Tensor>

  export const codec = (): Codec<Tensor> => {
    if (_codec == null) {
      _codec = message<Tensor>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(10)
          w.string(obj.name)
        }

        if (obj.dtype != null && __DTypeValues[obj.dtype] !== 0) {
          w.uint32(16)
          DType.codec().encode(obj.dtype, w)
        }

        if (obj.dims != null && obj.dims.length > 0) {
          for (const value of obj.dims) {
            w.uint32(24)
            w.uint32(value)
          }
        }

        if ((obj.data != null && obj.data.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.data)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          name: '',
          dtype: DType.DTYPE_UNSPECIFIED,
          dims: [],
          data: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.name = reader.string()
              break
            }
            case 2: {
              obj.dtype = DType.codec().decode(reader)
              break
            }
            case 3: {
              // proto3 writers pack repeated scalars by default; parsers must accept both forms
              if ((tag & 7) === 2) {
                const packedEnd = reader.uint32() + reader.pos

                if (packedEnd > end) {
                  throw new ParseError('Decode error - packed field "dims" reaches past its message')
                }

                while (reader.pos < packedEnd) {
                  if (opts.limits?.dims != null && obj.dims.length === opts.limits.dims) {
                    throw new MaxLengthError('Decode error - repeated field "dims" had too many elements')
                  }

                  obj.dims.push(reader.uint32())
                }

                if (reader.pos !== packedEnd) {
                  throw new ParseError('Decode error - packed field "dims" overruns its length')
                }

                break
              }

              if (opts.limits?.dims != null && obj.dims.length === opts.limits.dims) {
                throw new MaxLengthError('Decode error - repeated field "dims" had too many elements')
              }

              obj.dims.push(reader.uint32())
              break
            }
            case 4: {
              obj.data = reader.bytes()
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
          dims: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.dtype`,
                value: DType.codec().decode(reader)
              }
              break
            }
            case 3: {
              // proto3 writers pack repeated scalars by default; parsers must accept both forms
              if ((tag & 7) === 2) {
                const packedEnd = reader.uint32() + reader.pos

                if (packedEnd > end) {
                  throw new ParseError('Decode error - packed field "dims" reaches past its message')
                }

                while (reader.pos < packedEnd) {
                  if (opts.limits?.dims != null && obj.dims === opts.limits.dims) {
                    throw new MaxLengthError('Streaming decode error - repeated field "dims" had too many elements')
                  }

                  yield {
                    field: `${prefix}.dims[]`,
                    index: obj.dims,
                    value: reader.uint32()
                  }

                  obj.dims++
                }

                if (reader.pos !== packedEnd) {
                  throw new ParseError('Decode error - packed field "dims" overruns its length')
                }

                break
              }

              if (opts.limits?.dims != null && obj.dims === opts.limits.dims) {
                throw new MaxLengthError('Streaming decode error - repeated field "dims" had too many elements')
              }

              yield {
                field: `${prefix}.dims[]`,
                index: obj.dims,
                value: reader.uint32()
              }

              obj.dims++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.data`,
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

  export interface TensorNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface TensorDtypeFieldEvent {
    field: '$.dtype'
    value: DType
  }

  export interface TensorDimsFieldEvent {
    field: '$.dims[]'
    index: number
    value: number
  }

  export interface TensorDataFieldEvent {
    field: '$.data'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Tensor>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Tensor.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Tensor>): Tensor {
    return decodeMessage(buf, Tensor.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Tensor>): Generator<TensorNameFieldEvent | TensorDtypeFieldEvent | TensorDimsFieldEvent | TensorDataFieldEvent> {
    return streamMessage(buf, Tensor.codec(), opts)
  }
}

export interface ModelRef {
  sha256: string
  size: bigint
  name: string
}

export namespace ModelRef {
  let _codec: Codec<ModelRef>

  export const codec = (): Codec<ModelRef> => {
    if (_codec == null) {
      _codec = message<ModelRef>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.sha256 != null && obj.sha256 !== '')) {
          w.uint32(10)
          w.string(obj.sha256)
        }

        if ((obj.size != null && obj.size !== 0n)) {
          w.uint32(16)
          w.uint64(obj.size)
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(26)
          w.string(obj.name)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          sha256: '',
          size: 0n,
          name: ''
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
              obj.size = reader.uint64()
              break
            }
            case 3: {
              obj.name = reader.string()
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
                field: `${prefix}.size`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.name`,
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

  export interface ModelRefSha256FieldEvent {
    field: '$.sha256'
    value: string
  }

  export interface ModelRefSizeFieldEvent {
    field: '$.size'
    value: bigint
  }

  export interface ModelRefNameFieldEvent {
    field: '$.name'
    value: string
  }

  export function encode (obj: Partial<ModelRef>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelRef.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelRef>): ModelRef {
    return decodeMessage(buf, ModelRef.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelRef>): Generator<ModelRefSha256FieldEvent | ModelRefSizeFieldEvent | ModelRefNameFieldEvent> {
    return streamMessage(buf, ModelRef.codec(), opts)
  }
}

export interface TaskRequest {
  taskId: string
  jobId: string
  model?: ModelRef
  inputs: Tensor[]
  timeoutMs: number
  outputNames: string[]
  batchReceipts: boolean
}

export namespace TaskRequest {
  let _codec: Codec<TaskRequest>

  export const codec = (): Codec<TaskRequest> => {
    if (_codec == null) {
      _codec = message<TaskRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.taskId != null && obj.taskId !== '')) {
          w.uint32(10)
          w.string(obj.taskId)
        }

        if ((obj.jobId != null && obj.jobId !== '')) {
          w.uint32(18)
          w.string(obj.jobId)
        }

        if (obj.model != null) {
          w.uint32(26)
          ModelRef.codec().encode(obj.model, w)
        }

        if (obj.inputs != null && obj.inputs.length > 0) {
          for (const value of obj.inputs) {
            w.uint32(34)
            Tensor.codec().encode(value, w)
          }
        }

        if ((obj.timeoutMs != null && obj.timeoutMs !== 0)) {
          w.uint32(40)
          w.uint32(obj.timeoutMs)
        }

        if (obj.outputNames != null && obj.outputNames.length > 0) {
          for (const value of obj.outputNames) {
            w.uint32(50)
            w.string(value)
          }
        }

        if ((obj.batchReceipts != null && obj.batchReceipts !== false)) {
          w.uint32(56)
          w.bool(obj.batchReceipts)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          taskId: '',
          jobId: '',
          inputs: [],
          timeoutMs: 0,
          outputNames: [],
          batchReceipts: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.taskId = reader.string()
              break
            }
            case 2: {
              obj.jobId = reader.string()
              break
            }
            case 3: {
              obj.model = ModelRef.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.model
              })
              break
            }
            case 4: {
              if (opts.limits?.inputs != null && obj.inputs.length === opts.limits.inputs) {
                throw new MaxLengthError('Decode error - repeated field "inputs" had too many elements')
              }

              obj.inputs.push(Tensor.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.inputs$
              }))
              break
            }
            case 5: {
              obj.timeoutMs = reader.uint32()
              break
            }
            case 6: {
              if (opts.limits?.outputNames != null && obj.outputNames.length === opts.limits.outputNames) {
                throw new MaxLengthError('Decode error - repeated field "outputNames" had too many elements')
              }

              obj.outputNames.push(reader.string())
              break
            }
            case 7: {
              obj.batchReceipts = reader.bool()
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
          inputs: 0,
          outputNames: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.taskId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.jobId`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield * ModelRef.codec().stream(reader, reader.uint32(), `${prefix}.model`, {
                limits: opts.limits?.model
              })

              break
            }
            case 4: {
              if (opts.limits?.inputs != null && obj.inputs === opts.limits.inputs) {
                throw new MaxLengthError('Streaming decode error - repeated field "inputs" had too many elements')
              }

              for (const evt of Tensor.codec().stream(reader, reader.uint32(), `${prefix}.inputs[]`, {
                limits: opts.limits?.inputs$
              })) {
                yield {
                  ...evt,
                  index: obj.inputs
                }
              }

              obj.inputs++

              break
            }
            case 5: {
              yield {
                field: `${prefix}.timeoutMs`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              if (opts.limits?.outputNames != null && obj.outputNames === opts.limits.outputNames) {
                throw new MaxLengthError('Streaming decode error - repeated field "outputNames" had too many elements')
              }

              yield {
                field: `${prefix}.outputNames[]`,
                index: obj.outputNames,
                value: reader.string()
              }

              obj.outputNames++

              break
            }
            case 7: {
              yield {
                field: `${prefix}.batchReceipts`,
                value: reader.bool()
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

  export interface TaskRequestTaskIdFieldEvent {
    field: '$.taskId'
    value: string
  }

  export interface TaskRequestJobIdFieldEvent {
    field: '$.jobId'
    value: string
  }

  export interface TaskRequestModelSha256FieldEvent {
    field: '$.model.sha256'
    value: string
  }

  export interface TaskRequestModelSizeFieldEvent {
    field: '$.model.size'
    value: bigint
  }

  export interface TaskRequestModelNameFieldEvent {
    field: '$.model.name'
    value: string
  }

  export interface TaskRequestInputsNameFieldEvent {
    field: '$.inputs[].name'
    value: string
    index: number
  }

  export interface TaskRequestInputsDtypeFieldEvent {
    field: '$.inputs[].dtype'
    value: DType
    index: number
  }

  export interface TaskRequestInputsDimsFieldEvent {
    field: '$.inputs[].dims[]'
    index: number
    value: number
  }

  export interface TaskRequestInputsDataFieldEvent {
    field: '$.inputs[].data'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface TaskRequestTimeoutMsFieldEvent {
    field: '$.timeoutMs'
    value: number
  }

  export interface TaskRequestOutputNamesFieldEvent {
    field: '$.outputNames[]'
    index: number
    value: string
  }

  export interface TaskRequestBatchReceiptsFieldEvent {
    field: '$.batchReceipts'
    value: boolean
  }

  export function encode (obj: Partial<TaskRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskRequest>): TaskRequest {
    return decodeMessage(buf, TaskRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskRequest>): Generator<TaskRequestTaskIdFieldEvent | TaskRequestJobIdFieldEvent | TaskRequestModelSha256FieldEvent | TaskRequestModelSizeFieldEvent | TaskRequestModelNameFieldEvent | TaskRequestInputsNameFieldEvent | TaskRequestInputsDtypeFieldEvent | TaskRequestInputsDimsFieldEvent | TaskRequestInputsDataFieldEvent | TaskRequestTimeoutMsFieldEvent | TaskRequestOutputNamesFieldEvent | TaskRequestBatchReceiptsFieldEvent> {
    return streamMessage(buf, TaskRequest.codec(), opts)
  }
}

export interface Timings {
  queueMs: number
  loadMs: number
  inferenceMs: number
  totalMs: number
}

export namespace Timings {
  let _codec: Codec<Timings>

  export const codec = (): Codec<Timings> => {
    if (_codec == null) {
      _codec = message<Timings>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.queueMs != null && obj.queueMs !== 0)) {
          w.uint32(9)
          w.double(obj.queueMs)
        }

        if ((obj.loadMs != null && obj.loadMs !== 0)) {
          w.uint32(17)
          w.double(obj.loadMs)
        }

        if ((obj.inferenceMs != null && obj.inferenceMs !== 0)) {
          w.uint32(25)
          w.double(obj.inferenceMs)
        }

        if ((obj.totalMs != null && obj.totalMs !== 0)) {
          w.uint32(33)
          w.double(obj.totalMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          queueMs: 0,
          loadMs: 0,
          inferenceMs: 0,
          totalMs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.queueMs = reader.double()
              break
            }
            case 2: {
              obj.loadMs = reader.double()
              break
            }
            case 3: {
              obj.inferenceMs = reader.double()
              break
            }
            case 4: {
              obj.totalMs = reader.double()
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
                field: `${prefix}.queueMs`,
                value: reader.double()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.loadMs`,
                value: reader.double()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.inferenceMs`,
                value: reader.double()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.totalMs`,
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

  export interface TimingsQueueMsFieldEvent {
    field: '$.queueMs'
    value: number
  }

  export interface TimingsLoadMsFieldEvent {
    field: '$.loadMs'
    value: number
  }

  export interface TimingsInferenceMsFieldEvent {
    field: '$.inferenceMs'
    value: number
  }

  export interface TimingsTotalMsFieldEvent {
    field: '$.totalMs'
    value: number
  }

  export function encode (obj: Partial<Timings>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Timings.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Timings>): Timings {
    return decodeMessage(buf, Timings.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Timings>): Generator<TimingsQueueMsFieldEvent | TimingsLoadMsFieldEvent | TimingsInferenceMsFieldEvent | TimingsTotalMsFieldEvent> {
    return streamMessage(buf, Timings.codec(), opts)
  }
}

export interface Receipt {
  startedAt: bigint
  endedAt: bigint
  signature: Uint8Array<ArrayBuffer>
  batchIndex: number
  batchSize: number
  path: Uint8Array<ArrayBuffer>[]
}

export namespace Receipt {
  let _codec: Codec<Receipt>

  export const codec = (): Codec<Receipt> => {
    if (_codec == null) {
      _codec = message<Receipt>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.startedAt != null && obj.startedAt !== 0n)) {
          w.uint32(8)
          w.uint64(obj.startedAt)
        }

        if ((obj.endedAt != null && obj.endedAt !== 0n)) {
          w.uint32(16)
          w.uint64(obj.endedAt)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.signature)
        }

        if ((obj.batchIndex != null && obj.batchIndex !== 0)) {
          w.uint32(32)
          w.uint32(obj.batchIndex)
        }

        if ((obj.batchSize != null && obj.batchSize !== 0)) {
          w.uint32(40)
          w.uint32(obj.batchSize)
        }

        if (obj.path != null && obj.path.length > 0) {
          for (const value of obj.path) {
            w.uint32(50)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          startedAt: 0n,
          endedAt: 0n,
          signature: uint8ArrayAlloc(0),
          batchIndex: 0,
          batchSize: 0,
          path: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.startedAt = reader.uint64()
              break
            }
            case 2: {
              obj.endedAt = reader.uint64()
              break
            }
            case 3: {
              obj.signature = reader.bytes()
              break
            }
            case 4: {
              obj.batchIndex = reader.uint32()
              break
            }
            case 5: {
              obj.batchSize = reader.uint32()
              break
            }
            case 6: {
              if (opts.limits?.path != null && obj.path.length === opts.limits.path) {
                throw new MaxLengthError('Decode error - repeated field "path" had too many elements')
              }

              obj.path.push(reader.bytes())
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
          path: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.startedAt`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.endedAt`,
                value: reader.uint64()
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
            case 4: {
              yield {
                field: `${prefix}.batchIndex`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.batchSize`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              if (opts.limits?.path != null && obj.path === opts.limits.path) {
                throw new MaxLengthError('Streaming decode error - repeated field "path" had too many elements')
              }

              yield {
                field: `${prefix}.path[]`,
                index: obj.path,
                value: reader.bytes()
              }

              obj.path++

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

  export interface ReceiptStartedAtFieldEvent {
    field: '$.startedAt'
    value: bigint
  }

  export interface ReceiptEndedAtFieldEvent {
    field: '$.endedAt'
    value: bigint
  }

  export interface ReceiptSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ReceiptBatchIndexFieldEvent {
    field: '$.batchIndex'
    value: number
  }

  export interface ReceiptBatchSizeFieldEvent {
    field: '$.batchSize'
    value: number
  }

  export interface ReceiptPathFieldEvent {
    field: '$.path[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Receipt>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Receipt.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Receipt>): Receipt {
    return decodeMessage(buf, Receipt.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Receipt>): Generator<ReceiptStartedAtFieldEvent | ReceiptEndedAtFieldEvent | ReceiptSignatureFieldEvent | ReceiptBatchIndexFieldEvent | ReceiptBatchSizeFieldEvent | ReceiptPathFieldEvent> {
    return streamMessage(buf, Receipt.codec(), opts)
  }
}

export interface TaskResult {
  outputs: Tensor[]
  timings?: Timings
  backend: string
  threads: number
  receipt?: Receipt
}

export namespace TaskResult {
  let _codec: Codec<TaskResult>

  export const codec = (): Codec<TaskResult> => {
    if (_codec == null) {
      _codec = message<TaskResult>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.outputs != null && obj.outputs.length > 0) {
          for (const value of obj.outputs) {
            w.uint32(10)
            Tensor.codec().encode(value, w)
          }
        }

        if (obj.timings != null) {
          w.uint32(18)
          Timings.codec().encode(obj.timings, w)
        }

        if ((obj.backend != null && obj.backend !== '')) {
          w.uint32(26)
          w.string(obj.backend)
        }

        if ((obj.threads != null && obj.threads !== 0)) {
          w.uint32(32)
          w.uint32(obj.threads)
        }

        if (obj.receipt != null) {
          w.uint32(42)
          Receipt.codec().encode(obj.receipt, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          outputs: [],
          backend: '',
          threads: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.outputs != null && obj.outputs.length === opts.limits.outputs) {
                throw new MaxLengthError('Decode error - repeated field "outputs" had too many elements')
              }

              obj.outputs.push(Tensor.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.outputs$
              }))
              break
            }
            case 2: {
              obj.timings = Timings.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.timings
              })
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
              obj.receipt = Receipt.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.receipt
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
        const obj = {
          outputs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.outputs != null && obj.outputs === opts.limits.outputs) {
                throw new MaxLengthError('Streaming decode error - repeated field "outputs" had too many elements')
              }

              for (const evt of Tensor.codec().stream(reader, reader.uint32(), `${prefix}.outputs[]`, {
                limits: opts.limits?.outputs$
              })) {
                yield {
                  ...evt,
                  index: obj.outputs
                }
              }

              obj.outputs++

              break
            }
            case 2: {
              yield * Timings.codec().stream(reader, reader.uint32(), `${prefix}.timings`, {
                limits: opts.limits?.timings
              })

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
              yield * Receipt.codec().stream(reader, reader.uint32(), `${prefix}.receipt`, {
                limits: opts.limits?.receipt
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

  export interface TaskResultOutputsNameFieldEvent {
    field: '$.outputs[].name'
    value: string
    index: number
  }

  export interface TaskResultOutputsDtypeFieldEvent {
    field: '$.outputs[].dtype'
    value: DType
    index: number
  }

  export interface TaskResultOutputsDimsFieldEvent {
    field: '$.outputs[].dims[]'
    index: number
    value: number
  }

  export interface TaskResultOutputsDataFieldEvent {
    field: '$.outputs[].data'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface TaskResultTimingsQueueMsFieldEvent {
    field: '$.timings.queueMs'
    value: number
  }

  export interface TaskResultTimingsLoadMsFieldEvent {
    field: '$.timings.loadMs'
    value: number
  }

  export interface TaskResultTimingsInferenceMsFieldEvent {
    field: '$.timings.inferenceMs'
    value: number
  }

  export interface TaskResultTimingsTotalMsFieldEvent {
    field: '$.timings.totalMs'
    value: number
  }

  export interface TaskResultBackendFieldEvent {
    field: '$.backend'
    value: string
  }

  export interface TaskResultThreadsFieldEvent {
    field: '$.threads'
    value: number
  }

  export interface TaskResultReceiptStartedAtFieldEvent {
    field: '$.receipt.startedAt'
    value: bigint
  }

  export interface TaskResultReceiptEndedAtFieldEvent {
    field: '$.receipt.endedAt'
    value: bigint
  }

  export interface TaskResultReceiptSignatureFieldEvent {
    field: '$.receipt.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskResultReceiptBatchIndexFieldEvent {
    field: '$.receipt.batchIndex'
    value: number
  }

  export interface TaskResultReceiptBatchSizeFieldEvent {
    field: '$.receipt.batchSize'
    value: number
  }

  export interface TaskResultReceiptPathFieldEvent {
    field: '$.receipt.path[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<TaskResult>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskResult.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskResult>): TaskResult {
    return decodeMessage(buf, TaskResult.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskResult>): Generator<TaskResultOutputsNameFieldEvent | TaskResultOutputsDtypeFieldEvent | TaskResultOutputsDimsFieldEvent | TaskResultOutputsDataFieldEvent | TaskResultTimingsQueueMsFieldEvent | TaskResultTimingsLoadMsFieldEvent | TaskResultTimingsInferenceMsFieldEvent | TaskResultTimingsTotalMsFieldEvent | TaskResultBackendFieldEvent | TaskResultThreadsFieldEvent | TaskResultReceiptStartedAtFieldEvent | TaskResultReceiptEndedAtFieldEvent | TaskResultReceiptSignatureFieldEvent | TaskResultReceiptBatchIndexFieldEvent | TaskResultReceiptBatchSizeFieldEvent | TaskResultReceiptPathFieldEvent> {
    return streamMessage(buf, TaskResult.codec(), opts)
  }
}

export enum ErrorCode {
  ERROR_UNSPECIFIED = 'ERROR_UNSPECIFIED',
  BAD_REQUEST = 'BAD_REQUEST',
  MODEL_UNAVAILABLE = 'MODEL_UNAVAILABLE',
  BUSY = 'BUSY',
  INFERENCE_FAILED = 'INFERENCE_FAILED',
  TIMEOUT = 'TIMEOUT',
  MODEL_HASH_MISMATCH = 'MODEL_HASH_MISMATCH'
}

enum __ErrorCodeValues {
  ERROR_UNSPECIFIED = 0,
  BAD_REQUEST = 1,
  MODEL_UNAVAILABLE = 2,
  BUSY = 3,
  INFERENCE_FAILED = 4,
  TIMEOUT = 5,
  MODEL_HASH_MISMATCH = 6
}

export namespace ErrorCode {
  export const codec = (): Codec<ErrorCode> => {
    return enumeration<ErrorCode>(__ErrorCodeValues)
  }
}

export interface TaskError {
  code: ErrorCode
  message: string
}

export namespace TaskError {
  let _codec: Codec<TaskError>

  export const codec = (): Codec<TaskError> => {
    if (_codec == null) {
      _codec = message<TaskError>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.code != null && __ErrorCodeValues[obj.code] !== 0) {
          w.uint32(8)
          ErrorCode.codec().encode(obj.code, w)
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
          code: ErrorCode.ERROR_UNSPECIFIED,
          message: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.code = ErrorCode.codec().decode(reader)
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
                value: ErrorCode.codec().decode(reader)
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

  export interface TaskErrorCodeFieldEvent {
    field: '$.code'
    value: ErrorCode
  }

  export interface TaskErrorMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export function encode (obj: Partial<TaskError>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskError.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskError>): TaskError {
    return decodeMessage(buf, TaskError.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskError>): Generator<TaskErrorCodeFieldEvent | TaskErrorMessageFieldEvent> {
    return streamMessage(buf, TaskError.codec(), opts)
  }
}

export interface TaskResponse {
  taskId: string
  result?: TaskResult
  error?: TaskError
}

export namespace TaskResponse {
  let _codec: Codec<TaskResponse>

  export const codec = (): Codec<TaskResponse> => {
    if (_codec == null) {
      _codec = message<TaskResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.taskId != null && obj.taskId !== '')) {
          w.uint32(10)
          w.string(obj.taskId)
        }

        if (obj.result != null) {
          w.uint32(18)
          TaskResult.codec().encode(obj.result, w)
        }

        if (obj.error != null) {
          w.uint32(26)
          TaskError.codec().encode(obj.error, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          taskId: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.taskId = reader.string()
              break
            }
            case 2: {
              obj.result = TaskResult.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.result
              })
              break
            }
            case 3: {
              obj.error = TaskError.codec().decode(reader, reader.uint32(), {
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
              yield {
                field: `${prefix}.taskId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield * TaskResult.codec().stream(reader, reader.uint32(), `${prefix}.result`, {
                limits: opts.limits?.result
              })

              break
            }
            case 3: {
              yield * TaskError.codec().stream(reader, reader.uint32(), `${prefix}.error`, {
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

  export interface TaskResponseTaskIdFieldEvent {
    field: '$.taskId'
    value: string
  }

  export interface TaskResponseResultOutputsNameFieldEvent {
    field: '$.result.outputs[].name'
    value: string
    index: number
  }

  export interface TaskResponseResultOutputsDtypeFieldEvent {
    field: '$.result.outputs[].dtype'
    value: DType
    index: number
  }

  export interface TaskResponseResultOutputsDimsFieldEvent {
    field: '$.result.outputs[].dims[]'
    index: number
    value: number
  }

  export interface TaskResponseResultOutputsDataFieldEvent {
    field: '$.result.outputs[].data'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface TaskResponseResultTimingsQueueMsFieldEvent {
    field: '$.result.timings.queueMs'
    value: number
  }

  export interface TaskResponseResultTimingsLoadMsFieldEvent {
    field: '$.result.timings.loadMs'
    value: number
  }

  export interface TaskResponseResultTimingsInferenceMsFieldEvent {
    field: '$.result.timings.inferenceMs'
    value: number
  }

  export interface TaskResponseResultTimingsTotalMsFieldEvent {
    field: '$.result.timings.totalMs'
    value: number
  }

  export interface TaskResponseResultBackendFieldEvent {
    field: '$.result.backend'
    value: string
  }

  export interface TaskResponseResultThreadsFieldEvent {
    field: '$.result.threads'
    value: number
  }

  export interface TaskResponseResultReceiptStartedAtFieldEvent {
    field: '$.result.receipt.startedAt'
    value: bigint
  }

  export interface TaskResponseResultReceiptEndedAtFieldEvent {
    field: '$.result.receipt.endedAt'
    value: bigint
  }

  export interface TaskResponseResultReceiptSignatureFieldEvent {
    field: '$.result.receipt.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskResponseResultReceiptBatchIndexFieldEvent {
    field: '$.result.receipt.batchIndex'
    value: number
  }

  export interface TaskResponseResultReceiptBatchSizeFieldEvent {
    field: '$.result.receipt.batchSize'
    value: number
  }

  export interface TaskResponseResultReceiptPathFieldEvent {
    field: '$.result.receipt.path[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskResponseErrorCodeFieldEvent {
    field: '$.error.code'
    value: ErrorCode
  }

  export interface TaskResponseErrorMessageFieldEvent {
    field: '$.error.message'
    value: string
  }

  export function encode (obj: Partial<TaskResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskResponse>): TaskResponse {
    return decodeMessage(buf, TaskResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskResponse>): Generator<TaskResponseTaskIdFieldEvent | TaskResponseResultOutputsNameFieldEvent | TaskResponseResultOutputsDtypeFieldEvent | TaskResponseResultOutputsDimsFieldEvent | TaskResponseResultOutputsDataFieldEvent | TaskResponseResultTimingsQueueMsFieldEvent | TaskResponseResultTimingsLoadMsFieldEvent | TaskResponseResultTimingsInferenceMsFieldEvent | TaskResponseResultTimingsTotalMsFieldEvent | TaskResponseResultBackendFieldEvent | TaskResponseResultThreadsFieldEvent | TaskResponseResultReceiptStartedAtFieldEvent | TaskResponseResultReceiptEndedAtFieldEvent | TaskResponseResultReceiptSignatureFieldEvent | TaskResponseResultReceiptBatchIndexFieldEvent | TaskResponseResultReceiptBatchSizeFieldEvent | TaskResponseResultReceiptPathFieldEvent | TaskResponseErrorCodeFieldEvent | TaskResponseErrorMessageFieldEvent> {
    return streamMessage(buf, TaskResponse.codec(), opts)
  }
}

export interface Heartbeat {
  nonce: bigint
}

export namespace Heartbeat {
  let _codec: Codec<Heartbeat>

  export const codec = (): Codec<Heartbeat> => {
    if (_codec == null) {
      _codec = message<Heartbeat>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.nonce != null && obj.nonce !== 0n)) {
          w.uint32(8)
          w.uint64(obj.nonce)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          nonce: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.nonce = reader.uint64()
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
                field: `${prefix}.nonce`,
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

  export interface HeartbeatNonceFieldEvent {
    field: '$.nonce'
    value: bigint
  }

  export function encode (obj: Partial<Heartbeat>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Heartbeat.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Heartbeat>): Heartbeat {
    return decodeMessage(buf, Heartbeat.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Heartbeat>): Generator<HeartbeatNonceFieldEvent> {
    return streamMessage(buf, Heartbeat.codec(), opts)
  }
}

export interface Cancel {
  taskId: string
}

export namespace Cancel {
  let _codec: Codec<Cancel>

  export const codec = (): Codec<Cancel> => {
    if (_codec == null) {
      _codec = message<Cancel>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.taskId != null && obj.taskId !== '')) {
          w.uint32(10)
          w.string(obj.taskId)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          taskId: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.taskId = reader.string()
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
                field: `${prefix}.taskId`,
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

  export interface CancelTaskIdFieldEvent {
    field: '$.taskId'
    value: string
  }

  export function encode (obj: Partial<Cancel>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Cancel.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Cancel>): Cancel {
    return decodeMessage(buf, Cancel.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Cancel>): Generator<CancelTaskIdFieldEvent> {
    return streamMessage(buf, Cancel.codec(), opts)
  }
}

export interface Frame {
  request?: TaskRequest
  response?: TaskResponse
  ping?: Heartbeat
  pong?: Heartbeat
  cancel?: Cancel
}

export namespace Frame {
  let _codec: Codec<Frame>

  export const codec = (): Codec<Frame> => {
    if (_codec == null) {
      _codec = message<Frame>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.request != null) {
          w.uint32(10)
          TaskRequest.codec().encode(obj.request, w)
        }

        if (obj.response != null) {
          w.uint32(18)
          TaskResponse.codec().encode(obj.response, w)
        }

        if (obj.ping != null) {
          w.uint32(26)
          Heartbeat.codec().encode(obj.ping, w)
        }

        if (obj.pong != null) {
          w.uint32(34)
          Heartbeat.codec().encode(obj.pong, w)
        }

        if (obj.cancel != null) {
          w.uint32(42)
          Cancel.codec().encode(obj.cancel, w)
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
              obj.request = TaskRequest.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.request
              })
              break
            }
            case 2: {
              obj.response = TaskResponse.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.response
              })
              break
            }
            case 3: {
              obj.ping = Heartbeat.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.ping
              })
              break
            }
            case 4: {
              obj.pong = Heartbeat.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.pong
              })
              break
            }
            case 5: {
              obj.cancel = Cancel.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.cancel
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
              yield * TaskRequest.codec().stream(reader, reader.uint32(), `${prefix}.request`, {
                limits: opts.limits?.request
              })

              break
            }
            case 2: {
              yield * TaskResponse.codec().stream(reader, reader.uint32(), `${prefix}.response`, {
                limits: opts.limits?.response
              })

              break
            }
            case 3: {
              yield * Heartbeat.codec().stream(reader, reader.uint32(), `${prefix}.ping`, {
                limits: opts.limits?.ping
              })

              break
            }
            case 4: {
              yield * Heartbeat.codec().stream(reader, reader.uint32(), `${prefix}.pong`, {
                limits: opts.limits?.pong
              })

              break
            }
            case 5: {
              yield * Cancel.codec().stream(reader, reader.uint32(), `${prefix}.cancel`, {
                limits: opts.limits?.cancel
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

  export interface FrameRequestTaskIdFieldEvent {
    field: '$.request.taskId'
    value: string
  }

  export interface FrameRequestJobIdFieldEvent {
    field: '$.request.jobId'
    value: string
  }

  export interface FrameRequestModelSha256FieldEvent {
    field: '$.request.model.sha256'
    value: string
  }

  export interface FrameRequestModelSizeFieldEvent {
    field: '$.request.model.size'
    value: bigint
  }

  export interface FrameRequestModelNameFieldEvent {
    field: '$.request.model.name'
    value: string
  }

  export interface FrameRequestInputsNameFieldEvent {
    field: '$.request.inputs[].name'
    value: string
    index: number
  }

  export interface FrameRequestInputsDtypeFieldEvent {
    field: '$.request.inputs[].dtype'
    value: DType
    index: number
  }

  export interface FrameRequestInputsDimsFieldEvent {
    field: '$.request.inputs[].dims[]'
    index: number
    value: number
  }

  export interface FrameRequestInputsDataFieldEvent {
    field: '$.request.inputs[].data'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface FrameRequestTimeoutMsFieldEvent {
    field: '$.request.timeoutMs'
    value: number
  }

  export interface FrameRequestOutputNamesFieldEvent {
    field: '$.request.outputNames[]'
    index: number
    value: string
  }

  export interface FrameRequestBatchReceiptsFieldEvent {
    field: '$.request.batchReceipts'
    value: boolean
  }

  export interface FrameResponseTaskIdFieldEvent {
    field: '$.response.taskId'
    value: string
  }

  export interface FrameResponseResultOutputsNameFieldEvent {
    field: '$.response.result.outputs[].name'
    value: string
    index: number
  }

  export interface FrameResponseResultOutputsDtypeFieldEvent {
    field: '$.response.result.outputs[].dtype'
    value: DType
    index: number
  }

  export interface FrameResponseResultOutputsDimsFieldEvent {
    field: '$.response.result.outputs[].dims[]'
    index: number
    value: number
  }

  export interface FrameResponseResultOutputsDataFieldEvent {
    field: '$.response.result.outputs[].data'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface FrameResponseResultTimingsQueueMsFieldEvent {
    field: '$.response.result.timings.queueMs'
    value: number
  }

  export interface FrameResponseResultTimingsLoadMsFieldEvent {
    field: '$.response.result.timings.loadMs'
    value: number
  }

  export interface FrameResponseResultTimingsInferenceMsFieldEvent {
    field: '$.response.result.timings.inferenceMs'
    value: number
  }

  export interface FrameResponseResultTimingsTotalMsFieldEvent {
    field: '$.response.result.timings.totalMs'
    value: number
  }

  export interface FrameResponseResultBackendFieldEvent {
    field: '$.response.result.backend'
    value: string
  }

  export interface FrameResponseResultThreadsFieldEvent {
    field: '$.response.result.threads'
    value: number
  }

  export interface FrameResponseResultReceiptStartedAtFieldEvent {
    field: '$.response.result.receipt.startedAt'
    value: bigint
  }

  export interface FrameResponseResultReceiptEndedAtFieldEvent {
    field: '$.response.result.receipt.endedAt'
    value: bigint
  }

  export interface FrameResponseResultReceiptSignatureFieldEvent {
    field: '$.response.result.receipt.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface FrameResponseResultReceiptBatchIndexFieldEvent {
    field: '$.response.result.receipt.batchIndex'
    value: number
  }

  export interface FrameResponseResultReceiptBatchSizeFieldEvent {
    field: '$.response.result.receipt.batchSize'
    value: number
  }

  export interface FrameResponseResultReceiptPathFieldEvent {
    field: '$.response.result.receipt.path[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface FrameResponseErrorCodeFieldEvent {
    field: '$.response.error.code'
    value: ErrorCode
  }

  export interface FrameResponseErrorMessageFieldEvent {
    field: '$.response.error.message'
    value: string
  }

  export interface FramePingNonceFieldEvent {
    field: '$.ping.nonce'
    value: bigint
  }

  export interface FramePongNonceFieldEvent {
    field: '$.pong.nonce'
    value: bigint
  }

  export interface FrameCancelTaskIdFieldEvent {
    field: '$.cancel.taskId'
    value: string
  }

  export function encode (obj: Partial<Frame>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Frame.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Frame>): Frame {
    return decodeMessage(buf, Frame.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Frame>): Generator<FrameRequestTaskIdFieldEvent | FrameRequestJobIdFieldEvent | FrameRequestModelSha256FieldEvent | FrameRequestModelSizeFieldEvent | FrameRequestModelNameFieldEvent | FrameRequestInputsNameFieldEvent | FrameRequestInputsDtypeFieldEvent | FrameRequestInputsDimsFieldEvent | FrameRequestInputsDataFieldEvent | FrameRequestTimeoutMsFieldEvent | FrameRequestOutputNamesFieldEvent | FrameRequestBatchReceiptsFieldEvent | FrameResponseTaskIdFieldEvent | FrameResponseResultOutputsNameFieldEvent | FrameResponseResultOutputsDtypeFieldEvent | FrameResponseResultOutputsDimsFieldEvent | FrameResponseResultOutputsDataFieldEvent | FrameResponseResultTimingsQueueMsFieldEvent | FrameResponseResultTimingsLoadMsFieldEvent | FrameResponseResultTimingsInferenceMsFieldEvent | FrameResponseResultTimingsTotalMsFieldEvent | FrameResponseResultBackendFieldEvent | FrameResponseResultThreadsFieldEvent | FrameResponseResultReceiptStartedAtFieldEvent | FrameResponseResultReceiptEndedAtFieldEvent | FrameResponseResultReceiptSignatureFieldEvent | FrameResponseResultReceiptBatchIndexFieldEvent | FrameResponseResultReceiptBatchSizeFieldEvent | FrameResponseResultReceiptPathFieldEvent | FrameResponseErrorCodeFieldEvent | FrameResponseErrorMessageFieldEvent | FramePingNonceFieldEvent | FramePongNonceFieldEvent | FrameCancelTaskIdFieldEvent> {
    return streamMessage(buf, Frame.codec(), opts)
  }
}

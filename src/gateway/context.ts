/** What the routes share: the library's requester, the job desk, the limits in force. */
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Requester } from '../index.js'
import type { JobDesk } from './jobs.js'
import type { KeyedSlots, Slots } from './slots.js'

export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>

export interface GatewayContext {
  net: Requester
  desk: JobDesk
  /** JSON and JSONL bodies. */
  maxBodyBytes: number
  /** How long /v1/run and /v1/ocr wait for a first worker. */
  waitForWorkersMs: number
  heartbeatMs: number
  progressMs: number
  slots: {
    runs: Slots
    ocr: Slots
    uploads: Slots
    streams: KeyedSlots
  }
}

/**
 * The gateway's request and response shapes as TypeBox schemas: fastify validates every body,
 * path parameter and query string against them, and /openapi.json is generated from the same
 * objects. Tensor values are checked against the model by the library (taskInputs), which names
 * the input, axis or element at fault; the schemas check the envelope and its bounds.
 */
import { Type } from 'typebox'
import type { Static, TSchema } from 'typebox'
import { DEFAULT_JOB_PAGE, DEFAULT_OCR_TIMEOUT_MS, DEFAULT_RUN_TIMEOUT_MS, MAX_JOB_INPUTS, MAX_JOB_PAGE, MAX_OCR_IMAGES, MAX_RUN_TIMEOUT_MS } from './limits.js'

export const ModelRef = Type.String({
  pattern: '^(?:[0-9a-f]{64}|[a-z][a-z0-9-]{0,63})$',
  description: 'A built-in model (digits, ocr-det, ocr-rec) or the sha256 of a model uploaded with POST /v1/models. Never a path.',
  examples: ['digits']
})

const TensorValue = Type.Unknown({
  description: 'One input tensor, as for `npm run infer`: a nested array (its shape is the tensor\'s), a bare scalar, or { "dims": [...], "data": [...] } with data flat in row-major order. 64-bit integers beyond 2^53 as decimal strings; floats may be "nan", "inf", "-inf".'
})

export const TaskInputs = Type.Record(Type.String({ maxLength: 256 }), TensorValue, {
  maxProperties: 256,
  description: 'One task\'s inputs, keyed by the model\'s input names.',
  examples: [{ a: [[1, 2, 3]], b: [[4, 5, 6]] }]
})
export type TaskInputsBody = Static<typeof TaskInputs>

const Replicas = Type.Integer({ minimum: 1, maximum: 3, description: 'Distinct workers whose results must agree (default 1).' })
const Tolerance = Type.Number({ minimum: 0, description: 'Relative tolerance for outputs to agree (default 1e-4).' })
const Argmax = Type.String({ maxLength: 256, description: 'Outputs agree when the argmax of this output matches (classifiers) instead of within the tolerance.' })
const SpotCheck = Type.Number({ minimum: 0, maximum: 1, description: 'Share of decided tasks recomputed by the gateway (default: its --spot-check).' })
const Diversity = Type.Union([Type.Literal('standard'), Type.Literal('strict'), Type.Literal('lan')], { description: 'How replicas\' workers are told apart (default: the gateway\'s --diversity).' })
const Adaptive = Type.Boolean({ description: 'Fewer replicas for workers with a good record (default false).' })
const Label = Type.String({ maxLength: 200, description: 'Shown in the job list (default: the model\'s name).' })

const JobOptionFields = {
  replicas: Type.Optional(Replicas),
  tolerance: Type.Optional(Tolerance),
  adaptive: Type.Optional(Adaptive),
  argmax: Type.Optional(Argmax),
  spotCheck: Type.Optional(SpotCheck),
  diversity: Type.Optional(Diversity),
  label: Type.Optional(Label)
}

export const JobBody = Type.Object({
  model: ModelRef,
  inputs: Type.Optional(Type.Array(TaskInputs, { minItems: 1, maxItems: MAX_JOB_INPUTS, description: `One entry per task, at most ${MAX_JOB_INPUTS}.` })),
  dataset: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,64}$', description: 'Instead of inputs: a built-in dataset (mnist-test, for the digits model).' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, description: 'With dataset: its first N items.' })),
  ...JobOptionFields
}, { additionalProperties: false })
export type JobBodyValue = Static<typeof JobBody>

/** A JSONL body: one task's inputs per line; the job's settings are in the query string. */
export const JobLines = Type.Array(TaskInputs, { minItems: 1, maxItems: MAX_JOB_INPUTS })

export const JobQuery = Type.Object({
  model: Type.Optional(ModelRef),
  ...JobOptionFields
}, { additionalProperties: false, description: 'With a JSONL body only: the model (required) and the job\'s settings.' })
export type JobQueryValue = Static<typeof JobQuery>

export const JobParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) })

export const JobListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_JOB_PAGE, description: `Newest first, at most this many (default ${DEFAULT_JOB_PAGE}).` }))
}, { additionalProperties: false })

export const RunBody = Type.Object({
  model: ModelRef,
  inputs: TaskInputs,
  replicas: Type.Optional(Replicas),
  tolerance: Type.Optional(Tolerance),
  argmax: Type.Optional(Argmax),
  spotCheck: Type.Optional(SpotCheck),
  diversity: Type.Optional(Diversity),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RUN_TIMEOUT_MS, description: `Give up after this long (default ${DEFAULT_RUN_TIMEOUT_MS}): 504 'cancelled'.` }))
}, { additionalProperties: false })

export const OcrBody = Type.Object({
  images: Type.Array(Type.String({ description: 'A PNG, base64 (a data: URL prefix is accepted).' }), { minItems: 1, maxItems: MAX_OCR_IMAGES }),
  replicas: Type.Optional(Replicas),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RUN_TIMEOUT_MS, description: `Give up after this long (default ${DEFAULT_OCR_TIMEOUT_MS}): 504 'cancelled'.` }))
}, { additionalProperties: false })

export const ModelQuery = Type.Object({
  name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,128}$', description: 'A name to show for the model (default model.onnx).' }))
}, { additionalProperties: false })

// ---------------------------------------------------------------- responses (documentation)

export const ErrorResponse = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'bad-request, bad-input, bad-model, bad-image, unknown-model, unknown-job, too-large, unauthenticated, no-workers, relay-unreachable, task-failed, stalled, cancelled, conflict, busy, not-found, internal' }),
    message: Type.String()
  })
}, { description: 'Every failure.' })

const TensorInfo = Type.Object({
  name: Type.String(),
  dtype: Type.String(),
  dims: Type.Array(Type.Union([Type.Integer(), Type.String()]), { description: 'Fixed sizes as numbers, symbolic ones as names.' }),
  rankKnown: Type.Boolean()
})

export const ModelResponse = Type.Object({
  sha256: Type.String(),
  name: Type.String(),
  size: Type.Integer(),
  builtin: Type.Optional(Type.String()),
  inputs: Type.Array(TensorInfo),
  outputs: Type.Array(TensorInfo)
})

export const TensorOut = Type.Object({
  name: Type.String(),
  dtype: Type.String(),
  dims: Type.Array(Type.Integer()),
  data: Type.Array(Type.Union([Type.Number(), Type.String(), Type.Boolean()]), { description: 'Row-major; 64-bit integers as decimal strings, non-finite floats as "nan", "inf", "-inf".' })
})

export const ResultLine = Type.Object({
  index: Type.Integer(),
  outputs: Type.Optional(Type.Array(TensorOut)),
  agreedBy: Type.Optional(Type.Array(Type.String(), { description: 'Peer ids whose outputs agreed ("self": recomputed by the gateway).' })),
  error: Type.Optional(Type.String({ description: 'Why this task has no result.' }))
}, { description: 'One NDJSON line per task, in input order. A stream cut short ends with a line { "error": { "code", "message" } } instead.' })

export const JobStatus = Type.Object({
  id: Type.String(),
  state: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('verifying'), Type.Literal('done'), Type.Literal('failed'), Type.Literal('cancelled')]),
  running: Type.Boolean({ description: 'Whether this gateway is running it now.' }),
  label: Type.String(),
  model: Type.Object({ sha256: Type.String(), name: Type.String() }),
  replicas: Type.Integer(),
  createdAt: Type.Integer({ description: 'ms since 1970' }),
  updatedAt: Type.Integer(),
  progress: Type.Object({
    total: Type.Integer(),
    done: Type.Integer(),
    failed: Type.Integer(),
    inFlight: Type.Integer(),
    crossChecked: Type.Integer(),
    disagreements: Type.Integer(),
    tasksPerSec: Type.Number(),
    etaSeconds: Type.Union([Type.Number(), Type.Null()]),
    spotChecks: Type.Object({
      done: Type.Integer({ description: 'Results recomputed by the gateway so far (this run).' }),
      mismatches: Type.Integer({ description: 'Of which differed: the worker is convicted and the results it voted for are decided again (a results stream read before may hold the replaced ones).' })
    }),
    inferenceMs: Type.Integer({ description: 'Inference time of every accepted result (replicas included), ms: this run\'s while it runs, else the total kept with the job.' }),
    blocked: Type.Optional(Type.Object({
      code: Type.Union([Type.Literal('too-few-workers'), Type.Literal('no-capable-worker'), Type.Literal('no-worker'), Type.Literal('relay-unreachable'), Type.Literal('all-paused')]),
      message: Type.String({ description: 'Why, in words: "needs 3 different workers, 1 available".' }),
      sinceMs: Type.Integer({ description: 'Blocked since (ms since 1970).' })
    }, { description: 'Present while the job cannot progress; the job keeps waiting (cancel it, or add workers).' }))
  }),
  workers: Type.Optional(Type.Array(Type.Object({ peerId: Type.String(), results: Type.Integer() }), { description: 'Workers that contributed results (this run\'s, while it runs), most first.' })),
  error: Type.Optional(Type.String())
})

export const JobList = Type.Object({ jobs: Type.Array(JobStatus) })

export const RunResponse = Type.Object({
  outputs: Type.Array(TensorOut),
  agreedBy: Type.Array(Type.String())
})

export const OcrResponse = Type.Object({
  pages: Type.Array(Type.Object({
    text: Type.String({ description: 'Rows joined by newlines.' }),
    lines: Type.Array(Type.Object({
      text: Type.String(),
      score: Type.Number({ description: 'Recognition confidence.' }),
      box: Type.Array(Type.Array(Type.Number(), { minItems: 2, maxItems: 2 }), { description: 'Four corners [x, y] in pixels.' })
    })),
    error: Type.Optional(Type.String())
  }))
})

export const WorkerList = Type.Object({
  workers: Type.Array(Type.Object({
    peerId: Type.String(),
    kind: Type.String(),
    backend: Type.String(),
    threads: Type.Integer(),
    slots: Type.Integer(),
    queueDepth: Type.Integer(),
    freeSlots: Type.Integer(),
    paused: Type.Boolean(),
    models: Type.Array(Type.String()),
    connected: Type.Boolean()
  }))
})

export const Health = Type.Object({
  ok: Type.Boolean({ description: 'A relay is reachable.' }),
  relays: Type.Array(Type.Object({ addr: Type.String(), state: Type.String() })),
  workers: Type.Integer({ description: 'Workers advertising (not paused).' })
})

/** Response map for a route: its success shape and the error shape for every failure status. */
export function responses (ok: Record<number, TSchema | { description: string, content: Record<string, { schema: TSchema }> }>, errors: number[]): Record<number, unknown> {
  const map: Record<number, unknown> = { ...ok }
  for (const status of errors) map[status] = ErrorResponse
  return map
}

/**
 * Batch jobs: POST /v1/jobs (a JSON body, or a JSONL body with the settings in the query string),
 * the list, a job's status, its results (NDJSON), its events (SSE), and cancel.
 */
import { Type } from 'typebox'
import { RequesterError } from '../../index.js'
import { jsonParserOf, parseJsonLines } from '../json-body.js'
import { DEFAULT_JOB_PAGE, MAX_JOB_INPUTS, MAX_RUNNING_JOBS, MAX_STREAMS, MAX_STREAMS_PER_JOB } from '../limits.js'
import { JobBody, JobLines, JobList, JobListQuery, JobParams, JobQuery, JobStatus, ResultLine, responses } from '../schemas.js'
import { sendEvents, sendResults } from '../streams.js'
import type { DatasetInputs, SubmitOptions, TaskInputs } from '../../index.js'
import type { App, GatewayContext } from '../context.js'
import type { JobBodyValue, JobQueryValue } from '../schemas.js'

const MiB = 1024 * 1024

function options (o: JobQueryValue | JobBodyValue): SubmitOptions {
  return { replicas: o.replicas, tolerance: o.tolerance, adaptive: o.adaptive, argmax: o.argmax, spotCheck: o.spotCheck, diversity: o.diversity, label: o.label }
}

export function jobRoutes (app: App, ctx: GatewayContext): void {
  const parse = jsonParserOf(app)
  app.addContentTypeParser('application/x-ndjson', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonLines(body as string, MAX_JOB_INPUTS, parse))
    } catch (err) {
      done(err as Error, undefined)
    }
  })

  app.post('/v1/jobs', {
    bodyLimit: ctx.maxBodyBytes,
    onRequest: async (_request, reply) => { ctx.slots.uploads.take(reply.raw) },
    schema: {
      summary: 'Start a batch job',
      description: `Either JSON { model, inputs: [...] | dataset, replicas, tolerance, ... }, or a JSONL body (application/x-ndjson, one task's inputs per line) with model, replicas, tolerance, ... in the query string. At most ${MAX_JOB_INPUTS} tasks and ${ctx.maxBodyBytes / MiB} MiB; every input is checked against the model before the job starts. The job is kept in the gateway's job store: a gateway restarted mid-job resumes it. At most ${MAX_RUNNING_JOBS} jobs run at once (429 'busy' beyond).`,
      tags: ['jobs'],
      querystring: JobQuery,
      body: { content: { 'application/json': { schema: JobBody }, 'application/x-ndjson': { schema: JobLines } } },
      response: responses({ 202: Type.Object({ id: Type.String(), state: Type.String(), total: Type.Integer() }) }, [400, 401, 404, 413, 415, 429])
    }
  }, async (request, reply) => {
    const body = request.body as JobBodyValue | TaskInputs[]
    let model: string
    let inputs: TaskInputs[] | DatasetInputs
    let settings: SubmitOptions
    if (Array.isArray(body)) {
      const query = request.query
      if (query.model == null) throw new RequesterError('bad-request', 'a JSONL body needs the model in the query string: POST /v1/jobs?model=<name or sha256>')
      model = query.model
      inputs = body
      settings = options(query)
    } else {
      if (Object.keys(request.query).length > 0) throw new RequesterError('bad-request', 'with a JSON body the settings go in the body, not the query string')
      if ((body.inputs == null) === (body.dataset == null)) throw new RequesterError('bad-request', 'give either "inputs" (a list of task inputs) or "dataset"')
      if (body.limit != null && body.dataset == null) throw new RequesterError('bad-request', '"limit" goes with "dataset"')
      model = body.model
      inputs = body.inputs ?? { dataset: body.dataset!, limit: body.limit }
      settings = options(body)
    }
    const job = await ctx.desk.submit(model, inputs, settings)
    reply.status(202).header('location', `/v1/jobs/${job.id}`)
    return { id: job.id, state: job.meta.state, total: job.meta.taskCount }
  })

  app.get('/v1/jobs', {
    schema: {
      summary: 'List the jobs',
      description: 'Newest first, from the gateway\'s job store (running and finished).',
      tags: ['jobs'],
      querystring: JobListQuery,
      response: responses({ 200: JobList }, [400, 401])
    }
  }, async (request) => ({ jobs: await ctx.desk.list(request.query.limit ?? DEFAULT_JOB_PAGE) }))

  app.get('/v1/jobs/:id', {
    schema: {
      summary: 'A job\'s status',
      description: 'Its state, progress, the workers that contributed, and its error if it failed.',
      tags: ['jobs'],
      params: JobParams,
      response: responses({ 200: JobStatus }, [401, 404])
    }
  }, async (request) => await ctx.desk.status(await ctx.desk.get(request.params.id)))

  app.get('/v1/jobs/:id/results', {
    schema: {
      summary: 'A job\'s results as NDJSON',
      description: `One line per task in input order, each as soon as it and every task before it is decided, while the job runs; a finished job's results at once. Each line { index, outputs, agreedBy } or { index, error }; a stream cut short (the gateway stopping) ends with { "error": { code, message } }. At most ${MAX_STREAMS_PER_JOB} results and events streams per job, ${MAX_STREAMS} in all.`,
      tags: ['jobs'],
      params: JobParams,
      response: responses({ 200: { description: 'NDJSON, one ResultLine per line.', content: { 'application/x-ndjson': { schema: ResultLine } } } }, [401, 404, 429])
    }
  }, async (request, reply) => {
    const job = await ctx.desk.get(request.params.id)
    ctx.slots.streams.take(job.id, reply.raw)
    sendResults(reply, ctx.desk, job)
    return reply
  })

  app.get('/v1/jobs/:id/events', {
    schema: {
      summary: 'A job\'s events (server-sent events)',
      description: `Events: state (the job's status, at once), progress (counts, at most every ${ctx.progressMs} ms), worker-joined and worker-left ({ peerId }), end (the final status), then the stream closes. A comment line every ${ctx.heartbeatMs / 1000} s keeps it open through proxies.`,
      tags: ['jobs'],
      params: JobParams,
      response: responses({ 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: Type.String() } } } }, [401, 404, 429])
    }
  }, async (request, reply) => {
    const job = await ctx.desk.get(request.params.id)
    ctx.slots.streams.take(job.id, reply.raw)
    sendEvents(reply, ctx.desk, ctx.net, job, { heartbeatMs: ctx.heartbeatMs, progressMs: ctx.progressMs })
    return reply
  })

  app.delete('/v1/jobs/:id', {
    schema: {
      summary: 'Cancel a job',
      description: 'Stops it for good: it ends failed with the error "cancelled"; results decided so far stay. 409 \'conflict\' when it already ended.',
      tags: ['jobs'],
      params: JobParams,
      response: responses({ 200: JobStatus }, [401, 404, 409])
    }
  }, async (request) => await ctx.desk.status(await ctx.desk.cancel(request.params.id)))
}

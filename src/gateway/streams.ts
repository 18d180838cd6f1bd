/**
 * The two long responses: a job's results as NDJSON in input order, streamed as they are decided,
 * and its events as server-sent events. Both end when the client goes away (an AbortSignal stops
 * the library's generator), and neither lets a client that stops reading pin unbounded memory:
 * NDJSON lines are pulled one at a time as the socket drains; SSE progress snapshots are skipped
 * while the socket is congested (the next one supersedes them).
 */
import { PassThrough, Readable } from 'node:stream'
import { errorBody, toGatewayError } from './errors.js'
import type { FastifyReply } from 'fastify'
import type { Job, JobMeta, Requester, TaskOutput } from '../index.js'
import type { JobDesk, JobStatusValue } from './jobs.js'

/** An AbortSignal that fires when the response closes before it was finished (the client went away). */
export function clientGone (reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) controller.abort() })
  return controller.signal
}

function resultLine (out: TaskOutput): string {
  return JSON.stringify(out.error != null ? { index: out.index, error: out.error } : { index: out.index, outputs: out.outputs, agreedBy: out.agreedBy }) + '\n'
}

/**
 * Every task's line in input order; the stream ends when the job does. A job cancelled while this streams is finished from the store
 * (the tasks left say "cancelled"); a run stopped otherwise (the gateway closing) ends with an
 * error line, since the rest comes only once the job is resumed.
 */
async function * resultLines (desk: JobDesk, first: Job, signal: AbortSignal): AsyncGenerator<string> {
  let job = first
  let next = 0
  for (;;) {
    try {
      for await (const out of job.results({ signal })) {
        if (out.index < next) continue
        next = out.index + 1
        yield resultLine(out)
      }
      // The last task's line can come while the job still verifies (spot checks): the stream ends with the job.
      await Promise.race([job.done, new Promise(resolve => { signal.addEventListener('abort', resolve, { once: true }) })])
      return
    } catch (err) {
      if (signal.aborted) return
      const cancel = desk.cancelling.get(job.id)
      if (cancel == null) {
        const e = toGatewayError(err)
        yield JSON.stringify(errorBody(e.code, e.message)) + '\n'
        return
      }
      await cancel.catch(() => {})
      job = await desk.get(job.id)
    }
  }
}

export function sendResults (reply: FastifyReply, desk: JobDesk, job: Job): void {
  const signal = clientGone(reply)
  reply.header('content-type', 'application/x-ndjson; charset=utf-8').header('cache-control', 'no-store')
  reply.send(Readable.from(resultLines(desk, job, signal), { objectMode: false }))
}

export interface EventOptions {
  heartbeatMs: number
  progressMs: number
}

/**
 * A job's events: `state` (its status at once), `progress` (at most every progressMs, and on the
 * end), `worker-joined` / `worker-left` (the network's), `end` (the final status), then the stream
 * closes. A comment line every heartbeatMs keeps proxies from closing a quiet stream.
 */
export function sendEvents (reply: FastifyReply, desk: JobDesk, net: Requester, job: Job, o: EventOptions): void {
  const out = new PassThrough()
  let closed = false
  const write = (text: string): void => { if (!closed) out.write(text) }
  const send = (event: string, data: unknown): void => { write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`) }

  let lastProgress = 0
  let progressTimer: ReturnType<typeof setTimeout> | undefined
  const sendProgress = (): void => {
    clearTimeout(progressTimer)
    progressTimer = undefined
    // A congested socket skips this snapshot; the one after the drain carries the news.
    if (out.writableNeedDrain) return
    lastProgress = Date.now()
    send('progress', desk.describe(job).progress)
  }
  const onProgress = (): void => {
    if (progressTimer != null) return
    const wait = lastProgress + o.progressMs - Date.now()
    if (wait <= 0) sendProgress()
    else progressTimer = setTimeout(sendProgress, wait)
  }
  const onDrain = (): void => { onProgress() }
  const onWorker = (e: Event): void => { send(e.type, (e as CustomEvent<{ peerId: string }>).detail) }
  const heartbeat = setInterval(() => { write(': keep-alive\n\n') }, o.heartbeatMs)

  const close = (): void => {
    if (closed) return
    closed = true
    clearInterval(heartbeat)
    clearTimeout(progressTimer)
    job.removeEventListener('progress', onProgress)
    job.removeEventListener('end', onEnd)
    net.removeEventListener('worker-joined', onWorker)
    net.removeEventListener('worker-left', onWorker)
    out.off('drain', onDrain)
    out.end()
  }
  const finish = async (final: JobMeta | undefined): Promise<void> => {
    if (closed) return
    const status: JobStatusValue = desk.describe(final != null ? await desk.get(job.id) : job)
    send('progress', status.progress)
    send('end', status)
    close()
  }
  function onEnd (): void {
    // A cancel ends the run first and settles the state after: wait for it.
    const settled = desk.cancelling.get(job.id) ?? job.done
    settled.then(finish, async () => { await finish(undefined) }).catch(() => { close() })
  }

  reply.raw.once('close', close)
  reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-store').header('x-accel-buffering', 'no')
  reply.send(out)
  send('state', desk.describe(job))
  if (job.finished) {
    onEnd()
    return
  }
  job.addEventListener('progress', onProgress)
  job.addEventListener('end', onEnd)
  net.addEventListener('worker-joined', onWorker)
  net.addEventListener('worker-left', onWorker)
  out.on('drain', onDrain)
}

/**
 * The MCP server's tools over one Requester: list workers and models, run a model once, read text
 * from images, and batch jobs (start, status, results, cancel). Every tool answers; a failure is
 * an MCP tool error (isError) whose text starts with the library's error code, the same words the
 * HTTP gateway uses, with { code, message } as structured content. Nothing an agent sends can
 * throw out of a tool; what it may ask for is bounded (limits.ts) and said in each description.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { CallToolRequestSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js'
import * as z from 'zod'
import { RequesterError, ocrPageJson } from '../index.js'
import { toRequesterError } from '../node/requester-errors.js'
import { Batches } from './batches.js'
import { jsonlInputs, readPages } from './inputs.js'
import { describeOutputs, outputJson } from './outputs.js'
import {
  DEFAULT_PAGE, MAX_FILE_BYTES, MAX_FILE_INPUTS, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_IMAGES, MAX_INLINE_INPUTS,
  MAX_PAGE, MAX_RUNNING_BATCHES, MAX_TENSOR_VALUES, MAX_TOTAL_PIXELS, MAX_WAIT_SECONDS
} from './limits.js'
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js'
import type { CallToolResult, ServerNotification, ServerRequest, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js'
import type { ModelHandle, OcrBatchProgress, Requester, TensorInfo } from '../index.js'

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>

/** What a tool returns: text an agent reads first, and the same as structured content. */
interface Reply {
  text: string
  structured: Record<string, unknown>
}

export interface McpServerOptions {
  /** Where unexpected errors are reported with their stack (the agent gets the code and message only). */
  log?: (message: string) => void
  /** The server's version as clients see it. */
  version?: string
}

const MiB = 1024 * 1024

const MODEL = z.string().min(1).max(4096).describe(
  'A built-in model name (see list_models: "digits" classifies a 28×28 handwritten digit), the sha256 of a model used before, ' +
  'or the path of an .onnx file on this machine (relative paths start at the server\'s working directory); workers fetch it by hash.')
const TASK_INPUTS = z.record(z.string(), z.unknown()).describe(
  'One task\'s inputs, keyed by the model\'s input names (list_models shows them): each a nested array whose shape is the tensor\'s, ' +
  'or { "dims": [...], "data": [flat row-major values] }; 64-bit integers as strings.')
const REPLICAS = z.number().int().min(1).max(3).optional().describe('Distinct workers whose results must agree, 1–3 (default 1).')
const TOLERANCE = z.number().min(0).max(1).optional().describe('Relative difference under which replicas\' float outputs agree (default 1e-4).')
const JOB_ID = z.string().min(1).max(128).describe('The job id start_batch returned.')

const READ_ONLY: ToolAnnotations = { readOnlyHint: true, openWorldHint: false }
const USES_NETWORK: ToolAnnotations = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true }

function tensorInfo (t: TensorInfo): { name: string, dtype: string, dims: Array<number | string> } {
  return { name: t.name, dtype: t.dtype, dims: t.dims }
}

function modelJson (m: ModelHandle): Record<string, unknown> {
  return { name: m.name, sha256: m.sha256, ...(m.builtin != null ? { builtin: true } : {}), size: m.size, inputs: m.inputs.map(tensorInfo), outputs: m.outputs.map(tensorInfo) }
}

const signature = (list: readonly TensorInfo[]): string => list.map(t => `${t.name} ${t.dtype} [${t.dims.join(', ')}]`).join(', ')


const json = (v: unknown): string => JSON.stringify(v)

function issuesText (error: z.ZodError): string {
  return error.issues.map(i => `${i.path.length > 0 ? i.path.join('.') : 'arguments'}: ${i.message}`).join('; ')
}

/** The MCP server over `requester`: connect it to a transport; closing it leaves the requester running. */
export function createMcpServer (requester: Requester, options: McpServerOptions = {}): McpServer {
  const server = new McpServer({ name: 'p2p-ai-agents', version: options.version ?? '0.1.0' }, {
    instructions: 'Runs ONNX models on a peer-to-peer network of volunteer workers. Start with list_workers (is anyone there?) and list_models. ' +
      'run_model runs one input and waits; start_batch runs many (then job_status with wait_seconds, and get_results page by page). ' +
      'read_text_from_images reads PNG pages (OCR). A failed call\'s text starts with an error code: bad-request, bad-input, bad-model, bad-image, ' +
      'unknown-model, unknown-job, too-large, busy, no-workers, task-failed, stalled, cancelled, conflict.'
  })
  const batches = new Batches(requester)
  const calls = new Map<string, (args: unknown, extra: Extra) => Promise<CallToolResult>>()
  let ocrTurn: Promise<unknown> = Promise.resolve()

  const toolError = (err: unknown): CallToolResult => {
    const e = toRequesterError(err)
    if (!(err instanceof RequesterError)) options.log?.(`unexpected error, reported as ${e.code}: ${(err as Error)?.stack ?? String(err)}`)
    return { isError: true, content: [{ type: 'text', text: `${e.code}: ${e.message}` }], structuredContent: { code: e.code, message: e.message } }
  }

  function tool<S extends z.ZodRawShape> (name: string, config: { title: string, description: string, input: S, annotations: ToolAnnotations }, run: (args: z.infer<z.ZodObject<S>>, extra: Extra) => Promise<Reply>): void {
    const schema = z.strictObject(config.input)
    const call = async (args: unknown, extra: Extra): Promise<CallToolResult> => {
      const parsed = schema.safeParse(args ?? {})
      if (!parsed.success) return toolError(new RequesterError('bad-request', `${name}: ${issuesText(parsed.error)}`))
      try {
        const reply = await run(parsed.data, extra)
        return { content: [{ type: 'text', text: reply.text }], structuredContent: reply.structured }
      } catch (err) {
        return toolError(err)
      }
    }
    server.registerTool(name, { title: config.title, description: config.description, inputSchema: schema, annotations: config.annotations }, call)
    calls.set(name, call)
  }

  tool('list_workers', {
    title: 'List workers',
    description: 'The workers this server hears of through its relays: backend, free slots, paused, and whether it holds a direct connection to each; ' +
      'and the state of each relay. No workers means run_model and batches wait (up to 30 s, then no-workers).',
    input: {},
    annotations: READ_ONLY
  }, async () => {
    const workers = requester.workers().map(w => ({ peer_id: w.peerId, kind: w.kind, backend: w.backend, threads: w.threads, slots: w.slots, free_slots: w.freeSlots, paused: w.paused, connected: w.connected, models_held: w.models.length }))
    const relays = requester.peer.relays.views.map(v => ({ addr: v.addr, state: v.state, ...(v.error != null ? { error: v.error } : {}) }))
    const ready = workers.filter(w => !w.paused).length
    const text = `${workers.length} worker(s), ${ready} not paused; relays: ${relays.map(r => `${r.addr} ${r.state}`).join(', ')}\n${json({ workers, relays })}`
    return { text, structured: { workers, relays } }
  })

  tool('list_models', {
    title: 'List models',
    description: 'The models run_model and start_batch accept by name or sha256: the built-ins (digits: a handwritten digit classifier; ocr-det and ocr-rec: the OCR pipeline\'s two models) ' +
      'and every model this server was given by path. Each with its inputs and outputs (name, dtype, dims; a string dim takes any size).',
    input: {},
    annotations: READ_ONLY
  }, async () => {
    const handles = await requester.models()
    const models = handles.map(modelJson)
    const lines = handles.map(m => `${m.name}${m.builtin != null ? ' (built-in)' : ''} sha256 ${m.sha256}: inputs ${signature(m.inputs)} → outputs ${signature(m.outputs)}`)
    return { text: `${lines.join('\n')}\n${json({ models })}`, structured: { models } }
  })

  tool('run_model', {
    title: 'Run a model once',
    description: 'Runs an ONNX model on one set of inputs on the network\'s workers and returns its outputs, verified (replicas, spot checks) before they are returned. ' +
      `Outputs are { name, dtype, dims, data } (data flat, row-major); one with more than ${MAX_TENSOR_VALUES} values comes back summarised (dims, first values, min, max, argmax). ` +
      'Waits up to 30 s for a worker (then no-workers). For many inputs use start_batch.',
    input: { model: MODEL, inputs: TASK_INPUTS, replicas: REPLICAS, tolerance: TOLERANCE },
    annotations: USES_NETWORK
  }, async ({ model, inputs, replicas, tolerance }, extra) => {
    const handle = await requester.model(model)
    const t0 = performance.now()
    const out = await requester.run(handle.sha256, inputs, { replicas, tolerance, signal: extra.signal })
    const timeMs = Math.round(performance.now() - t0)
    const outputs = (out.outputs ?? []).map(outputJson)
    const structured = { model: { name: handle.name, sha256: handle.sha256 }, outputs, agreed_by: out.agreedBy ?? [], time_ms: timeMs }
    const text = `${handle.name}: agreed by ${out.agreedBy?.length ?? 0} worker(s) in ${timeMs} ms\n${describeOutputs(outputs)}\n${json(structured)}`
    return { text, structured }
  })

  tool('read_text_from_images', {
    title: 'Read text from images (OCR)',
    description: 'Reads the text in PNG images (scans, photos of pages, screenshots, receipts) with OCR run on the network\'s workers (PP-OCRv4: Chinese and English). ' +
      'Returns each page\'s text, lines joined by newlines; the structured content also has every line with its confidence and box (four corner points, in pixels). ' +
      `At most ${MAX_IMAGES} images per call, each at most ${MAX_IMAGE_BYTES / MiB} MiB and ${MAX_IMAGE_PIXELS / 1e6} megapixels, ${MAX_TOTAL_PIXELS / 1e6} megapixels together; ` +
      'one call runs at a time (others wait their turn). A page takes seconds.',
    input: {
      paths: z.array(z.string().min(1).max(4096)).min(1).max(MAX_IMAGES).describe('PNG files on this machine (relative paths start at the server\'s working directory).'),
      replicas: REPLICAS
    },
    annotations: USES_NETWORK
  }, async ({ paths, replicas }, extra) => {
    const progressToken = extra._meta?.progressToken
    let sent = 0
    // Sent in order and awaited before the answer: a client drops progress that arrives after it.
    let notified = Promise.resolve()
    const onProgress = (p: OcrBatchProgress): void => {
      if (progressToken === undefined) return
      const share = p.job.total > 0 ? p.job.done / p.job.total : 0
      const progress = Math.floor(p.phase === 'detect' ? 50 * share : p.phase === 'recognize' ? 50 + 50 * share : 100)
      if (progress <= sent) return
      sent = progress
      const message = p.phase === 'detect' ? `finding text: ${p.job.done}/${p.job.total} pages` : p.phase === 'recognize' ? `reading ${p.lines} lines` : 'done'
      notified = notified.then(async () => { await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total: 100, message } }) }).catch(() => {})
    }
    // One OCR call at a time, its files read in its turn: each holds its pages (up to MAX_TOTAL_PIXELS × 4 bytes decoded) until it ends.
    const turn = ocrTurn.then(async () => await requester.ocr(await readPages(paths), { replicas, onProgress, signal: extra.signal }))
    ocrTurn = turn.catch(() => {})
    const results = await turn
    await notified
    const pages = results.map((r, i) => ({ path: paths[i]!, ...ocrPageJson(r) }))
    const text = pages.map(p => `# ${p.path}${p.error != null ? ` (failed: ${p.error})` : ''}\n${p.text}`).join('\n\n')
    return { text, structured: { pages } }
  })

  tool('start_batch', {
    title: 'Start a batch job',
    description: 'Runs a model over many inputs as one job on the network\'s workers and returns its job id at once; follow it with job_status (wait_seconds to wait for the end) ' +
      'and read outputs with get_results, in input order. Every input is checked against the model first (bad-input names the first wrong one, counting from 0). ' +
      `inputs: up to ${MAX_INLINE_INPUTS} input objects inline, or the path of a JSONL file with one input object per line (up to ${MAX_FILE_INPUTS} lines, ${MAX_FILE_BYTES / MiB} MiB). ` +
      `At most ${MAX_RUNNING_BATCHES} batches run at once. Jobs are kept on disk: one stopped when the server stopped continues when job_status or get_results asks for it.`,
    input: {
      model: MODEL,
      inputs: z.union([
        z.array(TASK_INPUTS).min(1).max(MAX_INLINE_INPUTS),
        z.string().min(1).max(4096).describe('Path of a JSONL file, one input object per line.')
      ]).describe('The input objects, or a JSONL file of them.'),
      replicas: REPLICAS,
      tolerance: TOLERANCE
    },
    annotations: USES_NETWORK
  }, async ({ model, inputs, replicas, tolerance }) => {
    const source = typeof inputs === 'string' ? await jsonlInputs(inputs) : inputs
    const job = await batches.start(model, source, { replicas, tolerance })
    const structured = { job_id: job.id, model: { name: job.meta.model.name, sha256: job.meta.model.sha256 }, total: job.meta.taskCount }
    return { text: `started job ${job.id}: ${job.meta.taskCount} task(s) of ${job.meta.model.name}\n${json(structured)}`, structured }
  })

  tool('job_status', {
    title: 'Job status',
    description: 'A batch job\'s state (queued, running, verifying, done, failed, cancelled), tasks done and failed of the total, rate, time left and its error if it failed. ' +
      'While the job cannot progress, blocked says why in words ("needs 3 different workers, 1 available", "no worker can run this model"); it keeps waiting until workers come or it is cancelled. ' +
      `wait_seconds (up to ${MAX_WAIT_SECONDS}) waits for the job to end before answering, so there is no need to call this in a tight loop.`,
    input: {
      job_id: JOB_ID,
      wait_seconds: z.number().min(0).max(MAX_WAIT_SECONDS).optional().describe('Wait up to this long for the job to end (default 0: answer at once).')
    },
    annotations: READ_ONLY
  }, async ({ job_id: jobId, wait_seconds: waitSeconds }, extra) => {
    let open = await batches.open(jobId)
    if (waitSeconds != null && waitSeconds > 0 && !open.job.finished) {
      let timer: ReturnType<typeof setTimeout> | undefined
      let onAbort: (() => void) | undefined
      await Promise.race([
        open.job.done,
        new Promise<void>(resolve => {
          timer = setTimeout(resolve, waitSeconds * 1000)
          onAbort = resolve
          extra.signal.addEventListener('abort', onAbort)
        })
      ]).finally(() => {
        clearTimeout(timer)
        if (onAbort != null) extra.signal.removeEventListener('abort', onAbort)
      })
      open = await batches.open(jobId)
    }
    const status = batches.status(open)
    const text = `job ${status.job_id}: ${status.state}${status.running ? ' (running)' : ''}, ${status.done}/${status.total} done, ${status.failed} failed` +
      `${status.blocked != null ? `; cannot progress: ${status.blocked.message}` : ''}${status.error != null ? `; error: ${status.error}` : ''}${status.note != null ? `; ${status.note}` : ''}\n${json(status)}`
    return { text, structured: { ...status } }
  })

  tool('get_results', {
    title: 'Get batch results',
    description: 'A page of a batch job\'s results in input order, from offset up to the first task not decided yet: each { index, outputs, agreed_by } or { index, error }. ' +
      `limit: 1–${MAX_PAGE} (default ${DEFAULT_PAGE}); a page also stops at about 1 MiB of JSON, and outputs with more than ${MAX_TENSOR_VALUES} values are summarised. ` +
      'Continue from next_offset; complete is true once every result of a finished job has been read.',
    input: {
      job_id: JOB_ID,
      offset: z.number().int().min(0).optional().describe('Index of the first result (default 0).'),
      limit: z.number().int().min(1).max(MAX_PAGE).optional().describe(`Most results in this page (default ${DEFAULT_PAGE}).`)
    },
    annotations: READ_ONLY
  }, async ({ job_id: jobId, offset, limit }) => {
    const page = await batches.page(await batches.open(jobId), offset ?? 0, limit ?? DEFAULT_PAGE)
    const failed = page.results.filter(r => r.error != null).length
    const text = `job ${page.job_id} (${page.state}): results ${offset ?? 0}–${page.next_offset - 1} of ${page.total}${failed > 0 ? `, ${failed} failed` : ''}` +
      `${page.complete ? ', complete' : `; next_offset ${page.next_offset}`}\n${json(page)}`
    return { text, structured: { ...page } }
  })

  tool('cancel_job', {
    title: 'Cancel a batch job',
    description: 'Stops a batch job for good: it ends in the state cancelled; results decided before stay readable with get_results. A finished job gives conflict.',
    input: { job_id: JOB_ID },
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false }
  }, async ({ job_id: jobId }) => {
    const meta = await batches.cancel(jobId)
    const structured = { job_id: meta.jobId, state: meta.state, ...(meta.error != null ? { error: meta.error } : {}) }
    return { text: `job ${meta.jobId}: ${meta.state}${meta.error != null ? ` (${meta.error})` : ''}`, structured }
  })

  // The SDK's own tools/call handler answers a schema violation with its own wording; this one
  // answers it as every other failure here, "bad-request: …", so an agent sees one error format.
  server.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const call = calls.get(request.params.name)
    if (call == null) throw new McpError(ErrorCode.InvalidParams, `Tool ${request.params.name} not found`)
    return await call(request.params.arguments, extra)
  })
  return server
}

/**
 * Runs a Node worker's inference in child processes (inference-host.ts), one task per process at
 * a time, at most `size` processes (the worker's slots). onnxruntime-node has no memory bound of
 * its own: a 143-byte model whose ConstantOfShape is sized by the task input can allocate
 * gigabytes. In a child, that costs only the child: it is killed, the task fails with a reason,
 * and a fresh process serves the next task while the others keep running theirs. A task past its
 * deadline is stopped the same way (onnxruntime cannot interrupt a run).
 *
 * The memory cap is a watchdog reading each child's resident set (VmRSS in /proc/<pid>/status)
 * every `watchIntervalMs`, not an OS address-space limit: V8 reserves ~32 GB of address space at
 * start (WebAssembly guard regions; tsx's loader itself instantiates WebAssembly), so
 * `ulimit -v`/RLIMIT_AS either bounds nothing or stops the child from starting (measured here:
 * under `ulimit -v 4000000` tsx fails with "Cannot allocate Wasm memory"). RSS is the memory the
 * model really touches; the overshoot is what it touches in one interval (a few tens of MB at
 * memset speed). cgroups would be exact but need a delegated cgroup, which a volunteer's machine
 * rarely gives. Without /proc (not Linux) the cap is not enforced and `memoryCapEnforced` says so.
 *
 * Model bytes stay with the parent (its model store and transfers); a child asks for them once
 * per session it creates, over the IPC channel (structured clone, no JSON of big arrays).
 *
 * A batch of tasks (executeMany, from the work queue) travels as one message each way and runs
 * on one process like a task: one IPC round trip for the batch instead of one per task.
 */
import { fork } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { setPriority } from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { TaskError, toTaskError } from '../core/errors.js'
import { DEFAULT_LIMITS } from '../core/limits.js'
import { compactTensor, nodeBackendName } from './inference-protocol.js'
import { landed } from '../runtime/batch-outcome.js'
import type { ChildProcess } from 'node:child_process'
import type { BackendCandidate } from '../core/backend-picker.js'
import type { TaskRequest } from '../core/task-types.js'
import type { BatchOutcome, ExecutionResult } from '../core/work-queue.js'
import type { ModelFetcher } from '../runtime/ort-runner.js'
import type { FromHost, HostConfig, ToHost, WireOutcome } from './inference-protocol.js'

/** Resident memory an inference process may use unless told otherwise (`--max-memory-mb`). */
export const DEFAULT_MAX_MEMORY_MB = 2048

const HOST_ENTRY = fileURLToPath(new URL('./inference-host.ts', import.meta.url))
/** The children run TypeScript through tsx, as every entry point here does. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
const PROC_STATUS = existsSync('/proc/self/status')
/** Niceness of the inference processes (0 is the worker's; 19 the lowest). */
const INFERENCE_NICE = 10
/**
 * glibc's mmap threshold for the inference processes (bytes). glibc raises it (up to 32 MiB) each
 * time a large mmapped block is freed, after which onnxruntime's weight and arena blocks come from
 * the heap, fragment it and stay resident after their session is released: an inference process
 * cycling 16 sessions of the OCR detection model grew 632 → 1,151 MB over 80 sessions. A fixed
 * threshold keeps those blocks mmapped, returned to the system on release: 622 → 913 MB, flat once
 * 16 sessions are held, with the same inference times (det 39 ms, 16 digits 0.30 ms). Only read at
 * process start, so it is set in the child's environment; a value the user set wins.
 */
const MALLOC_MMAP_THRESHOLD = String(128 * 1024)

export interface InferencePoolOptions {
  /** Most processes at once: one per slot. */
  size: number
  /** onnxruntime thread counts offered as backend candidates (e.g. [1, 4]). */
  threads: number[]
  /** Model bytes, on the parent's side. */
  fetchModel: ModelFetcher
  /** Resident memory per process, MiB (default DEFAULT_MAX_MEMORY_MB). */
  maxMemoryMb?: number
  /** Model bytes of sessions each process keeps (see OrtRunner). */
  sessionBudgetBytes?: number
  /** Output bytes of one task's reply, and what a batch's outputs may reach before the rest run alone (see HostConfig; default: the frame limit). */
  maxOutputBytes?: number
  /** How often the memory watchdog looks (default 20 ms). */
  watchIntervalMs?: number
  /** A process ended while in use, and why (for the worker's log). */
  onRestart?: (reason: string) => void
}

interface Host {
  child: ChildProcess
  ready: Promise<void>
  isReady: boolean
  exited: boolean
  /** Why the pool killed it, given to the task it was running. */
  killedFor?: TaskError
  /** What it runs now: one task's answer is an ExecutionResult, a batch's its WireOutcomes. */
  task?: { id: number, resolve: (r: ExecutionResult | WireOutcome[]) => void, reject: (e: TaskError) => void, threads: number }
  /** Models with a session, per thread count. */
  sessions: Map<number, Set<string>>
}

/** Every child of every pool: killed synchronously when this process exits, however it exits. */
const allChildren = new Set<ChildProcess>()
let exitHookInstalled = false
function trackChild (child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.on('exit', () => { for (const c of allChildren) c.kill('SIGKILL') })
  }
  allChildren.add(child)
  child.once('exit', () => { allChildren.delete(child) })
}

/** A request whose tensors are exactly their bytes (see compactTensor). */
function compactRequest (request: TaskRequest): TaskRequest {
  return { ...request, inputs: request.inputs.map(compactTensor) }
}

/** Resident set of a process in bytes, or undefined if it cannot be read (gone, or no /proc). */
function residentBytes (pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m == null ? undefined : Number(m[1]) * 1024
  } catch {
    return undefined
  }
}

export class InferencePool {
  readonly size: number
  readonly maxMemoryMb: number
  /** Whether the memory cap is enforced on this platform. */
  readonly memoryCapEnforced = PROC_STATUS
  private readonly options: InferencePoolOptions
  private readonly hosts = new Set<Host>()
  private readonly idle: Host[] = []
  private readonly waiters: Array<{ resolve: (h: Host) => void, reject: (e: unknown) => void }> = []
  private readonly watchdog?: ReturnType<typeof setInterval>
  private nextTaskId = 0
  private stopped = false

  constructor (options: InferencePoolOptions) {
    this.options = options
    this.size = Math.max(1, options.size)
    this.maxMemoryMb = options.maxMemoryMb ?? DEFAULT_MAX_MEMORY_MB
    if (this.memoryCapEnforced) {
      this.watchdog = setInterval(() => { this.watch() }, options.watchIntervalMs ?? 20)
      this.watchdog.unref()
    }
  }

  /** One backend candidate per thread count, each running its tasks on any free process. */
  get candidates (): BackendCandidate[] {
    return this.options.threads.map(threads => ({
      name: nodeBackendName(threads),
      execute: async (request: TaskRequest, requester: string, signal?: AbortSignal) => await this.execute(threads, request, requester, signal),
      executeMany: async (requests: TaskRequest[], requester: string, signal?: AbortSignal) => await this.executeMany(threads, requests, requester, signal),
      release: async (sha256: string) => { this.release(threads, sha256) }
    }))
  }

  /** Models some process holds a session for, per thread count's backend. */
  cachedModels (threads: number): string[] {
    return [...new Set([...this.hosts].flatMap(h => [...h.sessions.get(threads) ?? []]))]
  }

  /** Process ids now running (tests, logs). */
  get pids (): number[] {
    return [...this.hosts].flatMap(h => h.child.pid == null ? [] : [h.child.pid])
  }

  /** Starts every process now rather than on first use (so the first tasks do not wait for one to start). */
  async warm (): Promise<void> {
    while (this.hosts.size < this.size) this.idle.push(this.spawn())
    await Promise.all([...this.hosts].map(async h => { await h.ready.catch(() => {}) }))
  }

  /** Kills every process; tasks in flight fail. */
  stop (): void {
    this.stopped = true
    clearInterval(this.watchdog)
    for (const w of this.waiters.splice(0)) w.reject(new TaskError('inference-failed', 'the worker is stopping'))
    for (const h of this.hosts) this.kill(h, new TaskError('inference-failed', 'the worker is stopping'))
  }

  private async execute (threads: number, request: TaskRequest, requester: string, signal?: AbortSignal): Promise<ExecutionResult> {
    return await this.onHost(threads, request.model.sha256, signal, id => ({ type: 'execute', id, threads, request: compactRequest(request), requester })) as ExecutionResult
  }

  /** Tasks of one model and requester in one message to one process (see OrtRunner.executeMany). */
  private async executeMany (threads: number, requests: TaskRequest[], requester: string, signal?: AbortSignal): Promise<BatchOutcome[]> {
    const outcomes = await this.onHost(threads, requests[0].model.sha256, signal, id => ({ type: 'executeMany', id, threads, requests: requests.map(compactRequest), requester })) as WireOutcome[]
    return await landed(outcomes, requests, async (request) => await this.execute(threads, request, requester, signal))
  }

  /** Sends `message` (built with its id) to a free process and resolves with its answer; `signal` kills the process. */
  private async onHost (threads: number, sha256: string, signal: AbortSignal | undefined, message: (id: number) => ToHost): Promise<ExecutionResult | WireOutcome[]> {
    signal?.throwIfAborted()
    const host = await this.acquire(sha256, threads, signal)
    const onAbort = (): void => { this.kill(host, toTaskError(signal?.reason, 'timeout')) }
    try {
      await host.ready
      signal?.throwIfAborted()
      signal?.addEventListener('abort', onAbort, { once: true })
      return await new Promise<ExecutionResult | WireOutcome[]>((resolve, reject) => {
        const id = ++this.nextTaskId
        host.task = { id, resolve, reject, threads }
        this.post(host, message(id))
      })
    } finally {
      signal?.removeEventListener('abort', onAbort)
      host.task = undefined
      this.giveBack(host)
    }
  }

  private release (threads: number, sha256: string): void {
    for (const h of this.hosts) {
      if (h.sessions.get(threads)?.delete(sha256) === true) this.post(h, { type: 'release', threads, sha256 })
    }
  }

  /** A free process: one holding this model's session if any, else any, else a new one, else the first to free up. */
  private async acquire (sha256: string, threads: number, signal?: AbortSignal): Promise<Host> {
    if (this.stopped) throw new TaskError('inference-failed', 'the worker is stopping')
    const warm = this.idle.findIndex(h => h.sessions.get(threads)?.has(sha256) === true)
    if (warm >= 0) return this.idle.splice(warm, 1)[0]
    if (this.idle.length > 0) return this.idle.shift()!
    if (this.hosts.size < this.size) return this.spawn()
    return await new Promise<Host>((resolve, reject) => {
      const waiter = { resolve, reject }
      this.waiters.push(waiter)
      signal?.addEventListener('abort', () => {
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
        reject(signal.reason)
      }, { once: true })
    })
  }

  private giveBack (host: Host): void {
    if (host.exited || !this.hosts.has(host)) {
      // Its place is free: a waiting task gets a fresh process.
      if (this.waiters.length > 0 && !this.stopped && this.hosts.size < this.size) this.waiters.shift()!.resolve(this.spawn())
      return
    }
    const waiter = this.waiters.shift()
    if (waiter != null) waiter.resolve(host)
    else this.idle.push(host)
  }

  private spawn (): Host {
    const config: HostConfig = { threads: this.options.threads, sessionBudgetBytes: this.options.sessionBudgetBytes, maxOutputBytes: this.options.maxOutputBytes ?? DEFAULT_LIMITS.maxFrameBytes }
    const child = fork(HOST_ENTRY, [JSON.stringify(config)], {
      execArgv: ['--import', TSX_LOADER],
      env: { MALLOC_MMAP_THRESHOLD_: MALLOC_MMAP_THRESHOLD, ...process.env },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    trackChild(child)
    // Below the worker's own priority: inference saturating every core must not starve the
    // worker's networking (heartbeats, WebRTC), or its requesters would think it gone.
    if (child.pid != null) {
      try {
        setPriority(child.pid, INFERENCE_NICE)
      } catch {} // not permitted here: same priority, still correct
    }
    let ready!: () => void
    let failed!: (e: TaskError) => void
    const host: Host = {
      child,
      ready: new Promise<void>((resolve, reject) => { ready = resolve; failed = reject }),
      isReady: false,
      exited: false,
      sessions: new Map()
    }
    host.ready.catch(() => {}) // a task waiting on it reports it
    this.hosts.add(host)
    child.on('message', (m: FromHost) => { this.onMessage(host, m, ready) })
    child.on('error', (err) => { this.onExit(host, `could not start: ${err.message}`, failed) })
    child.on('exit', (code, signal) => { this.onExit(host, signal != null ? `killed by ${signal}` : `exit code ${code ?? '?'}`, failed) })
    return host
  }

  private onMessage (host: Host, m: FromHost, ready: () => void): void {
    switch (m.type) {
      case 'ready':
        host.isReady = true
        ready()
        return
      case 'model':
        this.options.fetchModel(m.ref, m.from).then(
          bytes => { this.post(host, { type: 'model', id: m.id, bytes }) },
          (err: unknown) => {
            const e = toTaskError(err, 'model-unavailable')
            this.post(host, { type: 'model', id: m.id, error: { code: e.code, message: e.message } })
          }
        )
        return
      case 'result':
      case 'results':
      case 'error': {
        const task = host.task
        if (task == null || task.id !== m.id) return
        host.sessions.set(task.threads, new Set(m.sessions))
        if (m.type === 'result') task.resolve(m.result)
        else if (m.type === 'results') task.resolve(m.outcomes)
        else task.reject(new TaskError(m.error.code, m.error.message))
      }
    }
  }

  private onExit (host: Host, how: string, failed: (e: TaskError) => void): void {
    if (host.exited) return
    host.exited = true
    const wasReady = host.isReady
    this.forget(host)
    const why = host.killedFor ?? new TaskError('inference-failed', wasReady
      ? `the inference process ended while running this task (${how})`
      : `the inference process could not start (${how})`)
    failed(why)
    if (host.task != null) {
      host.task.reject(why)
      if (host.killedFor == null || host.killedFor.code !== 'timeout') this.options.onRestart?.(why.message)
    }
    // Keep the pool warm after a loss, but never loop on a process that cannot start.
    if (wasReady && !this.stopped && this.hosts.size < this.size && this.waiters.length === 0) this.idle.push(this.spawn())
  }

  /** Takes a process out of service: its place can be filled at once. */
  private forget (host: Host): void {
    this.hosts.delete(host)
    const i = this.idle.indexOf(host)
    if (i >= 0) this.idle.splice(i, 1)
  }

  private kill (host: Host, why: TaskError): void {
    if (host.exited) return
    host.killedFor ??= why
    this.forget(host)
    host.child.kill('SIGKILL')
  }

  private post (host: Host, m: ToHost): void {
    if (host.exited || !host.child.connected) return
    try {
      host.child.send(m, (err) => { if (err != null) this.kill(host, new TaskError('inference-failed', `could not reach the inference process: ${err.message}`)) })
    } catch (err) {
      this.kill(host, new TaskError('inference-failed', `could not reach the inference process: ${(err as Error).message}`))
    }
  }

  private watch (): void {
    const cap = this.maxMemoryMb * 1024 * 1024
    for (const h of this.hosts) {
      const pid = h.child.pid
      if (pid == null) continue
      const rss = residentBytes(pid)
      if (rss == null || rss <= cap) continue
      this.kill(h, new TaskError('inference-failed',
        `the model used more than ${this.maxMemoryMb} MiB on this worker (cap --max-memory-mb; ${Math.round(rss / 1024 / 1024)} MiB when stopped)`))
    }
  }
}

/**
 * Shared helpers for the integration tests: a real relay on 127.0.0.1, real Node peers that
 * meet through it and talk over direct WebRTC, and `src/node/worker.ts` as a child process.
 *
 * Everything waits on events (libp2p `connection:open`, relay state changes, adverts, child
 * process output lines) with a bounded timeout that fails with a message saying what was
 * awaited; nothing sleeps to synchronise. Everything started is registered with a Cleanup,
 * which stops it all whatever the test did.
 */
import '../../src/node/polyfill.js'
import { MemoryModelStore } from '../../src/core/model-store.js'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { peerIdFromString } from '@libp2p/peer-id'
import { startRelayNode } from '../../relay/relay-node.js'
import { startNodePeer } from '../../src/node/node-peer.js'
import { createPeer } from '../../src/net/peer.js'
import { RelaySet } from '../../src/net/relays.js'
import { NOT_A_WORKER } from '../../src/core/discovery/advert.js'
import { connectionKind } from '../../src/net/connection-kind.js'
import { builtinModel, modelRef } from '../../src/models/catalog.js'
import { argmax, DIGITS_INPUT, DIGITS_OUTPUT_PROBS } from '../../src/models/digits.js'
import * as ort from 'onnxruntime-node'
import { TaskError } from '../../src/core/errors.js'
import type { ChildProcess } from 'node:child_process'
import type { Connection, PeerId, PrivateKey } from '@libp2p/interface'
import type { RelayNode } from '../../relay/relay-node.js'
import type { NodePeer, NodePeerOptions } from '../../src/node/node-peer.js'
import type { RelayState } from '../../src/net/relays.js'
import type { Peer, PeerOptions } from '../../src/net/peer.js'
import type { TaskRequest } from '../../src/core/task-types.js'
import type { Executor } from '../../src/core/work-queue.js'
import type { Advert } from '../../src/core/discovery/advert.js'
import type { DigitDataset } from '../../src/models/datasets.js'

export { heldOutDigits } from '../../src/node/mnist.js'
export type { Digit } from '../../src/node/mnist.js'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const WORKER_ENTRY = fileURLToPath(new URL('../../src/node/worker.ts', import.meta.url))
export const DIGITS_MODEL_FILE = fileURLToPath(new URL('../../public/models/digits.onnx', import.meta.url))

/** Default bound for anything a test waits on. */
export const WAIT_MS = 20_000

/**
 * Requester heartbeats shorter than the defaults (1 s, 10 s), so a vanished worker is declared gone
 * in about 8 s, well inside every user's time budget. The liveness bound is not shorter because a
 * loaded 2-core CI box stalls a process's event loop for seconds: at 1.5 s, a stall failed tasks on
 * surviving workers as peer-gone. Tests that need a detection wait for it as an event, not a time.
 */
export const FAST_HEARTBEAT = { heartbeatMs: 500, livenessMs: 8000 } as const

// ---------------------------------------------------------------- waiting

/** Resolves or rejects with `promise`, or rejects saying `what` was not seen within `ms`. */
export async function withTimeout<T> (promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`))
    }, ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The TaskError `promise` rejects with; fails if it resolves or rejects with something else. */
export async function rejectionOf (promise: Promise<unknown>): Promise<TaskError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof TaskError) return err
    throw new Error(`expected a TaskError, got ${String(err)}`)
  }
  throw new Error('expected the promise to reject with a TaskError, but it resolved')
}

// ---------------------------------------------------------------- holding work back

/**
 * A valve on in-process workers' executors (give `wrap` to startPeer as wrapExecutor), for a test
 * that stops a job mid-way: open, tasks run as usual; once the test sees the progress it stops the
 * job at and calls close(), no further task starts until open(). Only the tasks already running
 * finish meanwhile, so the job cannot end before the stop lands, however fast the machine.
 * close(n) lets n more tasks start first (a batch that starts while some are left passes whole).
 * A task waiting at the valve past its deadline fails with its signal's reason.
 */
export class TaskValve {
  /** Tasks that may still start: Infinity while open. */
  private left = Number.POSITIVE_INFINITY
  private readonly waiting = new Set<() => void>()

  readonly wrap = (inner: Executor): Executor => {
    const many = inner.executeMany?.bind(inner)
    return {
      execute: async (request, requester, signal) => {
        await this.pass(1, signal)
        return await inner.execute(request, requester, signal)
      },
      ...(many == null
        ? {}
        : {
            executeMany: async (requests: TaskRequest[], requester: string, signal?: AbortSignal) => {
              await this.pass(requests.length, signal)
              return await many(requests, requester, signal)
            }
          })
    }
  }

  close (passing = 0): void {
    this.left = passing
  }

  open (): void {
    this.left = Number.POSITIVE_INFINITY
    for (const go of [...this.waiting]) go()
  }

  private async pass (tasks: number, signal?: AbortSignal): Promise<void> {
    while (this.left <= 0) {
      signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const go = (): void => {
          this.waiting.delete(go)
          signal?.removeEventListener('abort', stop)
          resolve()
        }
        const stop = (): void => {
          this.waiting.delete(go)
          reject(signal?.reason)
        }
        this.waiting.add(go)
        signal?.addEventListener('abort', stop, { once: true })
      })
    }
    this.left -= tasks
  }
}

// ---------------------------------------------------------------- cleanup

/** Stops everything registered, newest first; every step runs even if another fails or hangs. */
export class Cleanup {
  private readonly steps: Array<{ what: string, fn: () => unknown }> = []

  add (what: string, fn: () => unknown): void {
    this.steps.push({ what, fn })
  }

  async run (): Promise<void> {
    for (const { what, fn } of this.steps.splice(0).reverse()) {
      try {
        await withTimeout(Promise.resolve().then(fn), 10_000, `cleanup: ${what}`)
      } catch (err) {
        console.warn(`cleanup step "${what}" failed: ${(err as Error).message}`)
      }
    }
  }
}

// ---------------------------------------------------------------- relay and peers

export interface TestRelay extends RelayNode {
  /** Dialable multiaddr, /p2p/<relay id> included. */
  addr: string
  port: number
}

/** Starts the real relay in-process on 127.0.0.1 (port 0: the OS picks one), linked to `bootstrap` relays. */
export async function startRelay (cleanup: Cleanup, options: { port?: number, privateKey?: PrivateKey, bootstrap?: string[] } = {}): Promise<TestRelay> {
  // Every test peer dials from 127.0.0.1: lift the relay's per-address limit of 5 new connections a second.
  const relay = await startRelayNode({ host: '127.0.0.1', port: options.port ?? 0, privateKey: options.privateKey, inboundConnectionThreshold: 1000, bootstrap: options.bootstrap })
  const stop = async (): Promise<void> => { await relay.stop() }
  cleanup.add('relay', stop)
  const ma = relay.node.getMultiaddrs().find(a => a.toString().startsWith('/ip4/127.0.0.1/'))
  if (ma == null) throw new Error(`relay has no 127.0.0.1 address: ${relay.node.getMultiaddrs().join(', ')}`)
  const port = Number(ma.getComponents().find(c => c.name === 'tcp')?.value)
  return { ...relay, addr: ma.toString(), port, stop }
}

/**
 * Starts a bare libp2p peer of ours (every protocol service, no worker half) joined through
 * `relayAddr`, advertising itself so others can dial it: for tests that drive one protocol alone.
 */
export async function startBarePeer (cleanup: Cleanup, relayAddr: string, name: string, options: Partial<PeerOptions> = {}): Promise<Peer> {
  const node = await createPeer({ allowPrivateAddresses: true, discovery: { kind: 'node' }, models: { source: async () => undefined }, ...options })
  cleanup.add(`${name} node`, async () => { await node.stop() })
  node.services.discovery.advertise(() => ({ ...NOT_A_WORKER, kind: 'node' }))
  const relays = new RelaySet(node, [relayAddr])
  cleanup.add(`${name} relays`, () => { relays.stop() })
  await relays.start()
  return node
}

/**
 * Starts a Node peer (an onnxruntime-node worker unless `work: false`) joined through `relayAddr`.
 * Its model cache is in memory (empty) unless the test passes one: tests never share .data/models.
 */
export async function startPeer (cleanup: Cleanup, relayAddr: string | string[], options: Omit<NodePeerOptions, 'relays'> = {}): Promise<NodePeer> {
  const peer = await startNodePeer({ relays: typeof relayAddr === 'string' ? [relayAddr] : relayAddr, modelStore: new MemoryModelStore(), ...options })
  cleanup.add(`peer ${peer.node.peerId.toString()}`, async () => { await peer.stop() })
  return peer
}

function toPeerId (p: Peer | PeerId | string): PeerId {
  if (typeof p === 'string') return peerIdFromString(p)
  if ('getConnections' in p) return p.peerId
  return p
}

function describeConnections (node: Peer): string {
  const all = node.getConnections()
  if (all.length === 0) return 'none'
  return all.map(c => `${c.remotePeer.toString().slice(-6)} ${connectionKind(c)} ${c.status}`).join('; ')
}

const PING_PROTOCOL = '/ipfs/ping/1.0.0'

/**
 * Whether `connection` carries a round trip: a ping stream echoes 32 bytes back. A WebRTC
 * connection can be reported open by the side that answered the dial while the dialer's attempt
 * failed (its peer connection closes milliseconds later and the dialer retries), so an `open`
 * event alone does not prove it is usable.
 */
async function carriesRoundTrip (connection: Connection, timeoutMs: number): Promise<boolean> {
  try {
    const stream = await connection.newStream(PING_PROTOCOL, { signal: AbortSignal.timeout(timeoutMs) })
    const echoed = new Promise<void>((resolve, reject) => {
      let received = 0
      stream.addEventListener('message', (evt) => {
        received += evt.data.byteLength
        if (received >= 32) resolve()
      })
      stream.addEventListener('close', () => { reject(new Error('ping stream closed')) })
    })
    stream.send(crypto.getRandomValues(new Uint8Array(32)))
    await withTimeout(echoed, timeoutMs, 'a ping echo')
    await stream.close({ signal: AbortSignal.timeout(timeoutMs) }).catch(() => { stream.abort(new Error('probe done')) })
    return true
  } catch {
    return false
  }
}

/**
 * Dials `b` from `a` on demand (as a requester with work for it would) once `b`'s advert with an
 * address has reached `a`, and waits until `a` has a working direct WebRTC connection to `b`: every
 * open direct connection is checked with a ping round trip, and the first that answers wins. Fails
 * after `timeoutMs` naming the connections `a` has.
 */
export async function waitForDirect (a: Peer, b: Peer | PeerId | string, timeoutMs = WAIT_MS): Promise<Connection> {
  const remote = toPeerId(b)
  const deadline = Date.now() + timeoutMs
  const checked = new Set<string>()
  let wake = (): void => {}
  const onOpen = (evt: CustomEvent<Connection>): void => { if (evt.detail.remotePeer.equals(remote)) wake() }
  const table = a.services.discovery.table
  const onAdvert = (): void => { wake() }
  a.addEventListener('connection:open', onOpen)
  table.addEventListener('advert', onAdvert)
  let dialing: Promise<unknown> | undefined
  try {
    for (;;) {
      // Armed before looking, so a connection that opens (or an advert that arrives) while we probe is not missed.
      const opened = new Promise<void>(resolve => { wake = resolve })
      const direct = a.getConnections(remote).filter(c => c.status === 'open' && connectionKind(c) === 'direct WebRTC')
      for (const c of direct) {
        if (checked.has(c.id)) continue
        checked.add(c.id)
        if (await carriesRoundTrip(c, Math.max(1, Math.min(3000, deadline - Date.now())))) return c
      }
      if (dialing == null && (table.get(remote.toString())?.advert.addrs.length ?? 0) > 0) {
        dialing = a.services.connections.connect(remote).catch(() => {}).finally(() => { dialing = undefined; wake() })
      }
      await withTimeout(opened, Math.max(1, deadline - Date.now()), () =>
        `a working direct WebRTC connection from ${a.peerId.toString()} to ${remote.toString()} (its connections: ${describeConnections(a)}; advert known: ${table.get(remote.toString()) != null})`)
    }
  } finally {
    a.removeEventListener('connection:open', onOpen)
    table.removeEventListener('advert', onAdvert)
  }
}

/** Resolves once the relay `relayPeerId` is in `state` for `peer` (any of its relays when omitted). */
export async function waitForRelayState (peer: NodePeer, state: RelayState, relayPeerId?: string, timeoutMs = WAIT_MS): Promise<void> {
  const ok = (): boolean => peer.relays.views.some(v => v.state === state && (relayPeerId == null || v.peerId === relayPeerId))
  if (ok()) return
  let onChange!: () => void
  const reached = new Promise<void>(resolve => {
    onChange = () => { if (ok()) resolve() }
    peer.relays.addEventListener('change', onChange)
  })
  try {
    await withTimeout(reached, timeoutMs, () => `relay state "${state}" (relays: ${peer.relays.views.map(v => `${v.peerId.slice(-6)} ${v.state}`).join(', ')})`)
  } finally {
    peer.relays.removeEventListener('change', onChange)
  }
}

/** Resolves once `peer`'s advert table satisfies `predicate` over the peer ids it holds (at once if it already does). */
export async function waitForTable (peer: NodePeer, predicate: (peerIds: string[]) => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const table = peer.discovery.table
  const ids = (): string[] => [...table.values()].map(e => e.peerId)
  if (predicate(ids())) return
  let onChange!: () => void
  const reached = new Promise<void>(resolve => {
    onChange = () => { if (predicate(ids())) resolve() }
    table.addEventListener('advert', onChange)
    table.addEventListener('gone', onChange)
  })
  try {
    await withTimeout(reached, timeoutMs, what)
  } finally {
    table.removeEventListener('advert', onChange)
    table.removeEventListener('gone', onChange)
  }
}

// ---------------------------------------------------------------- worker child process

export interface WorkerProcess {
  child: ChildProcess
  /** Every stdout/stderr line so far. */
  lines: string[]
  /** Resolves with the first line (at index ≥ `from`) matching `pattern`; rejects if the process exits first. */
  waitForLine(pattern: RegExp, options?: { from?: number, timeoutMs?: number }): Promise<RegExpMatchArray>
  /** Settles when the process has exited. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>
}

/** Spawns `node --import tsx src/node/worker.ts ...args` and collects its output lines. */
export function startWorkerProcess (cleanup: Cleanup, args: string[]): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_ENTRY, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  const listeners = new Set<() => void>()
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    // 'close', not 'exit': by then every line it wrote has been read.
    child.once('close', (code, signal) => {
      resolve({ code, signal })
      for (const l of [...listeners]) l()
    })
  })
  let hasExited = false
  void exited.then(() => { hasExited = true })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', line => {
      lines.push(line)
      for (const l of [...listeners]) l()
    })
  }
  const tail = (): string => lines.slice(-15).join('\n') || '(no output)'

  const waitForLine: WorkerProcess['waitForLine'] = async (pattern, options = {}) => {
    const from = options.from ?? 0
    let check!: () => void
    const found = new Promise<RegExpMatchArray>((resolve, reject) => {
      check = () => {
        for (let i = from; i < lines.length; i++) {
          const m = lines[i].match(pattern)
          if (m != null) { resolve(m); return }
        }
        if (hasExited) {
          reject(new Error(`worker process exited (${child.exitCode ?? child.signalCode}) before printing ${String(pattern)}; its output:\n${tail()}`))
        }
      }
      listeners.add(check)
      check()
    })
    try {
      return await withTimeout(found, options.timeoutMs ?? WAIT_MS, `worker output ${String(pattern)}`)
    } catch (err) {
      throw new Error(`${(err as Error).message}\nworker output so far:\n${tail()}`)
    } finally {
      listeners.delete(check)
    }
  }

  const stop = async (graceMs = 5000): Promise<void> => {
    if (hasExited || child.exitCode != null || child.signalCode != null) return
    child.kill('SIGTERM')
    try {
      await withTimeout(exited, graceMs, 'the worker process to exit after SIGTERM')
    } catch {
      child.kill('SIGKILL')
      await exited
    }
  }
  cleanup.add(`worker process ${child.pid ?? '?'}`, stop)
  return { child, lines, waitForLine, exited, stop }
}

/**
 * Spawns the worker with `--relay <relayAddr> ...args` and resolves once it prints its `joined`
 * line. Rejects (with its output) if it exits or stays silent first.
 */
export async function spawnWorker (cleanup: Cleanup, relayAddr: string, args: string[] = [], timeoutMs = 30_000): Promise<WorkerProcess & { peerId: string }> {
  const worker = startWorkerProcess(cleanup, ['--relay', relayAddr, ...args])
  const joined = await worker.waitForLine(/^worker (\S+) joined (\S+)$/, { timeoutMs })
  if (joined[2] !== relayAddr) throw new Error(`worker joined ${joined[2]}, expected ${relayAddr}`)
  return { ...worker, peerId: joined[1] }
}

/** Resolves once the requester holds a worker advert for `peerId` matching `predicate` (at once if it already does). */
export async function waitForAdvert (requester: NodePeer, peerId: string, predicate: (a: Advert) => boolean, what: string | (() => string), timeoutMs = WAIT_MS): Promise<void> {
  const table = requester.discovery.table
  const ok = (): boolean => { const a = table.get(peerId)?.advert; return a != null && predicate(a) }
  if (ok()) return
  let onAdvert!: () => void
  const seen = new Promise<void>(resolve => {
    onAdvert = () => { if (ok()) resolve() }
    table.addEventListener('advert', onAdvert)
  })
  try {
    await withTimeout(seen, timeoutMs, what)
  } finally {
    table.removeEventListener('advert', onAdvert)
  }
}

// ---------------------------------------------------------------- MNIST digits

/** A digits-model task for `batch` copies of `pixels` (28×28) or, with `dims`, the raw pixels as given. */
export function digitsTask (taskId: string, pixels: Float32Array, options: { batch?: number, dims?: number[] } = {}): TaskRequest {
  const batch = options.batch ?? 1
  let data = pixels
  if (batch > 1) {
    data = new Float32Array(batch * pixels.length)
    for (let b = 0; b < batch; b++) data.set(pixels, b * pixels.length)
  }
  return {
    taskId,
    jobId: 'integration',
    model: modelRef(builtinModel('digits')),
    inputs: [{ name: DIGITS_INPUT, dtype: 'float32', dims: options.dims ?? [batch, 1, 28, 28], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }],
    timeoutMs: 0,
    outputNames: []
  }
}

/** onnxruntime-node's prediction (one thread, like the workers) for the first `count` dataset images: what any correct run must give. */
export async function referenceDigits (dataset: DigitDataset, count = dataset.count): Promise<Uint8Array> {
  const session = await ort.InferenceSession.create(DIGITS_MODEL_FILE, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  const reference = new Uint8Array(count)
  for (let i = 0; i < count; i++) {
    const out = await session.run({ [DIGITS_INPUT]: new ort.Tensor('float32', dataset.pixels(i), [1, 1, 28, 28]) }, [DIGITS_OUTPUT_PROBS])
    reference[i] = argmax(out[DIGITS_OUTPUT_PROBS].data as Float32Array)
  }
  await session.release()
  return reference
}

/**
 * Binds a libp2p stream to core's push-based FrameChannel, with back-pressure, coalescing the
 * frames sent in one event-loop turn into one stream write.
 *
 * Why coalesce: every `stream.send` on a WebRTC stream costs a protobuf envelope, a length
 * prefix, a copy and one synchronous data-channel send (the biggest single CPU cost of tiny tasks
 * when profiled), and the receiver pays one message event per send. A requester dispatching
 * several tasks at once, or a worker answering a batch that finished together, sends its frames
 * within the same turn: they go out as one write, which the stream splits only at its own
 * message size. Frames are length-prefixed, so the receiver's reader already takes several per
 * message; nothing changes on the wire but how the bytes are cut into messages.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import type { Stream } from '@libp2p/interface'
import type { FrameChannel } from '../core/channel.js'

export interface FrameSink {
  receive(chunk: Uint8Array): void
  closed(err?: Error): void
}

/** How long an aborting channel waits for the frames it already sent to be acknowledged. */
const ABORT_GRACE_MS = 2000

/**
 * Bytes held back for coalescing before they are written at once: past this a write saves
 * nothing (the stream cuts messages at 16 KiB), and a sender of big chunks (model transfer) keeps
 * the stream's own back-pressure instead of piling up a turn's worth of chunks here.
 */
export const COALESCE_BYTES = 64 * 1024

/** Runs `fn` soon after the code that called it, without timer clamping (when exactly: endOfTurn). */
export type DeferTurn = (fn: () => void) => void

/**
 * Node: setImmediate. Browsers: in a tab someone is looking at, a microtask: after a click the
 * browser runs rendering ahead of posted messages, and a MessageChannel flush then waited for the
 * next frame (7 ms of a 25 ms click-to-result, scripts/bench-ui.ts). In a hidden tab or a Web
 * Worker, a MessageChannel message: background tabs do not throttle it the way they throttle timers,
 * and it lets what is already queued run first, so a busy worker tab's results leave in fewer
 * writes. (Headless Chromium reports every page visible: the throughput bench's worker tabs take
 * the microtask; the run that once measured it slower for them shared tabs between variants,
 * docs/BENCHMARKS.md.)
 */
export function endOfTurn (): DeferTurn {
  if (typeof setImmediate === 'function') return (fn) => { setImmediate(fn) }
  const queue: Array<() => void> = []
  const { port1, port2 } = new MessageChannel()
  port1.onmessage = () => {
    const fn = queue.shift()
    fn?.()
  }
  const seen = typeof document === 'undefined' ? undefined : document
  return (fn) => {
    if (seen?.visibilityState === 'visible') {
      queueMicrotask(fn)
      return
    }
    queue.push(fn)
    port2.postMessage(null)
  }
}

let sharedDefer: DeferTurn | undefined

/** One endOfTurn for the whole page or process (one MessageChannel in a page, not one per stream). */
export function sharedEndOfTurn (): DeferTurn {
  return (sharedDefer ??= endOfTurn())
}

export interface StreamChannelOptions {
  /** When coalesced frames are written (default: endOfTurn()). */
  defer?: DeferTurn
}

/** Wires `stream` events into `sink` and returns the channel for writing back. */
export function streamChannel (stream: Stream, sink: () => FrameSink, options: StreamChannelOptions = {}): FrameChannel {
  const defer = options.defer ?? sharedEndOfTurn()
  let pending: Uint8Array[] = []
  let pendingBytes = 0
  let scheduled = false
  /** Set while the stream wants a drain: senders wait for it. */
  let draining: Promise<void> | undefined

  /** Writes what is held; a stream that refuses it is aborted (its close reaches the sink). */
  const flush = (): void => {
    if (pending.length === 0) return
    const frames = pending
    pending = []
    pendingBytes = 0
    if (stream.status !== 'open') return // its close event tells the sink
    try {
      const more = stream.send(frames.length === 1 ? frames[0] : new Uint8ArrayList(...frames))
      if (!more && draining == null) {
        draining = stream.onDrain().then(() => { draining = undefined }, () => { draining = undefined })
      }
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  const channel: FrameChannel = {
    send: (bytes) => {
      if (stream.status !== 'open') throw new Error(`stream is ${stream.status}`)
      pending.push(bytes)
      pendingBytes += bytes.byteLength
      if (pendingBytes >= COALESCE_BYTES) flush()
      else if (!scheduled) {
        scheduled = true
        defer(() => {
          scheduled = false
          flush()
        })
      }
      return draining
    },
    close: (err) => {
      // Frames sent just before (an error reply explaining the close) go first.
      flush()
      if (err == null) {
        void stream.close().catch(() => { stream.abort(new Error('close failed')) })
        return
      }
      // An abort tears the data channel down at once, and the remote can see that before it has
      // decoded the frames sent just before (such as the error reply explaining the abort). Close
      // our end gracefully first (FIN after the data, and the remote acks it only once it has read
      // everything before it), then abort.
      void stream.close({ signal: AbortSignal.timeout(ABORT_GRACE_MS) })
        .catch(() => {})
        .finally(() => { stream.abort(err) })
    }
  }
  // The sink is resolved lazily so it can be constructed with the channel first.
  stream.addEventListener('message', (evt) => {
    sink().receive(evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())
  })
  stream.addEventListener('close', (evt) => {
    sink().closed(evt.error)
  })
  return channel
}

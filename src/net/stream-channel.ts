/** Binds a libp2p stream to core's push-based FrameChannel, with back-pressure. */
import type { Stream } from '@libp2p/interface'
import type { FrameChannel } from '../core/channel.js'

export interface FrameSink {
  receive(chunk: Uint8Array): void
  closed(err?: Error): void
}

/** How long an aborting channel waits for the frames it already sent to be acknowledged. */
const ABORT_GRACE_MS = 2000

/** Wires `stream` events into `sink` and returns the channel for writing back. */
export function streamChannel (stream: Stream, sink: () => FrameSink): FrameChannel {
  const channel: FrameChannel = {
    send: (bytes) => {
      if (stream.status !== 'open') throw new Error(`stream is ${stream.status}`)
      if (!stream.send(bytes)) return stream.onDrain()
    },
    close: (err) => {
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

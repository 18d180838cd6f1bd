/** Binds a libp2p stream to core's push-based FrameChannel, with back-pressure. */
import type { Stream } from '@libp2p/interface'
import type { FrameChannel } from '../core/channel.js'

export interface FrameSink {
  receive(chunk: Uint8Array): void
  closed(err?: Error): void
}

/** Wires `stream` events into `sink` and returns the channel for writing back. */
export function streamChannel (stream: Stream, sink: () => FrameSink): FrameChannel {
  const channel: FrameChannel = {
    send: (bytes) => {
      if (stream.status !== 'open') throw new Error(`stream is ${stream.status}`)
      if (!stream.send(bytes)) return stream.onDrain()
    },
    close: (err) => {
      if (err != null) stream.abort(err)
      else void stream.close().catch(() => { stream.abort(new Error('close failed')) })
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

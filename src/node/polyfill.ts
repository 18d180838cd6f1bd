/**
 * Node 20 gaps that libp2p 3 relies on; imported first by every Node entry point.
 * Promise.withResolvers arrived in Node 22 and a global WebSocket in Node 22.
 * It also installs node:crypto's sha256 for core's synchronous digests (./node-hash.ts).
 */
import { WebSocket } from 'ws'
import './node-hash.js'

if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> () {
      let resolve!: (value: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}

/**
 * `ws`'s WebSocket is a Node EventEmitter: an 'error' nobody listens for is thrown as an uncaught
 * exception. A browser's (and Node 22's) WebSocket never throws for an unhandled error event, and
 * libp2p relies on that: when a dial is aborted (a timeout, the node stopping) while the socket is
 * still connecting, it stops listening, and the connect failure that follows (ECONNREFUSED while
 * the relay is down) would crash the process. Listeners that are added still get every error.
 */
class BrowserLikeWebSocket extends WebSocket {
  constructor (...args: ConstructorParameters<typeof WebSocket>) {
    super(...args)
    this.on('error', () => {})
  }
}

if (typeof globalThis.WebSocket !== 'function') {
  Object.defineProperty(globalThis, 'WebSocket', { configurable: true, writable: true, value: BrowserLikeWebSocket })
}

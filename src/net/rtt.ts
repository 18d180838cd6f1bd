/**
 * Round-trip time over one specific connection, for display (libp2p's ping service picks a connection
 * itself, which may be a relayed one). Never used to decide that a peer is gone.
 */
import type { Connection } from '@libp2p/interface'

const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_BYTES = 32

/** Round-trip time in ms of a 32-byte echo over `connection`; rejects if none comes back in time. */
export async function pingConnection (connection: Connection, timeoutMs: number): Promise<number> {
  const signal = AbortSignal.timeout(timeoutMs)
  const stream = await connection.newStream(PING_PROTOCOL, { signal })
  try {
    const echoed = new Promise<void>((resolve, reject) => {
      let received = 0
      stream.addEventListener('message', (evt) => {
        received += evt.data.byteLength
        if (received >= PING_BYTES) resolve()
      })
      stream.addEventListener('close', () => { reject(new Error('ping stream closed')) })
      signal.addEventListener('abort', () => { reject(new Error(`no ping answer within ${timeoutMs} ms`)) })
    })
    const t0 = performance.now()
    stream.send(crypto.getRandomValues(new Uint8Array(PING_BYTES)))
    await echoed
    return performance.now() - t0
  } finally {
    stream.abort(new Error('ping done'))
  }
}

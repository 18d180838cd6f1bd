/** For command-line requesters: waiting until enough workers advertise before starting a job. */
import type { NodePeer } from './node-peer.js'

/** Workers (not paused) whose adverts this peer holds. */
export function workerCount (peer: NodePeer): number {
  return [...peer.discovery.table.values()].filter(e => e.advert.worker && !e.advert.paused).length
}

/** Resolves once `min` workers advertise; rejects after `timeoutS` seconds saying how many came. */
export async function waitForWorkers (peer: NodePeer, min: number, timeoutS: number): Promise<void> {
  if (workerCount(peer) >= min) return
  console.error(`waiting for ${min} worker(s)…`)
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (workerCount(peer) < min) return
      clearTimeout(timer)
      peer.discovery.table.removeEventListener('advert', check)
      resolve()
    }
    const timer = setTimeout(() => {
      peer.discovery.table.removeEventListener('advert', check)
      reject(new Error(`only ${workerCount(peer)} worker(s) joined within ${timeoutS} s`))
    }, timeoutS * 1000)
    peer.discovery.table.addEventListener('advert', check)
  })
}

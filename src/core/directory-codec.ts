/** Peer directory codec: length-prefixed DirectoryRegister / DirectorySnapshot messages. */
import { DirectoryRegister, DirectorySnapshot } from './directory-messages.js'
import { TaskError } from './errors.js'

export const DIRECTORY_PROTOCOL = '/p2p-ai-agents/directory/1.0.0'
/** A snapshot of a few thousand peers fits; anything larger is refused before buffering. */
export const MAX_DIRECTORY_FRAME = 1024 * 1024
const MAX_PEERS = 10_000
const MAX_ADDRS = 16

export interface DirectoryPeer {
  peerId: string
  addrs: string[]
}

export function encodeRegister (addrs: string[]): Uint8Array {
  return DirectoryRegister.encode({ addrs })
}

export function decodeRegister (bytes: Uint8Array): string[] {
  try {
    return DirectoryRegister.decode(bytes, { limits: { addrs: MAX_ADDRS } }).addrs
  } catch (err) {
    throw new TaskError('bad-request', `malformed directory register: ${(err as Error).message}`)
  }
}

export function encodeSnapshot (peers: DirectoryPeer[]): Uint8Array {
  return DirectorySnapshot.encode({ peers })
}

export function decodeSnapshot (bytes: Uint8Array): DirectoryPeer[] {
  try {
    return DirectorySnapshot.decode(bytes, { limits: { peers: MAX_PEERS, peers$: { addrs: MAX_ADDRS } } }).peers
  } catch (err) {
    throw new TaskError('bad-request', `malformed directory snapshot: ${(err as Error).message}`)
  }
}

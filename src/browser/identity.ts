/**
 * A tab's Ed25519 identity. Keys live in IndexedDB in numbered slots; each tab claims the lowest
 * free slot with an exclusive Web Lock held for the tab's lifetime. A reloaded tab gets its slot
 * (and peer id) back, while two open tabs of one browser never share a key.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'

const DB_NAME = 'p2p-ai-agents'
const STORE = 'identity-keys'
const MAX_SLOTS = 64

export interface TabIdentity {
  privateKey: PrivateKey
  slot: number
}

function openDb (): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1)
    req.onupgradeneeded = () => { req.result.createObjectStore(STORE) }
    req.onsuccess = () => { resolve(req.result) }
    req.onerror = () => { reject(req.error ?? new Error('cannot open IndexedDB')) }
  })
}

function request<T> (db: IDBDatabase, mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = fn(db.transaction(STORE, mode).objectStore(STORE))
    req.onsuccess = () => { resolve(req.result) }
    req.onerror = () => { reject(req.error ?? new Error('IndexedDB request failed')) }
  })
}

/** Claims the first free slot: resolves once its lock is held (the lock is kept until the tab closes). */
async function claimSlot (): Promise<number> {
  if (navigator.locks == null) return 0 // no Web Locks (insecure context): one identity for all tabs
  for (let slot = 0; slot < MAX_SLOTS; slot++) {
    const claimed = await new Promise<boolean>((resolve) => {
      void navigator.locks.request(`p2p-ai-agents-identity-${slot}`, { ifAvailable: true }, async (lock) => {
        resolve(lock != null)
        // Holding the callback's promise open keeps the lock until the page goes away.
        if (lock != null) await new Promise(() => {})
      })
    })
    if (claimed) return slot
  }
  throw new Error(`more than ${MAX_SLOTS} tabs are open in this browser`)
}

/** Loads (or creates and stores) the key for this tab's slot. */
export async function loadTabIdentity (): Promise<TabIdentity> {
  const slot = await claimSlot()
  const db = await openDb()
  try {
    const stored = await request<unknown>(db, 'readonly', s => s.get(slot))
    if (stored instanceof Uint8Array) return { privateKey: privateKeyFromProtobuf(stored), slot }
    const privateKey = await generateKeyPair('Ed25519')
    await request(db, 'readwrite', s => s.put(privateKeyToProtobuf(privateKey), slot))
    return { privateKey, slot }
  } finally {
    db.close()
  }
}

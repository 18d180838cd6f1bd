/**
 * What the page keeps across reloads besides jobs (the loaded custom model, its inputs and last
 * outputs, OCR pages): IndexedDB database 'p2p-ai-agents-saved', one object store 'kv' with
 * out-of-line string keys. Every value is bounded by whoever writes it and checked by whoever reads
 * it (an older build's or a damaged record is dropped, never trusted). Where IndexedDB is missing
 * or refuses (private windows may), nothing is kept and the page works as before.
 */
export const SAVED_DB_NAME = 'p2p-ai-agents-saved'
const STORE = 'kv'

let db: Promise<IDBDatabase> | undefined

function open (): Promise<IDBDatabase> {
  db ??= new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(SAVED_DB_NAME, 1)
    req.onupgradeneeded = () => { req.result.createObjectStore(STORE) }
    req.onsuccess = () => { resolve(req.result) }
    req.onerror = () => { reject(req.error ?? new Error('IndexedDB refused to open')) }
  })
  db.catch(() => { db = undefined })
  return db
}

async function request<T> (mode: IDBTransactionMode, run: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const d = await open()
  return await new Promise<T>((resolve, reject) => {
    const tx = d.transaction(STORE, mode)
    const req = run(tx.objectStore(STORE))
    // Resolved when the transaction commits: a write is durable before the caller moves on.
    tx.oncomplete = () => { resolve(req.result as T) }
    tx.onerror = () => { reject(tx.error ?? req.error ?? new Error('IndexedDB transaction failed')) }
    tx.onabort = () => { reject(tx.error ?? new Error('IndexedDB transaction aborted')) }
  })
}

/** The value under `key`, or undefined (also when IndexedDB is unavailable). */
export async function loadSaved (key: string): Promise<unknown> {
  if (typeof indexedDB === 'undefined') return undefined
  try {
    return await request<unknown>('readonly', s => s.get(key))
  } catch {
    return undefined
  }
}

/** Stores `value` under `key` (structured clone); false when it could not be kept (quota, no IndexedDB). */
export async function saveSaved (key: string, value: unknown): Promise<boolean> {
  if (typeof indexedDB === 'undefined') return false
  try {
    await request('readwrite', s => s.put(value, key))
    return true
  } catch {
    return false
  }
}

export async function deleteSaved (key: string): Promise<void> {
  if (typeof indexedDB === 'undefined') return
  try {
    await request('readwrite', s => s.delete(key))
  } catch {
    // Nothing kept to delete.
  }
}

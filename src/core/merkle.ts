/**
 * A Merkle tree over a batch's receipts, as RFC 9162 (Certificate Transparency 2.0, §2.1) defines
 * it: leaf hash = sha256(0x00 ‖ leaf bytes), node hash = sha256(0x01 ‖ left ‖ right), split at the
 * largest power of two below the count. One signature over the root then stands for every leaf,
 * and each leaf proves itself with ⌈log2 n⌉ hashes, checkable in any language with RFC 9162's
 * verification algorithm.
 */
import { syncSha256 } from './hash.js'

const LEAF = new Uint8Array([0])
const NODE = new Uint8Array([1])

export function leafHash (bytes: Uint8Array): Uint8Array {
  const h = syncSha256()
  h.update(LEAF)
  h.update(bytes)
  return h.digest()
}

function nodeHash (left: Uint8Array, right: Uint8Array): Uint8Array {
  const h = syncSha256()
  h.update(NODE)
  h.update(left)
  h.update(right)
  return h.digest()
}

/** The largest power of two strictly below n (n ≥ 2). */
function split (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** The root over leaf hashes (at least one). */
export function merkleRoot (leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) throw new RangeError('a Merkle tree needs at least one leaf')
  if (leaves.length === 1) return leaves[0]
  const k = split(leaves.length)
  return nodeHash(merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)))
}

/** Leaf `index`'s audit path, nearest sibling first. */
export function merklePath (leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError(`leaf ${index} is not in a tree of ${leaves.length}`)
  if (leaves.length === 1) return []
  const k = split(leaves.length)
  return index < k
    ? [...merklePath(leaves.slice(0, k), index), merkleRoot(leaves.slice(k))]
    : [...merklePath(leaves.slice(k), index - k), merkleRoot(leaves.slice(0, k))]
}

/**
 * The root that leaf `index` of a `size`-leaf tree and its audit path lead to (RFC 9162
 * §2.1.3.2), or undefined when the path cannot belong to such a leaf (wrong length, index out of
 * range). The caller compares it with the root that was signed.
 */
export function rootFromPath (leaf: Uint8Array, index: number, size: number, path: readonly Uint8Array[]): Uint8Array | undefined {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return undefined
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of path) {
    if (sn === 0) return undefined
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r)
      while ((fn & 1) === 0 && fn !== 0) {
        fn >>= 1
        sn >>= 1
      }
    } else {
      r = nodeHash(r, p)
    }
    fn >>= 1
    sn >>= 1
  }
  return sn === 0 ? r : undefined
}

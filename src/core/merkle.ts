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

/**
 * The root over leaf hashes (at least one) and every leaf's audit path, nearest sibling first, in
 * one pass: n − 1 node hashes in all, each subtree's root handed to the leaves on its other side.
 */
export function merkleTree (leaves: readonly Uint8Array[]): { root: Uint8Array, paths: Uint8Array[][] } {
  if (leaves.length === 0) throw new RangeError('a Merkle tree needs at least one leaf')
  const paths = leaves.map((): Uint8Array[] => [])
  const build = (from: number, to: number): Uint8Array => {
    if (to - from === 1) return leaves[from]
    const middle = from + split(to - from)
    const left = build(from, middle)
    const right = build(middle, to)
    for (let i = from; i < middle; i++) paths[i].push(right)
    for (let i = middle; i < to; i++) paths[i].push(left)
    return nodeHash(left, right)
  }
  return { root: build(0, leaves.length), paths }
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

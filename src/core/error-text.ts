/**
 * A task error in words for a person: a headline that says which peer failed and why, and the raw
 * text (onnxruntime's own message, which may carry C++ build paths and signatures) kept apart as
 * details for whoever wants it. onnxruntime's common input errors (wrong shape, rank or type,
 * shapes that do not broadcast, a file that is not a model) are recognised and restated; anything
 * else gets a sentence per error code, never the raw text in the headline.
 */
import { peerName, shortPeerId } from './peer-name.js'
import type { TaskErrorCode } from './errors.js'

export interface ErrorText {
  /** One line in words, naming the peer when known. */
  headline: string
  /** The raw message, when the headline does not already say all of it. */
  details?: string
}

/** What the task sent, when the caller has it: lets a shape error name the whole shape sent. */
export interface ErrorContext {
  inputs?: ReadonlyArray<{ name: string, dims: readonly number[] }>
}

const MAX_REASON = 200

/** onnxruntime's type names → this project's dtype names. */
const ORT_TYPES: Record<string, string> = {
  float: 'float32',
  double: 'float64',
  float16: 'float16',
  int8: 'int8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  uint16: 'uint16',
  uint32: 'uint32',
  uint64: 'uint64',
  bool: 'bool',
  string: 'string'
}

const ortType = (t: string): string => ORT_TYPES[t] ?? t
const fmtDims = (dims: readonly number[]): string => `[${dims.join(', ')}]`

/**
 * The peer as a person reads it: 'self' is this tab, a peer id becomes its name (with the tail of
 * its id, since names can collide), anything else is taken as a name already.
 */
export function peerLabel (peer: string): string {
  if (peer === 'self') return 'this tab'
  // libp2p peer ids: base58 multihashes ("12D3KooW…", "Qm…") or CIDs, all long and unspaced.
  if (/^(12D3Koo|Qm|bafz)[1-9A-Za-z]{30,}$/.test(peer)) return `peer ${peerName(peer)} (${shortPeerId(peer)})`
  return `peer ${peer}`
}

/**
 * Most characters of a (remote peer's) message that the patterns here look at: onnxruntime's own
 * messages are a few hundred characters; past this nothing more is read, so even a pattern that is
 * quadratic on some input (a search retried from every position) stays well under a millisecond.
 */
const MAX_SCANNED = 1000

/**
 * Removes C++ source paths ("/onnxruntime_src/…/element_wise_ops.h:563") and function signatures
 * from the first MAX_SCANNED characters of `text` (the rest is dropped). A path's segments exclude
 * the separators, so a path splits into segments one way only: no backtracking over how to split
 * it (a run of slashes once took half a second per kilobyte).
 */
export function stripBuildPaths (text: string): string {
  return text.slice(0, MAX_SCANNED)
    .replace(/(?:[A-Za-z]:)?[\\/](?:[^\s:'"\\/]+[\\/])+[^\s:'"\\/]+\.(?:h|hh|hpp|c|cc|cpp|cxx|cu|inl)(?!\w)(?::\d+)?/g, '')
    .replace(/\b(?:[\w:<>~]+\s+)?(?:onnxruntime|std)::[\w:<>~]+\([^)]*\)(?:\s*const)?/g, '')
    .replace(/[ \t]{2,}/g, ' ')
    .trim()
}

/** onnxruntime's message restated, or undefined when it is not one of the common input errors. */
export function explainOrtMessage (raw: string, context?: ErrorContext): string | undefined {
  const dims = /Got invalid dimensions for input: (\S+) for the following indices((?:\s*index: \d+ Got: \d+ Expected: \d+)+)/.exec(raw)
  if (dims != null) {
    const name = dims[1]!
    const wrong = [...dims[2]!.matchAll(/index: (\d+) Got: (\d+) Expected: (\d+)/g)].map(m => ({ axis: Number(m[1]), got: Number(m[2]), want: Number(m[3]) }))
    const sent = context?.inputs?.find(i => i.name === name)?.dims
    if (sent != null && wrong.every(w => w.axis < sent.length && sent[w.axis] === w.got)) {
      const expected = [...sent]
      for (const w of wrong) expected[w.axis] = w.want
      // Axes onnxruntime did not complain about may be dynamic: they are shown as sent.
      return `input '${name}' has the wrong shape (expected ${fmtDims(expected)}, got ${fmtDims(sent)})`
    }
    return `input '${name}' has the wrong shape (${wrong.map(w => `axis ${w.axis} must be ${w.want}, got ${w.got}`).join('; ')})`
  }
  const rank = /Invalid rank for input: (\S+) Got: (\d+) Expected: (\d+)/.exec(raw)
  if (rank != null) {
    const sent = context?.inputs?.find(i => i.name === rank[1])?.dims
    return `input '${rank[1]!}' has the wrong number of dimensions (expected ${rank[3]!}, got ${rank[2]!}${sent != null ? ` ${fmtDims(sent)}` : ''})`
  }
  const type = /Unexpected input data type\. Actual: \(tensor\((\w+)\)\)\s*,\s*expected: \(tensor\((\w+)\)\)/.exec(raw)
  if (type != null) return `an input has the wrong type (expected ${ortType(type[2]!)}, got ${ortType(type[1]!)})`
  // onnxruntime-node names the node; onnxruntime-web's message has only the kernel's text.
  const node = /while running (\w+) node\. Name:'([^']*)'/.exec(raw)
  const broadcast = /broadcast an axis by a dimension other than 1\. (\d+) by (\d+)/.exec(raw)
  if (broadcast != null) {
    return `the inputs' shapes do not fit together: a dimension of ${broadcast[1]!} meets one of ${broadcast[2]!}${node != null ? ` in ${node[1]!} node '${node[2]!}'` : ''}`
  }
  if (node != null) return `the model's ${node[1]!} node '${node[2]!}' failed on these inputs`
  if (/protobuf parsing failed|Failed to load model/i.test(raw)) return 'the model file is not a valid ONNX model'
  return undefined
}

/** A sentence for each code, used when the message itself cannot be shown or restated. */
const GENERIC: Record<TaskErrorCode, string> = {
  'bad-request': 'refused the task as malformed',
  'model-unavailable': 'could not get the model',
  busy: 'is busy; try again or choose another peer',
  'inference-failed': 'could not run the model on these inputs',
  timeout: 'did not answer in time',
  'model-hash-mismatch': 'got model bytes that do not match the model\'s sha256',
  'peer-gone': 'dropped the connection before answering',
  'no-peer': 'no peer can take the task'
}

/** What the peer did, before the reason: "could not run the model", … */
const VERB: Record<TaskErrorCode, string> = {
  'bad-request': 'refused the task',
  'model-unavailable': 'could not get the model',
  busy: 'is busy',
  'inference-failed': 'could not run the model',
  timeout: 'did not answer in time',
  'model-hash-mismatch': 'got the wrong model bytes',
  'peer-gone': 'dropped the connection',
  'no-peer': ''
}

/** The message when it is already words a person can read: one line, no build paths, not too long. */
function plainReason (message: string): string | undefined {
  const line = stripBuildPaths(message.split('\n')[0] ?? '').replace(/^onnxruntime(?: could not load the model)?:\s*/, '')
  if (line === '' || /onnxruntime|Status Message|ERROR_CODE|OrtRun/i.test(line)) return undefined
  return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON - 1)}…` : line
}

/**
 * `err` as a headline in words naming `peer` (a peer id, 'self', or a name), with the raw message as
 * details when the headline does not carry it whole.
 */
export function describeTaskError (err: { code: TaskErrorCode | string, message: string }, peer?: string, context?: ErrorContext): ErrorText {
  const code = (Object.hasOwn(GENERIC, err.code) ? err.code : 'inference-failed') as TaskErrorCode
  const raw = err.message ?? ''
  // Only the start is recognised or restated (see MAX_SCANNED); the whole message stays in details.
  const scanned = raw.slice(0, MAX_SCANNED)
  const who = peer != null && peer !== '' ? peerLabel(peer) : 'a peer'
  let headline: string
  if (code === 'no-peer') {
    const reason = plainReason(scanned)
    headline = `no peer can take the task${reason != null ? `: ${reason}` : ''}`
  } else if (code !== 'bad-request' && code !== 'model-unavailable' && code !== 'inference-failed') {
    headline = `${who} ${GENERIC[code]}`
  } else {
    const reason = explainOrtMessage(scanned, context) ?? plainReason(scanned)
    headline = reason != null ? `${who} ${VERB[code]}: ${reason}` : `${who} ${GENERIC[code]}`
  }
  const details = raw.trim() !== '' && !headline.includes(raw.trim()) ? raw : undefined
  return details != null ? { headline, details } : { headline }
}

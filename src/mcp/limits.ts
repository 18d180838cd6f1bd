/**
 * What one agent may ask of the MCP server, checked before anything is read or allocated. The tool
 * descriptions and the README quote these numbers; the network's own limits (tensor sizes, model
 * size) apply on top.
 */

/** Inputs given inline to start_batch (a JSONL file takes more). */
export const MAX_INLINE_INPUTS = 1000
/** Lines (inputs) of a JSONL file given to start_batch. */
export const MAX_FILE_INPUTS = 100_000
/** Bytes of a JSONL file given to start_batch. */
export const MAX_FILE_BYTES = 256 * 1024 * 1024
/** Batches running at once in this server (each holds its inputs in memory until it ends). */
export const MAX_RUNNING_BATCHES = 4

/** Results in one get_results page (default DEFAULT_PAGE). */
export const MAX_PAGE = 100
export const DEFAULT_PAGE = 20
/** A page stops growing past this many characters of JSON (it always holds at least one result). */
export const MAX_PAGE_CHARS = 1024 * 1024
/** An output tensor with more values than this is summarised (shape, first values, min, max, argmax) instead of listed. */
export const MAX_TENSOR_VALUES = 10_000

/** Images in one read_text_from_images call. */
export const MAX_IMAGES = 16
/** Bytes of one PNG file. */
export const MAX_IMAGE_BYTES = 32 * 1024 * 1024

/** Longest wait job_status may be asked for, seconds (below MCP clients' usual 60 s request timeout). */
export const MAX_WAIT_SECONDS = 50

/** Largest protocol message read from stdin; a longer line ends the session (the SDK's stdio buffer). */
export const MAX_MESSAGE_BYTES = 10 * 1024 * 1024
/** Pixels per page and per call: the library's bounds (src/node/png.ts), checked from PNG headers. */
export { MAX_IMAGE_PIXELS, MAX_TOTAL_PIXELS } from '../node/png.js'

/**
 * What one HTTP client may ask of the gateway, checked before a body is read or anything is
 * allocated for it. The README ("HTTP API", Limits) and the OpenAPI descriptions quote these
 * numbers; the network's own limits (tensor sizes, the model cap) apply on top.
 */

const MiB = 1024 * 1024

/** JSON and JSONL bodies (POST /v1/jobs, /v1/run, /v1/ocr) unless --max-body-mb says otherwise. */
export const DEFAULT_MAX_BODY_BYTES = 64 * MiB
/** An uploaded model: the network's model cap (peers refuse to carry a larger one). */
export const MAX_MODEL_BYTES = 256 * MiB
/** POST /v1/run: one task's inputs (the network's frame limit is 64 MiB; 64 calls may wait at once). */
export const MAX_RUN_BODY_BYTES = 8 * MiB
/** Tasks in one job (array items or JSONL lines). */
export const MAX_JOB_INPUTS = 100_000
/** Jobs running in this gateway at once: each holds its inputs in memory until it ends. */
export const MAX_RUNNING_JOBS = 8
/** Results and events streams open on one job, and on all jobs together. */
export const MAX_STREAMS_PER_JOB = 8
export const MAX_STREAMS = 256
/** POST /v1/run calls waiting for their result at once. */
export const MAX_CONCURRENT_RUNS = 64
/** POST /v1/ocr calls at once (their pages are decoded and post-processed here). */
export const MAX_CONCURRENT_OCR = 2
/** Bodies of many megabytes being read and checked at once: model uploads, job submissions. */
export const MAX_CONCURRENT_UPLOADS = 2
/** POST /v1/run: how long it waits for a verified result unless timeout_ms says otherwise, and the most it may say (/v1/ocr too). */
export const DEFAULT_RUN_TIMEOUT_MS = 60_000
export const MAX_RUN_TIMEOUT_MS = 600_000
/** POST /v1/ocr: the same for a whole OCR call (detection, then recognition of every line). */
export const DEFAULT_OCR_TIMEOUT_MS = 300_000
/** Images in one POST /v1/ocr. */
export const MAX_OCR_IMAGES = 16
/** Jobs in one GET /v1/jobs page unless ?limit= says otherwise, and the most it may say. */
export const DEFAULT_JOB_PAGE = 100
export const MAX_JOB_PAGE = 1000
/** Longest time to receive a whole request (a 256 MiB model upload at ~4 Mbit/s). */
export const REQUEST_TIMEOUT_MS = 600_000
/** Open connections at once. */
export const MAX_CONNECTIONS = 1024
/** Pixels per page and per call: the library's bounds (src/node/png.ts), checked from PNG headers. */
export { MAX_IMAGE_PIXELS, MAX_TOTAL_PIXELS } from '../node/png.js'

/**
 * P2P AI Agents as a library: `connect()` to the network and run ONNX models on its workers.
 * See README.md ("Use it from your code") and examples/library/.
 */
export { connect, Requester, taskInputs, ocrPageJson } from './node/requester.js'
export { isTerminalState } from './core/job-store.js'
export type { ConnectOptions, TaskInputs, RunOptions, MapOptions, MapProgress, SubmitOptions, DatasetInputs, WorkerInfo, OcrOptions, ImageInput, ResumeOptions, WorkerReputation, OcrPageJson } from './node/requester.js'
export { Job } from './node/requester-job.js'
export type { TaskOutput } from './node/requester-job.js'
export { RequesterError } from './node/requester-errors.js'
export type { RequesterErrorCode } from './node/requester-errors.js'
export type { ModelHandle, ModelInput, TensorInfo } from './node/requester-models.js'
export type { JobMeta, JobState } from './core/job-store.js'
export type { JobProgress } from './net/job-runner.js'
export type { TensorJson } from './models/tensor-output.js'
export type { OcrPageResult, OcrBatchProgress } from './net/ocr-job.js'

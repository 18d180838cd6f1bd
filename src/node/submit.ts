/**
 * `npm run submit -- --model digits --dataset mnist-test --replicas 2 [--relay <multiaddr>]`:
 * runs a batch job across the network's workers from the command line, with a progress bar, and
 * prints the same summary as the page. Job state lives in a file store, so `--resume <jobId>`
 * continues an interrupted job; Ctrl-C stops cleanly and keeps what is done; `--cancel <jobId>`
 * ends a job for good (its decided results stay; a run of it in another process stops at its next
 * save). A job that cannot progress says why on stderr at once, and after --give-up-after seconds
 * of that the command stops (the job stays resumable).
 *
 * Exit status: 0 when the job is done (or was cancelled by --cancel), 1 when it failed, gave up,
 * was already over (--cancel) or the relay is unreachable, 2 for bad arguments or an unknown job,
 * 130 when interrupted (resumable).
 */
import { writeFile } from 'node:fs/promises'
import { COMMON_OPTIONS, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, VERIFICATION_USAGE, blockedReporter, commonArgs, connectCli, fail, parseCli, processIo, runCommand, runIfMain, waitForWorkers } from './cli.js'
import { FileJobStore } from './file-job-store.js'
import { JobStateError, isTerminalState, transitionJob } from '../core/job-store.js'
import { cloudCost, describeCost, formatUsd } from '../core/cost.js'
import { RequesterError } from './requester-errors.js'
import { loadDigitDataset } from './datasets.js'
import { describeVerification } from '../core/verification.js'
import { digitPredictions, digitsToCsv, digitsToJson, summarizeDigits } from '../models/digit-job.js'
import type { Cli, CliIo, CommonArgs } from './cli.js'
import type { Job } from './requester-job.js'
import type { Requester } from './requester.js'
import type { DigitDataset } from '../models/datasets.js'

const USAGE = `usage: submit --relay <multiaddr>... [--model digits] [--dataset mnist-test] [--replicas 1-3] [--adaptive]
              ${VERIFICATION_USAGE}
              [--limit N] [--workers N] [--out results.csv|results.json] [--export proofs.jsonl]
              [--resume <jobId>] [--store .data/jobs]
       submit --cancel <jobId> [--store .data/jobs]   (ends the job for good; no relay needed)
  env: RELAY_ADDR`

export async function submitMain (argv: string[], io: CliIo = processIo()): Promise<number> {
  return await runCommand('submit', io, async (cli) => {
    const { values } = parseCli({
      args: argv,
      options: {
        ...COMMON_OPTIONS,
        model: { type: 'string', default: 'digits' },
        dataset: { type: 'string', default: 'mnist-test' },
        adaptive: { type: 'boolean', default: false },
        limit: { type: 'string' },
        out: { type: 'string' },
        export: { type: 'string' },
        resume: { type: 'string' },
        cancel: { type: 'string' },
        store: { type: 'string', default: '.data/jobs' },
        key: { type: 'string', default: '.data/submit.key' }
      }
    }, USAGE)
    if (values.help) {
      cli.out(USAGE)
      return EXIT_OK
    }
    if (values.cancel != null) return await cancelJob(cli, values.cancel, values.store)
    const args = commonArgs(values, io.env, USAGE)
    if (values.model !== 'digits') fail(`unknown model "${values.model}" (available: digits)`, EXIT_USAGE)
    const limit = values.limit == null ? undefined : Number(values.limit)
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) fail(`--limit must be a whole number above 0, got "${values.limit}"`, EXIT_USAGE)
    // A new job's dataset is checked before connecting; a resumed job names its own.
    const newDataset = values.resume == null ? await loadDigitDataset(values.dataset).catch((err: Error) => fail(err.message, EXIT_USAGE)) : undefined

    const net = await connectCli(args, { dataDir: null, jobsDir: values.store, key: values.key })
    try {
      let job: Job
      let dataset = newDataset
      if (values.resume != null) {
        const stored = await net.job(values.resume).catch((err: unknown) => {
          if (err instanceof RequesterError && err.code === 'unknown-job') fail(`no job ${values.resume} in ${values.store}`, EXIT_USAGE)
          throw err
        })
        if (stored.meta.modelId !== 'digits') fail(`job ${stored.id} runs ${stored.meta.modelId}, not the digits model`, EXIT_USAGE)
        dataset = await loadDigitDataset(stored.meta.datasetId).catch((err: Error) => fail(`job ${stored.id}: ${err.message}`, EXIT_USAGE))
        if (stored.meta.state === 'done') {
          cli.err(`job ${stored.id} is already done; printing its results`)
          job = stored
        } else {
          await waitForWorkers(cli, net, args)
          job = await net.resume(stored.id, { spotCheck: args.spotCheck, diversity: args.diversity, giveUpAfterMs: args.giveUpAfterMs })
        }
      } else {
        await waitForWorkers(cli, net, args)
        job = await net.submit('digits', { dataset: newDataset!.id, limit }, { replicas: args.replicas, adaptive: values.adaptive, giveUpAfterMs: args.giveUpAfterMs })
      }
      return await follow(cli, net, job, dataset!, args, values)
    } finally {
      await net.close()
    }
  })
}


/**
 * Ends a stored job for good (state cancelled; its results stay). Only the file store is needed:
 * a run of the job in another process sees the state at its next save and stops.
 */
async function cancelJob (cli: Cli, jobId: string, dir: string): Promise<number> {
  const store = new FileJobStore(dir)
  const meta = await store.getJob(jobId)
  if (meta == null) fail(`no job ${jobId} in ${dir}`, EXIT_USAGE)
  if (isTerminalState(meta.state)) fail(`job ${jobId} is already ${meta.state}`, EXIT_FAILED)
  try {
    await transitionJob(store, jobId, 'cancelled', { error: 'cancelled' })
  } catch (err) {
    // Ended meanwhile (its own run finished it): say what the store says.
    if (err instanceof JobStateError && err.code === 'invalid-transition') fail(`job ${jobId} is already ${(await store.getJob(jobId))?.state ?? 'gone'}`, EXIT_FAILED)
    throw err
  }
  const kept = (await store.getResults(jobId)).length
  cli.out(`job ${jobId}: cancelled; ${kept}/${meta.taskCount} result(s) kept in ${dir}`)
  return EXIT_OK
}

/** Shows the job's progress until it ends (or Ctrl-C stops it), then its summary and files. */
async function follow (cli: Cli, net: Requester, job: Job, dataset: DigitDataset, args: CommonArgs, values: { out?: string, export?: string }): Promise<number> {
  const meta = job.meta
  cli.err(`submit ${net.peerId} joined; job ${meta.jobId}: ${meta.taskCount} × ${meta.modelId} on ${meta.datasetId}, replicas ${meta.replicas}${meta.adaptive ? ' (adaptive)' : ''}`)
  const verificationText = describeVerification({ replicas: meta.replicas, adaptive: meta.adaptive, spotCheck: args.spotCheck, diversity: args.diversity })
  cli.err(`verification: ${verificationText}`)

  const tty = cli.io.stderr.isTTY === true
  let lastLine = 0
  const render = (force = false): void => {
    const now = Date.now()
    if (!force && now - lastLine < (tty ? 100 : 2000)) return
    lastLine = now
    const p = job.progress
    const width = 30
    const frac = p.total > 0 ? p.done / p.total : 1
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░')
    const eta = Number.isFinite(p.etaSeconds) ? `${p.etaSeconds.toFixed(0)} s` : '—'
    const workers = net.workers().filter(w => !w.paused).length
    const line = `${bar} ${p.done}/${p.total} ${(frac * 100).toFixed(1)}%  ${p.tasksPerSec.toFixed(0)} tasks/s  ETA ${eta}  in flight ${p.inFlight}  workers ${workers}  ${p.state}`
    if (tty) cli.io.stderr.write(`\r${line}\x1b[K`)
    else cli.err(line)
  }
  const running = !job.finished
  // A message ends the progress bar's line first (on a terminal it is redrawn in place).
  const report = blockedReporter(cli, () => job.blocked, args.giveUpAfterMs, () => { if (tty && lastLine > 0) cli.io.stderr.write('\n') })
  const onProgress = (): void => {
    report()
    render()
  }
  job.addEventListener('progress', onProgress)
  const detach = cli.onInterrupt(() => {
    if (tty) cli.io.stderr.write('\n')
    cli.err(`interrupted: saving; resume with --resume ${meta.jobId}`)
    job.stop().catch(() => {}) // job.done reports the end
  })

  const t0 = Date.now()
  const final = await job.done
  detach()
  job.removeEventListener('progress', onProgress)
  if (running) render(true)
  if (tty) cli.io.stderr.write('\n')

  const progress = job.progress
  const rows = digitPredictions(await job.storedResults(), dataset)
  const summary = summarizeDigits(rows)
  const seconds = (Date.now() - t0) / 1000
  cli.out(`job ${final.jobId}: ${final.state}${final.error != null ? ` (${final.error})` : ''}`)
  cli.out(`  tasks       ${rows.length}/${final.taskCount} in ${seconds.toFixed(1)} s (${(rows.length / Math.max(seconds, 1e-3)).toFixed(0)} tasks/s this run)`)
  cli.out(`  accuracy    ${(summary.accuracy * 100).toFixed(2)} % of ${summary.count}; ${(summary.heldOutAccuracy * 100).toFixed(2)} % of the ${summary.heldOutCount} digits never trained on`)
  cli.out(`  verified    ${summary.crossChecked} cross-checked (replicas ${final.replicas}${final.adaptive ? ', adaptive' : ''}), ${progress.disagreements} disagreement(s)${progress.disagreements > 0 ? ' — see reputation below' : ''}`)
  cli.out(`  checks      ${progress.spotChecks.done} recomputed here, ${progress.spotChecks.mismatches} caught a wrong result${progress.convicted.length > 0 ? `; convicted (all their votes discarded): ${progress.convicted.map(p => `…${p.slice(-10)}`).join(', ')}` : ''}`)
  cli.out(`  level       ${verificationText}`)
  const inferenceMs = final.stats?.inferenceMs ?? progress.inferenceMs
  const cost = cloudCost(inferenceMs)
  cli.out(`  compute     ${(inferenceMs / 1000).toFixed(1)} s of inference (replicas included); on a cloud function about ${formatUsd(cost.usd)} (${describeCost(cost)})`)
  const total = Object.values(progress.perPeer).reduce((a, b) => a + b, 0)
  for (const [peerId, n] of Object.entries(progress.perPeer).sort((a, b) => b[1] - a[1])) {
    const r = net.reputationOf(peerId)
    cli.out(`  peer        …${peerId.slice(-10)} ran ${n} (${(n / Math.max(total, 1) * 100).toFixed(1)} %), reputation ${r.score.toFixed(2)} (✓${r.agreed} ✗${r.disagreed})`)
  }
  if (values.out != null) {
    await writeFile(values.out, values.out.endsWith('.csv') ? digitsToCsv(rows) : digitsToJson(rows, summary))
    cli.out(`  results     written to ${values.out} (input order)`)
  }
  if (job.auditHead != null) cli.out(`  audit head  ${job.auditHead} (the hash that pins this job's audit log)`)
  if (values.export != null) {
    await writeFile(values.export, (await net.exportLines(final.jobId)).join('\n') + '\n')
    cli.out(`  proofs      results, signed receipts and the audit log written to ${values.export} (check with npm run verify -- ${values.export})`)
  }
  if (job.stalled != null) fail(`gave up: ${job.stalled.message}; the job is saved: continue it with --resume ${final.jobId}, or end it with --cancel ${final.jobId}`, EXIT_FAILED)
  return cli.interrupted ? EXIT_INTERRUPTED : final.state === 'done' ? EXIT_OK : EXIT_FAILED
}

runIfMain(import.meta.url, submitMain)

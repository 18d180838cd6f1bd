/**
 * `npm run infer -- --relay <multiaddr> --model my.onnx --inputs inputs.jsonl [--out outputs.jsonl]`:
 * runs your own ONNX model over many inputs on the network's workers, as one batch job. Each line
 * of the inputs file is a JSON object keyed by input name (nested arrays or { dims, data }; 64-bit
 * integers as strings). Workers fetch the model from this process by sha256, verify and cache it.
 * Each output line is { index, outputs: [{ name, dtype, dims, data }], agreedBy }, in input order.
 *
 * Exit status: 0 when every line ran, 1 when some failed, the relay is unreachable or the job
 * could not progress for --give-up-after seconds (the reason on stderr; nothing written), 2 for
 * bad arguments, an unreadable model or a malformed input line, 130 when interrupted (nothing
 * written).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { COMMON_OPTIONS, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, VERIFICATION_USAGE, blockedReporter, commonArgs, connectCli, fail, parseCli, processIo, runCommand, runIfMain, waitForWorkers } from './cli.js'
import { taskInputs } from './requester.js'
import { describeModel } from './requester-models.js'
import { describeVerification } from '../core/verification.js'
import type { CliIo } from './cli.js'

const USAGE = `usage: infer --relay <multiaddr> --model <file.onnx> --inputs <inputs.jsonl> [--out outputs.jsonl] [--export proofs.jsonl]
             [--replicas 1-3] [--workers N] [--tolerance 1e-4] ${VERIFICATION_USAGE}
  env: RELAY_ADDR`

export async function inferMain (argv: string[], io: CliIo = processIo()): Promise<number> {
  return await runCommand('infer', io, async (cli) => {
    const { values } = parseCli({
      args: argv,
      options: {
        ...COMMON_OPTIONS,
        model: { type: 'string' },
        inputs: { type: 'string' },
        out: { type: 'string' },
        export: { type: 'string' },
        tolerance: { type: 'string', default: '1e-4' }
      }
    }, USAGE)
    if (values.help) {
      cli.out(USAGE)
      return EXIT_OK
    }
    const args = commonArgs(values, io.env, USAGE)
    const modelFile = values.model
    const inputsFile = values.inputs
    if (modelFile == null || inputsFile == null) return fail(`--model and --inputs are required\n${USAGE}`, EXIT_USAGE)
    const tolerance = Number(values.tolerance)
    if (!(tolerance >= 0 && Number.isFinite(tolerance))) fail(`--tolerance must be a number ≥ 0, got "${values.tolerance}"`, EXIT_USAGE)

    const bytes = new Uint8Array(await readFile(modelFile).catch((err: Error) => fail(err.message, EXIT_USAGE)))
    const name = basename(modelFile)
    const declared = describeModel(bytes, name, '')
    const lines = (await readFile(inputsFile, 'utf8').catch((err: Error) => fail(err.message, EXIT_USAGE))).split('\n').filter(l => l.trim() !== '')
    if (lines.length === 0) fail(`${inputsFile} has no input lines`, EXIT_USAGE)
    // Every line is checked before anything is sent: a typo on line 9,000 should not cost a job.
    lines.forEach((line, i) => {
      try {
        taskInputs(declared, line)
      } catch (err) {
        fail(`${inputsFile}:${i + 1}: ${(err as Error).message}`, EXIT_USAGE)
      }
    })

    const net = await connectCli(args, { dataDir: null })
    try {
      const model = await net.model({ bytes, name })
      await waitForWorkers(cli, net, args)
      const job = await net.submit(model.sha256, lines, { replicas: args.replicas, tolerance, label: basename(inputsFile), giveUpAfterMs: args.giveUpAfterMs })
      cli.say(`${lines.length} task(s) of ${model.name} (sha256 ${model.sha256.slice(0, 12)}…), replicas ${args.replicas}`)
      cli.say(`verification: ${describeVerification({ replicas: args.replicas, adaptive: false, spotCheck: args.spotCheck, diversity: args.diversity })}`)
      let last = 0
      const report = blockedReporter(cli, () => job.blocked, args.giveUpAfterMs)
      job.addEventListener('progress', () => {
        report()
        if (Date.now() - last < 1000) return
        last = Date.now()
        const p = job.progress
        cli.say(`${p.done}/${p.total} done, ${p.inFlight} in flight, ${p.tasksPerSec.toFixed(1)} tasks/s`)
      })
      const detach = cli.onInterrupt(() => { job.stop().catch(() => {}) }) // job.done reports the end
      const t0 = Date.now()
      const final = await job.done
      detach()
      if (cli.interrupted) {
        cli.say('interrupted; nothing written')
        return EXIT_INTERRUPTED
      }
      if (job.stalled != null) fail(`gave up: ${job.stalled.message}; nothing written`, EXIT_FAILED)
      const body: string[] = []
      for await (const r of job.results()) if (r.outputs != null) body.push(JSON.stringify({ index: r.index, outputs: r.outputs, agreedBy: r.agreedBy }))
      const seconds = (Date.now() - t0) / 1000
      const { perPeer, spotChecks, convicted } = job.progress
      cli.say(`${final.state}: ${body.length}/${lines.length} in ${seconds.toFixed(1)} s; per peer ${JSON.stringify(perPeer)}; ${spotChecks.done} recomputed here, ${spotChecks.mismatches} caught a wrong result${convicted.length > 0 ? `, convicted ${convicted.join(', ')}` : ''}`)

      const text = body.join('\n') + '\n'
      if (values.out != null) await writeFile(values.out, text)
      else cli.io.stdout.write(text)
      cli.say(`audit head ${job.auditHead ?? '—'}`)
      if (values.export != null) {
        await writeFile(values.export, (await net.exportLines(job.id)).join('\n') + '\n')
        cli.say(`results, signed receipts and the audit log written to ${values.export} (check with npm run verify -- ${values.export} --model ${modelFile} --inputs ${inputsFile})`)
      }
      return final.state === 'done' && body.length === lines.length ? EXIT_OK : EXIT_FAILED
    } finally {
      await net.close()
    }
  })
}

runIfMain(import.meta.url, inferMain)

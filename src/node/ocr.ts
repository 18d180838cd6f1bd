/**
 * `npm run ocr -- --relay <multiaddr> page1.png page2.png … [--out result.json|result.txt]`:
 * reads text from PNG pages with the network's workers (PP-OCRv4 detection, then recognition of
 * every line, as two batch jobs), printing progress on stderr and the text on stdout.
 * Pre- and post-processing run here; workers only run the two ONNX models.
 *
 * Exit status: 0 when every page was read, 1 when a page failed, the relay is unreachable or a
 * phase could not progress for --give-up-after seconds (the reason on stderr), 2 for bad
 * arguments or unreadable files, 130 when interrupted.
 */
import { writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { COMMON_OPTIONS, EXIT_FAILED, EXIT_OK, EXIT_USAGE, VERIFICATION_USAGE, blockedReporter, commonArgs, connectCli, fail, parseCli, processIo, runCommand, runIfMain, waitForWorkers } from './cli.js'
import type { JobBlocked } from '../core/job-blocked.js'
import { readImages } from './requester.js'
import type { CliIo } from './cli.js'

const USAGE = `usage: ocr --relay <multiaddr> <page.png>... [--replicas 1-3] [--workers N] [--out result.json|result.txt]
           ${VERIFICATION_USAGE}
  env: RELAY_ADDR`

export async function ocrMain (argv: string[], io: CliIo = processIo()): Promise<number> {
  return await runCommand('ocr', io, async (cli) => {
    const { values, positionals } = parseCli({
      args: argv,
      allowPositionals: true,
      options: {
        ...COMMON_OPTIONS,
        out: { type: 'string' }
      }
    }, USAGE)
    if (values.help) {
      cli.out(USAGE)
      return EXIT_OK
    }
    const args = commonArgs(values, io.env, USAGE)
    if (positionals.length === 0) fail(`no pages given\n${USAGE}`, EXIT_USAGE)
    // Every page is read before connecting: an unreadable file costs no network time.
    const pages = await readImages(positionals)

    const net = await connectCli(args, { dataDir: null })
    try {
      await waitForWorkers(cli, net, args)
      const t0 = Date.now()
      let last = 0
      let blocked: JobBlocked | undefined
      const report = blockedReporter(cli, () => blocked, args.giveUpAfterMs)
      const results = await net.ocr(pages, {
        replicas: args.replicas,
        signal: cli.io.interrupt,
        giveUpAfterMs: args.giveUpAfterMs,
        onProgress: (p) => {
          blocked = p.job.blocked
          report()
          if (Date.now() - last < 1000 && p.phase !== 'done') return
          last = Date.now()
          const what = p.phase === 'detect' ? `finding text ${p.job.done}/${p.job.total} pages` : p.phase === 'recognize' ? `reading ${p.lines} lines: ${p.job.done}/${p.job.total} batches` : 'done'
          cli.say(what)
        }
      })
      const seconds = (Date.now() - t0) / 1000
      cli.say(`${pages.length} page(s) in ${seconds.toFixed(1)} s (${(pages.length / seconds * 60).toFixed(1)} pages/min)`)

      for (const [i, r] of results.entries()) {
        cli.out(`# ${positionals[i]}${r.error != null ? ` (${r.error})` : ''}`)
        cli.out(r.text)
      }
      if (values.out != null) {
        const json = values.out.endsWith('.json')
        const body = json
          ? JSON.stringify(results.map((r, i) => ({ page: basename(positionals[i]!), text: r.text, lines: r.lines.map(l => ({ text: l.text, score: l.score, box: l.box })), error: r.error })), null, 2)
          : results.map((r, i) => `# ${positionals[i]}\n${r.text}`).join('\n\n') + '\n'
        await writeFile(values.out, body)
        cli.say(`written to ${values.out}`)
      }
      return results.some(r => r.error != null) ? EXIT_FAILED : EXIT_OK
    } finally {
      await net.close()
    }
  })
}

runIfMain(import.meta.url, ocrMain)

/**
 * A job kept on disk: the built-in MNIST test set through the digits model. Ctrl-C stops it (what
 * is decided stays); `--resume <id>` continues it, from this process or any other started on the
 * same data directory.
 *
 *   node --import tsx examples/library/job.ts --relay <multiaddr> [--limit 2000] [--data .data/example]
 *   node --import tsx examples/library/job.ts --relay <multiaddr> --resume <job id>
 */
import { parseArgs } from 'node:util'
import { connect } from 'p2p-ai-agents'

const { values } = parseArgs({
  options: {
    relay: { type: 'string' },
    limit: { type: 'string', default: '2000' },
    data: { type: 'string', default: '.data/example' },
    resume: { type: 'string' }
  }
})
const relay = values.relay ?? process.env.RELAY_ADDR
if (relay == null) throw new Error('give --relay <multiaddr> or set RELAY_ADDR')

// The data directory holds this requester's key (so its peer id stays), its jobs and their inputs.
const net = await connect({ relays: relay, dataDir: values.data })
// close() stops every running job; each stays resumable.
process.once('SIGINT', () => { net.close().catch((err: unknown) => { console.error(err) }) })
try {
  await net.waitForWorkers(1)
  const job = values.resume != null
    ? await net.resume(values.resume)
    : await net.submit('digits', { dataset: 'mnist-test', limit: Number(values.limit) })
  console.log(`job ${job.id}`)
  let last = 0
  job.addEventListener('progress', () => {
    if (Date.now() - last < 500) return
    last = Date.now()
    console.log(`${job.progress.done}/${job.progress.total}`)
  })
  const meta = await job.done
  if (meta.state !== 'done') {
    console.log(`${meta.state} at ${job.progress.done}/${meta.taskCount}; continue with --resume ${job.id}`)
    process.exitCode = 130
  } else {
    // Every task's outcome in input order (read from the store now that the job is over).
    const counts = new Array<number>(10).fill(0)
    for await (const r of job.results()) {
      const probs = r.outputs?.find(t => t.name === 'probs')?.data as number[] | undefined
      if (probs != null) counts[probs.indexOf(Math.max(...probs))]!++
    }
    console.log(`done: ${meta.taskCount} tasks, ${job.progress.restored} decided before this run`)
    console.log(`predicted: ${counts.map((n, digit) => `${digit}×${n}`).join(' ')}`)
  }
} finally {
  await net.close()
}
// libp2p's WebRTC for Node (node-datachannel) can keep a process alive after close(): end it here.
process.exit()

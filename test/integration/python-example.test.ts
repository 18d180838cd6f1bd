/**
 * examples/python/client.py (plain `requests`) against a real gateway, relay and onnxruntime-node
 * workers: it uploads the add-mul sample model, runs one task, runs a batch streaming its results,
 * and reads the text of a sample page; without the token it stops with the gateway's error code.
 */
import '../../src/node/polyfill.js'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGateway } from '../../src/gateway/server.js'
import { Cleanup, REPO_ROOT, startPeer, startRelay, WAIT_MS } from './helpers.js'
import type { Gateway } from '../../src/gateway/server.js'

const CLIENT = fileURLToPath(new URL('../../examples/python/client.py', import.meta.url))
const NOTE = fileURLToPath(new URL('../../public/samples/ocr/samples.json', import.meta.url))
const TOKEN = 'python-example-token-0123456789'

const cleanup = new Cleanup()
let gw: Gateway

async function client (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    execFile('python3', [CLIENT, ...args], { cwd: REPO_ROOT, timeout: 240_000, env: { ...process.env, GATEWAY_TOKEN: '' } }, (err, stdout, stderr) => {
      resolve({ code: err == null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
  })
}

beforeAll(async () => {
  const relay = await startRelay(cleanup)
  await startPeer(cleanup, relay.addr, { queue: { slots: 2 } })
  await startPeer(cleanup, relay.addr, { queue: { slots: 2 } })
  gw = await startGateway({ relays: relay.addr, port: 0, token: TOKEN, dataDir: await mkdtemp(join(tmpdir(), 'p2p-gw-py-')) })
  cleanup.add('gateway', async () => { await gw.close() })
  await gw.requester.waitForWorkers(2, { timeoutMs: WAIT_MS })
})

afterAll(async () => { await cleanup.run() })

describe('the Python example', () => {
  it('uploads a model, runs a task, streams a batch\'s results and reads a page', async () => {
    const { code, stdout, stderr } = await client([gw.url, TOKEN])
    expect(code, `${stdout}\n${stderr}`).toBe(0)
    expect(stdout).toMatch(/^health: 2 worker\(s\)$/m)
    expect(stdout).toMatch(/^model: add-mul\.onnx sha256 [0-9a-f]{64} inputs a, b$/m)
    expect(stdout).toMatch(/^run: sum dims \[2, 3\] data \[1\.5, 0(\.0)?, 13(\.0)?, 4\.25, 5(\.0)?, 5(\.0)?\], agreed by 2 workers$/m)
    expect(stdout).toMatch(/^job: \S+ with 200 tasks$/m)
    expect(stdout).toMatch(/^results: 200 in order, 200 right; job done, workers /m)
    const note = (JSON.parse(await readFile(NOTE, 'utf8')) as Array<{ file: string, lines: string[] }>).find(s => s.file === 'note.png')!
    expect(stdout).toContain(`ocr: ${note.lines.length} line(s)`)
    const read = stdout.split('\n').filter(l => l.startsWith('  ')).map(l => l.replace(/ {2}\(score [\d.]+\)$/, '').trim())
    expect(read).toEqual(note.lines)
  })

  it('stops with the gateway\'s error code when the token is missing', async () => {
    const { code, stderr } = await client([gw.url])
    expect(code).toBe(1)
    expect(stderr).toMatch(/^client: 401 unauthenticated: /m)
  })
})

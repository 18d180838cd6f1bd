/** GET /v1/workers and GET /healthz. */
import { Health, WorkerList, responses } from '../schemas.js'
import type { App, GatewayContext } from '../context.js'

export function networkRoutes (app: App, ctx: GatewayContext): void {
  app.get('/v1/workers', {
    schema: {
      summary: 'The workers this gateway hears of',
      description: 'From the relays\' adverts: what each runs on, its free slots, the models it holds (sha256), whether this gateway has a direct connection to it.',
      tags: ['network'],
      response: responses({ 200: WorkerList }, [401])
    }
  }, async () => ({ workers: ctx.net.workers() }))

  app.get('/healthz', {
    schema: {
      summary: 'Health',
      description: 'No token needed. 200 while a relay is reachable, 503 otherwise; the count of workers advertising.',
      tags: ['network'],
      security: [],
      response: { 200: Health, 503: Health }
    }
  }, async (_request, reply) => {
    const relays = ctx.net.peer.relays.views.map(v => ({ addr: v.addr, state: v.state }))
    const ok = relays.some(r => r.state === 'ready')
    reply.status(ok ? 200 : 503)
    return { ok, relays, workers: ctx.net.workers().filter(w => !w.paused).length }
  })
}

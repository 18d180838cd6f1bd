/** `--relay` for the command-line peers: repeatable, or RELAY_ADDR (comma-separated). */
import { multiaddr } from '@multiformats/multiaddr'

/** The parseArgs option: `--relay a --relay b`. */
export const RELAY_OPTION = { type: 'string', multiple: true } as const

/** Relay multiaddrs from the flag (or else the environment), checked; throws a one-line Error when one is not a relay multiaddr. */
export function relayList (flag: string[] | undefined, env = process.env.RELAY_ADDR): string[] {
  const raw = flag != null && flag.length > 0 ? flag : (env ?? '').split(',')
  const relays = raw.map(r => r.trim()).filter(r => r !== '')
  for (const r of relays) {
    let ma
    try {
      ma = multiaddr(r)
    } catch (err) {
      throw new Error(`invalid relay address ${r}: ${(err as Error).message.split('\n')[0]}`)
    }
    if (!ma.getComponents().some(c => c.name === 'p2p')) throw new Error(`invalid relay address ${r}: it needs /p2p/<relay peer id>`)
  }
  return relays
}

/** relayList for a command that needs a relay: `fail` is called with a one-line reason when none is given or one is bad. */
export function requiredRelays (flag: string[] | undefined, fail: (message: string) => never): string[] {
  let relays: string[]
  try {
    relays = relayList(flag)
  } catch (err) {
    return fail((err as Error).message)
  }
  return relays.length > 0 ? relays : fail('--relay is required (or set RELAY_ADDR)')
}

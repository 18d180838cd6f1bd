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

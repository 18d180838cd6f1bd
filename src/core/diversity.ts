/**
 * Diversity groups: which workers a requester can tell apart. Identities cost nothing, so two
 * peer ids on one machine, one subnet or (in strict mode) behind one relay must not be counted
 * as two independent witnesses of a result. The scheduler keeps replicas of a task off workers
 * sharing a group and counts agreeing results from one group as one vote.
 *
 * Modes:
 * - 'standard' (default): a public address groups by host and by /24 (IPv4) or /48 (IPv6).
 *   Private, loopback and link-local addresses (and unknown ones) form no group: such a worker is
 *   on the requester's own network, where one machine running several workers is the normal case
 *   (two tabs on a laptop, a LAN of test machines).
 * - 'strict': as standard, plus the relay a worker is reached through; workers whose address
 *   WebRTC does not report (an mDNS host name, missing stats) share one group.
 * - 'lan': no groups at all (everything on one host or LAN, e.g. tests on loopback).
 */

export type DiversityMode = 'standard' | 'strict' | 'lan'

export const DIVERSITY_MODES: readonly DiversityMode[] = ['standard', 'strict', 'lan']

export interface PeerEndpoint {
  /** The remote IP of the direct connection (the selected ICE candidate), if known. */
  ip?: string
  /** The relay the connection was signalled through, if any. */
  relay?: string
}

export function isDiversityMode (value: string): value is DiversityMode {
  return (DIVERSITY_MODES as readonly string[]).includes(value)
}

/** The groups a worker with this endpoint belongs to, under `mode`. */
export function diversityGroups (endpoint: PeerEndpoint, mode: DiversityMode = 'standard'): string[] {
  if (mode === 'lan') return []
  const groups: string[] = []
  const ip = endpoint.ip != null ? parseIp(endpoint.ip) : undefined
  if (ip != null && ip.public) groups.push(`host:${ip.host}`, `net:${ip.net}`)
  if (ip == null && mode === 'strict') groups.push('host:unknown')
  if (mode === 'strict' && endpoint.relay != null && endpoint.relay !== '') groups.push(`relay:${endpoint.relay}`)
  return groups
}

interface ParsedIp {
  /** Canonical host form. */
  host: string
  /** The /24 or /48 it lies in. */
  net: string
  public: boolean
}

function parseIp (text: string): ParsedIp | undefined {
  const s = text.trim().replace(/^\[|\]$/g, '').replace(/%.*$/, '')
  return s.includes(':') ? parseIpv6(s) : parseIpv4(s)
}

function parseIpv4 (s: string): ParsedIp | undefined {
  const parts = s.split('.')
  if (parts.length !== 4 || !parts.every(p => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined
  const [a, b, c, d] = parts.map(Number)
  const priv = a === 10 || a === 127 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
    (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127) || a >= 224
  return { host: `${a}.${b}.${c}.${d}`, net: `${a}.${b}.${c}.0/24`, public: !priv }
}

function parseIpv6 (s: string): ParsedIp | undefined {
  // An IPv4-mapped address is the IPv4 host.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s)
  if (mapped != null) return parseIpv4(mapped[1])
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const head = halves[0] === '' ? [] : halves[0].split(':')
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1].split(':') : []
  const missing = 8 - head.length - tail.length
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) return undefined
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail]
  if (!groups.every(g => /^[0-9a-f]{1,4}$/i.test(g))) return undefined
  const words = groups.map(g => parseInt(g, 16))
  const first = words[0]
  const loopback = words.slice(0, 7).every(w => w === 0) && words[7] <= 1
  const priv = loopback || (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80 || (first & 0xff00) === 0xff00
  const hex = words.map(w => w.toString(16))
  return { host: hex.join(':'), net: `${hex.slice(0, 3).join(':')}::/48`, public: !priv }
}

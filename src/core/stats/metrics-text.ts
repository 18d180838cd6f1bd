/** Reading the relay's /metrics (Prometheus text format, as relay/static-server.ts writes it). */

/** Prometheus text ("p2p_ai_agents_connections 3" lines) → { connections: 3 }; other lines are skipped. */
export function parseMetrics (text: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const line of text.split('\n')) {
    const m = /^p2p_ai_agents_([a-z0-9_]{1,80}) (-?[0-9.e+]{1,30})$/.exec(line.trim())
    if (m == null) continue
    const v = Number(m[2])
    if (Number.isFinite(v)) out[m[1]] = v
  }
  return out
}

/**
 * Which direct connections to close: a peer holds at most `max`, and closes those idle for
 * `idleMs`. Connections carrying work are never chosen; among the rest the least recently used go
 * first. Pure, so the policy is tested without a network.
 */

export interface HeldConnection {
  id: string
  /** When a task or transfer last used it (or when it opened). */
  lastUsed: number
  /** Tasks or transfers on it right now. */
  busy: boolean
}

export interface BudgetOptions {
  max: number
  idleMs: number
}

/** Ids of the connections to close now, least recently used first. */
export function connectionsToClose (held: readonly HeldConnection[], now: number, options: BudgetOptions): string[] {
  const idle = held.filter(c => !c.busy).sort((a, b) => a.lastUsed - b.lastUsed)
  const close = new Set<string>()
  let over = held.length - options.max
  for (const c of idle) {
    if (over > 0) {
      close.add(c.id)
      over--
    } else if (now - c.lastUsed >= options.idleMs) {
      close.add(c.id)
    }
  }
  return idle.filter(c => close.has(c.id)).map(c => c.id)
}

/** Bounds on concurrent work: a slot is held from the request's start until its response closes. */
import { GatewayError } from './errors.js'
import type { ServerResponse } from 'node:http'

export class Slots {
  private used = 0

  constructor (private readonly what: string, private readonly max: number) {}

  /** Holds a slot until `res` closes (sent, or the client went away); GatewayError 'busy' when none is free. */
  take (res: ServerResponse): void {
    if (this.used >= this.max) throw new GatewayError('busy', 429, `at most ${this.max} ${this.what} at once; try again when one has ended`)
    this.used++
    res.once('close', () => { this.used-- })
  }
}

/** Slots per key (a job's streams) under a total. */
export class KeyedSlots {
  private readonly byKey = new Map<string, number>()
  private total = 0

  constructor (private readonly what: string, private readonly perKey: number, private readonly max: number) {}

  take (key: string, res: ServerResponse): void {
    const n = this.byKey.get(key) ?? 0
    if (n >= this.perKey) throw new GatewayError('busy', 429, `at most ${this.perKey} ${this.what} per job at once`)
    if (this.total >= this.max) throw new GatewayError('busy', 429, `at most ${this.max} ${this.what} at once`)
    this.byKey.set(key, n + 1)
    this.total++
    res.once('close', () => {
      this.total--
      const left = (this.byKey.get(key) ?? 1) - 1
      if (left > 0) this.byKey.set(key, left)
      else this.byKey.delete(key)
    })
  }
}

/**
 * The page's digit results, newest first, as the Results card renders them. A task shows as
 * running only once it has run `graceMs`: a warm task to another tab answers in a few
 * milliseconds, and a "running" card for it is one more render, style, layout, paint and
 * compositor commit on the requester's main thread while the answer is on its way in (traced:
 * scripts/bench-ui.ts --profile). Below the grace the answer replaces nothing and simply appears.
 */
import type { Clock } from '../core/clock.js'

export interface ListedTask {
  taskId: string
  status: 'running' | 'done' | 'failed'
}

export interface SubmissionListOptions<T> {
  clock: Clock
  /** Rows kept (newest first; the oldest leave). */
  max: number
  /** How long a task runs before its running row shows. */
  graceMs: number
  /** The rows to render, each time they change (a new array each time). */
  onChange: (rows: readonly T[]) => void
}

interface Entry<T> {
  row: T
  shown: boolean
  timer?: unknown
}

export class SubmissionList<T extends ListedTask> {
  private readonly options: SubmissionListOptions<T>
  /** Newest first, shown or not: a task keeps its place by when it started, not when it ended. */
  private entries: Array<Entry<T>> = []

  constructor (options: SubmissionListOptions<T>) {
    this.options = options
  }

  /** What shows now, newest first. */
  get rows (): T[] {
    return this.entries.filter(e => e.shown).map(e => e.row)
  }

  /** A task has started: its running row shows if it is still running after the grace. */
  add (row: T): void {
    const entry: Entry<T> = { row, shown: false }
    entry.timer = this.options.clock.setTimeout(() => {
      entry.timer = undefined
      entry.shown = true
      this.changed()
    }, this.options.graceMs)
    this.entries.unshift(entry)
    this.trim()
  }

  /** A task's row changed (its answer or its error): it shows from now on. */
  update (taskId: string, patch: Partial<T>): void {
    const entry = this.entries.find(e => e.row.taskId === taskId)
    if (entry == null) return
    this.options.clock.clearTimeout(entry.timer)
    entry.timer = undefined
    entry.row = { ...entry.row, ...patch }
    entry.shown = true
    this.changed()
  }

  /** Rows kept from before a reload go behind what is there. */
  restore (rows: readonly T[]): void {
    this.entries.push(...rows.map(row => ({ row, shown: true })))
    this.trim()
    this.changed()
  }

  private trim (): void {
    for (const gone of this.entries.splice(this.options.max)) this.options.clock.clearTimeout(gone.timer)
  }

  private changed (): void {
    this.options.onChange(this.rows)
  }
}

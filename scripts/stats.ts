/** What the bench scripts share: summary statistics, and a wait bounded in time. */
export interface Summary { n: number, p50: number, p95: number, mean: number, min: number, max: number }

/** Nearest-rank percentile of an already sorted list. */
function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]
}

export function summarize (values: number[]): Summary {
  if (values.length === 0) throw new Error('nothing to summarise')
  const sorted = [...values].sort((a, b) => a - b)
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    min: sorted[0],
    max: sorted[sorted.length - 1]
  }
}

export function fmt (s: Summary, unit = 'ms', digits = 2): string {
  return `p50 ${s.p50.toFixed(digits)} ${unit}, p95 ${s.p95.toFixed(digits)} ${unit} (n=${s.n}, min ${s.min.toFixed(digits)}, max ${s.max.toFixed(digits)})`
}

/** Settles as `promise` does, or rejects after `ms` naming what was awaited (a bench step must never hang). */
export async function within<T> (promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`)) }, ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

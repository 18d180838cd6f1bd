/** Reading order for text boxes: rows top to bottom, boxes left to right, tolerant of slight rotation. */
import type { Quad } from './geometry.js'

interface Placed<T> {
  item: T
  cx: number
  cy: number
  /** Unit vector along the text (top edge direction). */
  ux: number
  uy: number
  height: number
}

function place<T> (item: T, q: Quad): Placed<T> {
  const dx = (q[1].x - q[0].x) + (q[2].x - q[3].x)
  const dy = (q[1].y - q[0].y) + (q[2].y - q[3].y)
  const len = Math.hypot(dx, dy)
  return {
    item,
    cx: (q[0].x + q[1].x + q[2].x + q[3].x) / 4,
    cy: (q[0].y + q[1].y + q[2].y + q[3].y) / 4,
    ux: len > 0 ? dx / len : 1,
    uy: len > 0 ? dy / len : 0,
    height: (Math.hypot(q[3].x - q[0].x, q[3].y - q[0].y) + Math.hypot(q[2].x - q[1].x, q[2].y - q[1].y)) / 2
  }
}

/**
 * Groups boxes into rows and orders them for reading. A box joins the row whose first box's
 * centre line (drawn along that box's own text direction, so a rotated page still works) passes
 * within half the smaller box height of its centre; rows are ordered by their topmost box, boxes
 * within a row along the row's text direction.
 */
export function readingOrder<T> (items: readonly T[], quadOf: (item: T) => Quad): T[][] {
  const placed = items.map(item => place(item, quadOf(item))).sort((a, b) => a.cy - b.cy)
  const rows: Array<Array<Placed<T>>> = []
  for (const p of placed) {
    let best: Array<Placed<T>> | undefined
    let bestOff = Infinity
    for (const row of rows) {
      const r = row[0]
      // Distance of p's centre from r's centre line, measured across the text direction.
      const off = Math.abs(-(p.cx - r.cx) * r.uy + (p.cy - r.cy) * r.ux)
      if (off < Math.min(r.height, p.height) / 2 && off < bestOff) {
        best = row
        bestOff = off
      }
    }
    if (best != null) best.push(p)
    else rows.push([p])
  }
  return rows.map(row => {
    const { ux, uy } = row[0]
    return row.sort((a, b) => (a.cx * ux + a.cy * uy) - (b.cx * ux + b.cy * uy)).map(p => p.item)
  })
}

/** Plane geometry for text boxes: convex hull, minimum-area rectangle, quads. */
import type { Point } from './image.js'

/** Corners clockwise on screen (y down) from the top-left: TL, TR, BR, BL. */
export type Quad = [Point, Point, Point, Point]

/** A rotated rectangle: centre, unit vector along its width (ux ≥ |uy|: the more horizontal axis), sides. */
export interface RotatedRect {
  cx: number
  cy: number
  ux: number
  uy: number
  width: number
  height: number
}

const cross = (o: Point, a: Point, b: Point): number => (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)

/** Convex hull (Andrew's monotone chain), collinear points dropped. */
export function convexHull (points: readonly Point[]): Point[] {
  const pts = [...points].sort((a, b) => a.x - b.x || a.y - b.y)
  if (pts.length < 3) return pts
  const lower: Point[] = []
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop()
    lower.push(p)
  }
  const upper: Point[] = []
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop()
    upper.push(p)
  }
  lower.pop()
  upper.pop()
  return lower.concat(upper)
}

/**
 * Minimum-area enclosing rectangle. One side of the optimum lies along a hull edge (the
 * rotating-calipers theorem), so each hull edge direction is tried; hulls stay small (a digital
 * shape of side n has O(n^⅔) hull vertices), so the quadratic scan is cheap.
 */
export function minAreaRect (points: readonly Point[]): RotatedRect {
  const hull = convexHull(points)
  if (hull.length === 0) throw new Error('minAreaRect of no points')
  let best: RotatedRect = { cx: hull[0].x, cy: hull[0].y, ux: 1, uy: 0, width: 0, height: 0 }
  let bestArea = Infinity
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i]
    const b = hull[(i + 1) % hull.length]
    const len = Math.hypot(b.x - a.x, b.y - a.y)
    if (len === 0) continue
    const ux = (b.x - a.x) / len
    const uy = (b.y - a.y) / len
    let minU = Infinity; let maxU = -Infinity; let minV = Infinity; let maxV = -Infinity
    for (const p of hull) {
      const u = p.x * ux + p.y * uy
      const v = -p.x * uy + p.y * ux
      if (u < minU) minU = u
      if (u > maxU) maxU = u
      if (v < minV) minV = v
      if (v > maxV) maxV = v
    }
    const area = (maxU - minU) * (maxV - minV)
    if (area < bestArea) {
      bestArea = area
      const mu = (minU + maxU) / 2
      const mv = (minV + maxV) / 2
      best = normalizeRect({ cx: mu * ux - mv * uy, cy: mu * uy + mv * ux, ux, uy, width: maxU - minU, height: maxV - minV })
    }
  }
  return best
}

/** Same rectangle, described with its more horizontal axis as the width, pointing right. */
function normalizeRect (r: RotatedRect): RotatedRect {
  let { ux, uy, width, height } = r
  if (Math.abs(uy) > Math.abs(ux)) {
    [ux, uy] = [-uy, ux]
    ;[width, height] = [height, width]
  }
  if (ux < 0 || (ux === 0 && uy < 0)) {
    ux = -ux
    uy = -uy
  }
  return { ...r, ux, uy, width, height }
}

/** The rectangle grown by d on every side (what offsetting it by d, then taking the min-area rect, gives). */
export function expandRect (r: RotatedRect, d: number): RotatedRect {
  return { ...r, width: r.width + 2 * d, height: r.height + 2 * d }
}

export function rectCorners (r: RotatedRect): Quad {
  // v = u turned 90° clockwise on screen: it points down the page.
  const vx = -r.uy
  const vy = r.ux
  const hw = r.width / 2
  const hh = r.height / 2
  const at = (su: number, sv: number): Point => ({ x: r.cx + su * hw * r.ux + sv * hh * vx, y: r.cy + su * hw * r.uy + sv * hh * vy })
  return [at(-1, -1), at(1, -1), at(1, 1), at(-1, 1)]
}

const dist = (a: Point, b: Point): number => Math.hypot(b.x - a.x, b.y - a.y)

/** Width and height of a quad: the longer of each pair of opposite sides. */
export function quadSize (q: Quad): { width: number, height: number } {
  return { width: Math.max(dist(q[0], q[1]), dist(q[3], q[2])), height: Math.max(dist(q[0], q[3]), dist(q[1], q[2])) }
}

/**
 * Calls visit(x, y) for every integer point inside a convex polygon (boundary included), row by
 * row within [0, width) × [0, height): work is proportional to the polygon's area.
 */
export function forEachPixelIn (poly: readonly Point[], width: number, height: number, visit: (x: number, y: number) => void): void {
  const eps = 1e-6
  const ys = poly.map(p => p.y)
  const y0 = Math.max(0, Math.ceil(Math.min(...ys) - eps))
  const y1 = Math.min(height - 1, Math.floor(Math.max(...ys) + eps))
  for (let y = y0; y <= y1; y++) {
    let lo = Infinity
    let hi = -Infinity
    for (let i = 0; i < poly.length; i++) {
      const a = poly[i]
      const b = poly[(i + 1) % poly.length]
      if (Math.min(a.y, b.y) - eps > y || Math.max(a.y, b.y) + eps < y) continue
      const t = Math.min(Math.max((y - a.y) / (b.y - a.y), 0), 1)
      const xs = Math.abs(b.y - a.y) < eps ? [a.x, b.x] : [a.x + t * (b.x - a.x)]
      for (const x of xs) {
        lo = Math.min(lo, x)
        hi = Math.max(hi, x)
      }
    }
    const x0 = Math.max(0, Math.ceil(lo - eps))
    const x1 = Math.min(width - 1, Math.floor(hi + eps))
    for (let x = x0; x <= x1; x++) visit(x, y)
  }
}

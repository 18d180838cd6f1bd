// Draws the app icons for the PWA manifest and writes them as PNG with plain Node (no image libraries).
//
//   npx tsx scripts/make-icons.ts
//
// Writes public/icons/icon-192.png, icon-512.png and icon-maskable-512.png. The motif is a small
// peer-to-peer mesh: three sky-blue peers around a larger hub, every node joined to every other,
// on a dark navy rounded square. Shapes are tested analytically at SS×SS sample points per pixel
// (supersampling gives the anti-aliasing). Deterministic: no randomness, fixed zlib settings, so two
// runs produce byte-identical files.
//
// The maskable variant fills the whole square (the launcher applies its own mask) and scales the
// motif by 0.8 so it stays inside the 80 % safe zone (a circle of radius 0.4 × size).

import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { deflateSync } from 'node:zlib'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const OUT_DIR = join(ROOT, 'public', 'icons')

type RGB = readonly [number, number, number]
const NAVY: RGB = [0x0b, 0x11, 0x20]
const SKY: RGB = [0x38, 0xbd, 0xf8]

/** Samples per pixel along each axis. */
const SS = 6

// --- Geometry, in units of the icon size (0..1), centred on (0.5, 0.5) ---------------------------

interface Circle { x: number, y: number, r: number }
interface Segment { ax: number, ay: number, bx: number, by: number }

const OUTER_RADIUS = 0.31 // distance of the three peers from the centre
const PEER_R = 0.068
const HUB_R = 0.084
const LINE_HALF_WIDTH = 0.0155
/** Navy gap drawn around each node so lines stop short of it. */
const GAP = 0.024
const LINE_ALPHA = 0.72
/** Corner radius of the rounded background (regular icons only). */
const CORNER = 0.225

interface Motif { scale: number, nodes: Circle[], segments: Segment[] }

function motif (scale: number): Motif {
  const c = 0.5
  // Equilateral triangle, one peer at the top; its centroid sits slightly below the geometric centre
  // so the drawing is balanced vertically (the top peer reaches further than the bottom edge).
  const cy = c + 0.05 * scale
  const peers: Circle[] = [-90, 30, 150].map(deg => {
    const a = (deg * Math.PI) / 180
    return { x: c + Math.cos(a) * OUTER_RADIUS * scale, y: cy + Math.sin(a) * OUTER_RADIUS * scale, r: PEER_R * scale }
  })
  const hub: Circle = { x: c, y: cy, r: HUB_R * scale }
  const nodes = [hub, ...peers]
  const segments: Segment[] = []
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      segments.push({ ax: nodes[i].x, ay: nodes[i].y, bx: nodes[j].x, by: nodes[j].y })
    }
  }
  return { scale, nodes, segments }
}

function segmentDistance (px: number, py: number, s: Segment): number {
  const dx = s.bx - s.ax
  const dy = s.by - s.ay
  const t = Math.max(0, Math.min(1, ((px - s.ax) * dx + (py - s.ay) * dy) / (dx * dx + dy * dy)))
  return Math.hypot(px - (s.ax + t * dx), py - (s.ay + t * dy))
}

/** Inside a square of side 1 with rounded corners of radius r. */
function insideRoundedSquare (x: number, y: number, r: number): boolean {
  if (x < 0 || x > 1 || y < 0 || y > 1) return false
  const qx = Math.max(r - x, x - (1 - r), 0)
  const qy = Math.max(r - y, y - (1 - r), 0)
  return qx * qx + qy * qy <= r * r
}

/** Colour and alpha (straight, 0..1 channels) at one sample point. */
function sample (x: number, y: number, m: Motif, fullBleed: boolean): [number, number, number, number] {
  if (!fullBleed && !insideRoundedSquare(x, y, CORNER)) return [0, 0, 0, 0]
  let nearGap = false
  for (const n of m.nodes) {
    const d = Math.hypot(x - n.x, y - n.y)
    if (d <= n.r) return [SKY[0] / 255, SKY[1] / 255, SKY[2] / 255, 1]
    if (d <= n.r + GAP * m.scale) nearGap = true
  }
  const navy: [number, number, number, number] = [NAVY[0] / 255, NAVY[1] / 255, NAVY[2] / 255, 1]
  if (nearGap) return navy
  for (const s of m.segments) {
    if (segmentDistance(x, y, s) <= LINE_HALF_WIDTH * m.scale) {
      return [
        navy[0] + (SKY[0] / 255 - navy[0]) * LINE_ALPHA,
        navy[1] + (SKY[1] / 255 - navy[1]) * LINE_ALPHA,
        navy[2] + (SKY[2] / 255 - navy[2]) * LINE_ALPHA,
        1
      ]
    }
  }
  return navy
}

/** Renders an RGBA image (straight alpha), `size`×`size`. */
export function renderIcon (size: number, maskable: boolean): Uint8Array {
  const m = motif(maskable ? 0.8 : 1)
  const rgba = new Uint8Array(size * size * 4)
  const n = SS * SS
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      // Accumulate premultiplied colour, so transparent corner samples do not darken the edge.
      let r = 0; let g = 0; let b = 0; let a = 0
      for (let sy = 0; sy < SS; sy++) {
        for (let sx = 0; sx < SS; sx++) {
          const [cr, cg, cb, ca] = sample((px + (sx + 0.5) / SS) / size, (py + (sy + 0.5) / SS) / size, m, maskable)
          r += cr * ca; g += cg * ca; b += cb * ca; a += ca
        }
      }
      const o = (py * size + px) * 4
      if (a > 0) {
        rgba[o] = Math.round((r / a) * 255)
        rgba[o + 1] = Math.round((g / a) * 255)
        rgba[o + 2] = Math.round((b / a) * 255)
      }
      rgba[o + 3] = Math.round((a / n) * 255)
    }
  }
  return rgba
}

// --- PNG encoding --------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

export function crc32 (bytes: Uint8Array): number {
  let c = 0xffffffff
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function chunk (type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length)
  out.writeUInt32BE(data.length, 0)
  out.write(type, 4, 'latin1')
  out.set(data, 8)
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length)
  return out
}

/** Encodes 8-bit RGBA pixels as a PNG (colour type 6, no interlace). */
export function encodePng (width: number, height: number, rgba: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 6 // colour type: RGBA
  ihdr[10] = 0 // compression
  ihdr[11] = 0 // filter method
  ihdr[12] = 0 // interlace: none
  // Each scanline gets filter type 1 (Sub): flat areas become runs of zeros that deflate well.
  const stride = width * 4
  const raw = Buffer.alloc((stride + 1) * height)
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1)
    raw[o] = 1
    for (let i = 0; i < stride; i++) {
      const left = i >= 4 ? rgba[y * stride + i - 4] : 0
      raw[o + 1 + i] = (rgba[y * stride + i] - left) & 0xff
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array(0))
  ])
}

// --- Main ----------------------------------------------------------------------------------------

const ICONS = [
  { file: 'icon-192.png', size: 192, maskable: false },
  { file: 'icon-512.png', size: 512, maskable: false },
  { file: 'icon-maskable-512.png', size: 512, maskable: true }
]

if (process.argv[1] != null && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  mkdirSync(OUT_DIR, { recursive: true })
  for (const icon of ICONS) {
    const png = encodePng(icon.size, icon.size, renderIcon(icon.size, icon.maskable))
    const path = join(OUT_DIR, icon.file)
    writeFileSync(path, png)
    console.log(`wrote ${relative(ROOT, path)} (${icon.size}×${icon.size}, ${png.length} bytes)`)
  }
}

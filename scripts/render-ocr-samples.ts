// Renders the OCR sample images with headless Chromium: text drawn into a canvas with the system's
// Liberation / DejaVu fonts, saved as PNG.
//
//   node --import tsx scripts/render-ocr-samples.ts
//
// Writes public/samples/ocr/<name>.png and samples.json ([{ file, title, lines }]), both committed.
// A sample's lines are its rows in reading order; pieces of text drawn apart on one row (a price
// right-aligned after its item) count as one line, joined by a single space, which is how the OCR
// pipeline assembles a row (src/ocr/pipeline.ts assembleText).

import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { launchChromium } from '../src/node/chromium.js'

const OUT_DIR = fileURLToPath(new URL('../public/samples/ocr/', import.meta.url))

interface Piece {
  text: string
  x: number
  y: number
  font: string
  align?: 'left' | 'right' | 'center'
}

interface Shape {
  x: number
  y: number
  w: number
  h: number
  fill?: string
  stroke?: string
  radius?: number
}

interface Sample {
  name: string
  title: string
  width: number
  height: number
  background: string
  ink: string
  /** Degrees, clockwise, about the centre; applies to shapes and text. */
  rotate?: number
  shapes: Shape[]
  rows: Piece[][]
}

/** One piece per row, left-aligned, rows `lead` apart from baseline y0. */
function column (lines: string[], x: number, y0: number, lead: number, font: string): Piece[][] {
  return lines.map((text, i) => [{ text, x, y: y0 + i * lead, font }])
}

const documentSample: Sample = {
  name: 'document',
  title: 'Document paragraph',
  width: 760,
  height: 330,
  ink: '#1d1f23',
  background: '#fbfaf7',
  shapes: [],
  rows: [
    [{ text: 'Meeting notes, March 14', x: 40, y: 62, font: 'bold 30px "Liberation Sans"' }],
    ...column([
      'The quarterly review moves to Thursday at 10:30.',
      'Please send your updated figures to the finance',
      'team before noon on Wednesday. Room 4B is booked',
      'for two hours and has a projector and a whiteboard.',
      'Questions? Contact Dana Smith at extension 2291.'
    ], 40, 122, 44, '24px "Liberation Serif"')
  ]
}

/** A receipt row: item on the left, amount right-aligned. */
function item (name: string, amount: string, y: number, font = '22px "DejaVu Sans Mono"'): Piece[] {
  return [{ text: name, x: 36, y, font }, { text: amount, x: 424, y, font, align: 'right' }]
}

const receiptSample: Sample = {
  name: 'receipt',
  title: 'Cafe receipt',
  width: 460,
  height: 560,
  ink: '#1d1f23',
  background: '#ffffff',
  shapes: [
    { x: 36, y: 160, w: 388, h: 2, fill: '#9a9a9a' },
    { x: 36, y: 366, w: 388, h: 2, fill: '#9a9a9a' }
  ],
  rows: [
    [{ text: 'CORNER CAFE', x: 230, y: 58, font: 'bold 30px "DejaVu Sans Mono"', align: 'center' }],
    [{ text: '12 Market Street', x: 230, y: 98, font: '20px "DejaVu Sans Mono"', align: 'center' }],
    [{ text: '2025-03-14 08:42', x: 230, y: 134, font: '20px "DejaVu Sans Mono"', align: 'center' }],
    item('Cappuccino', '4.20', 204),
    item('Blueberry muffin', '3.10', 244),
    item('Orange juice', '3.80', 284),
    item('Croissant', '2.60', 324),
    item('Subtotal', '13.70', 408),
    item('Tax 8%', '1.10', 446),
    item('TOTAL', '14.80', 490, 'bold 24px "DejaVu Sans Mono"'),
    [{ text: 'Thank you!', x: 230, y: 536, font: '20px "DejaVu Sans Mono"', align: 'center' }]
  ]
}

const FIELD = '22px "DejaVu Sans"'

const settingsSample: Sample = {
  name: 'settings',
  title: 'Settings dialog',
  width: 640,
  height: 400,
  ink: '#1d1f23',
  background: '#eef1f5',
  shapes: [
    { x: 20, y: 20, w: 600, h: 360, fill: '#ffffff', stroke: '#c9d0da', radius: 10 },
    { x: 20, y: 20, w: 600, h: 64, fill: '#f6f8fa', radius: 10 },
    { x: 230, y: 110, w: 360, h: 44, fill: '#ffffff', stroke: '#aab4c0', radius: 6 },
    { x: 230, y: 174, w: 360, h: 44, fill: '#ffffff', stroke: '#aab4c0', radius: 6 },
    { x: 230, y: 238, w: 360, h: 44, fill: '#ffffff', stroke: '#aab4c0', radius: 6 },
    { x: 300, y: 312, w: 120, h: 46, fill: '#f1f3f5', stroke: '#aab4c0', radius: 6 },
    { x: 440, y: 312, w: 150, h: 46, fill: '#dbe8ff', stroke: '#6b8fd6', radius: 6 }
  ],
  rows: [
    [{ text: 'Account settings', x: 50, y: 62, font: 'bold 26px "DejaVu Sans"' }],
    [{ text: 'Display name', x: 50, y: 140, font: FIELD }, { text: 'Alex Morgan', x: 246, y: 140, font: FIELD }],
    [{ text: 'Email', x: 50, y: 204, font: FIELD }, { text: 'alex.morgan@example.com', x: 246, y: 204, font: FIELD }],
    [{ text: 'Time zone', x: 50, y: 268, font: FIELD }, { text: 'UTC+01:00 Berlin', x: 246, y: 268, font: FIELD }],
    [{ text: 'Cancel', x: 360, y: 343, font: FIELD, align: 'center' }, { text: 'Save', x: 515, y: 343, font: FIELD, align: 'center' }]
  ]
}

const noteSample: Sample = {
  name: 'note',
  title: 'Rotated sticky note',
  width: 560,
  height: 380,
  ink: '#1d1f23',
  background: '#e9e6df',
  rotate: -4,
  shapes: [{ x: 60, y: 40, w: 440, h: 300, fill: '#fff5b0' }],
  rows: [
    [{ text: 'To do this week', x: 90, y: 100, font: 'bold 30px "Liberation Sans"' }],
    ...column([
      'Pick up the dry cleaning',
      'Call the dentist at 3pm',
      'Buy milk, eggs and coffee',
      'Pay the rent by Friday'
    ], 90, 156, 46, '26px "Liberation Sans"')
  ]
}

const SAMPLES = [documentSample, receiptSample, settingsSample, noteSample]

/** Runs in the page (nothing from this module is in scope there): draws a sample, returns its PNG as a data: URL. */
function draw (s: Sample): string {
  const canvas = document.createElement('canvas')
  canvas.width = s.width
  canvas.height = s.height
  const ctx = canvas.getContext('2d')
  if (ctx == null) throw new Error('no 2d canvas')
  ctx.fillStyle = s.background
  ctx.fillRect(0, 0, s.width, s.height)
  ctx.translate(s.width / 2, s.height / 2)
  ctx.rotate((s.rotate ?? 0) * Math.PI / 180)
  ctx.translate(-s.width / 2, -s.height / 2)
  for (const shape of s.shapes) {
    ctx.beginPath()
    ctx.roundRect(shape.x, shape.y, shape.w, shape.h, shape.radius ?? 0)
    if (shape.fill != null) {
      ctx.fillStyle = shape.fill
      ctx.fill()
    }
    if (shape.stroke != null) {
      ctx.strokeStyle = shape.stroke
      ctx.lineWidth = 1.5
      ctx.stroke()
    }
  }
  for (const piece of s.rows.flat()) {
    ctx.font = piece.font
    ctx.textAlign = piece.align ?? 'left'
    ctx.textBaseline = 'alphabetic'
    ctx.fillStyle = s.ink
    ctx.fillText(piece.text, piece.x, piece.y)
  }
  return canvas.toDataURL('image/png')
}

mkdirSync(OUT_DIR, { recursive: true })
const browser = await launchChromium()
try {
  const page = await browser.newPage()
  // Wait for the faces the samples use: canvas text silently falls back to another font otherwise.
  await page.setContent('<p style="font-family: Liberation Sans">a</p><p style="font-family: Liberation Serif">a</p><p style="font-family: DejaVu Sans">a</p><p style="font-family: DejaVu Sans Mono">a</p>')
  await page.evaluate(async () => { await document.fonts.ready })
  const index = []
  for (const sample of SAMPLES) {
    const url = await page.evaluate(draw, sample)
    const png = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64')
    const file = `${sample.name}.png`
    writeFileSync(OUT_DIR + file, png)
    const lines = sample.rows.map(row => row.map(p => p.text).join(' '))
    index.push({ file, title: sample.title, lines })
    console.log(`public/samples/ocr/${file}: ${sample.width}x${sample.height}, ${png.byteLength} bytes, ${lines.length} lines`)
  }
  writeFileSync(OUT_DIR + 'samples.json', JSON.stringify(index, null, 2) + '\n')
} finally {
  await browser.close()
}

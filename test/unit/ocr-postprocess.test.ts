/** OCR pre- and post-processing on synthetic data: no model involved. */
import { describe, expect, it } from 'vitest'
import { toTypedArray } from '../../src/core/tensor.js'
import { detBoxes, detInput } from '../../src/ocr/detect.js'
import { convexHull, minAreaRect } from '../../src/ocr/geometry.js'
import type { Quad } from '../../src/ocr/geometry.js'
import type { Point, RgbaImage } from '../../src/ocr/image.js'
import { assembleText, recognizeBatches } from '../../src/ocr/pipeline.js'
import { ctcDecode, cropBox, parseDictionary, recInput } from '../../src/ocr/recognize.js'

/** A probability map with `value` at every pixel centre inside the given rotated rectangles. */
function probMap (width: number, height: number, rects: Array<{ cx: number, cy: number, w: number, h: number, deg?: number, value?: number }>): Float32Array {
  const prob = new Float32Array(width * height)
  for (const r of rects) {
    const a = (r.deg ?? 0) * Math.PI / 180
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const u = (x - r.cx) * Math.cos(a) + (y - r.cy) * Math.sin(a)
        const v = -(x - r.cx) * Math.sin(a) + (y - r.cy) * Math.cos(a)
        if (Math.abs(u) <= r.w / 2 && Math.abs(v) <= r.h / 2) prob[y * width + x] = r.value ?? 1
      }
    }
  }
  return prob
}

const plain = { dilate: false, unclipRatio: 1.5 }

function solid (width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      data.set([...rgb(x, y), 255], (y * width + x) * 4)
    }
  }
  return { width, height, data }
}

const xs = (q: Quad): number[] => q.map(p => p.x)
const ys = (q: Quad): number[] => q.map(p => p.y)

describe('detBoxes', () => {
  it('finds an axis-aligned line and grows it by area × ratio / perimeter', () => {
    // Pixels x 40..159, y 40..49: the rectangle through their centres is 119 × 9.
    const prob = probMap(200, 100, [{ cx: 99.5, cy: 44.5, w: 119, h: 9 }])
    const [box, ...rest] = detBoxes(prob, 200, 100, plain)
    expect(rest).toHaveLength(0)
    const d = 119 * 9 * 1.5 / (2 * (119 + 9))
    expect(box.score).toBeCloseTo(1)
    const want = [[40 - d, 40 - d], [159 + d, 40 - d], [159 + d, 49 + d], [40 - d, 49 + d]]
    box.points.forEach((p, i) => {
      expect(p.x).toBeCloseTo(want[i][0], 6)
      expect(p.y).toBeCloseTo(want[i][1], 6)
    })
  })

  it('maps boxes to original image coordinates and clips them to the image', () => {
    const prob = probMap(200, 100, [{ cx: 99.5, cy: 5, w: 119, h: 6 }])
    const [box] = detBoxes(prob, 200, 100, { ...plain, scaleX: 2, scaleY: 3 })
    expect(Math.min(...ys(box.points))).toBe(0)
    expect(Math.min(...xs(box.points))).toBeCloseTo((40 - 119 * 6 * 1.5 / (2 * 125)) * 2, 6)
  })

  it('follows a rotated line', () => {
    const prob = probMap(240, 160, [{ cx: 120, cy: 80, w: 150, h: 12, deg: 20 }])
    const [box, ...rest] = detBoxes(prob, 240, 160, plain)
    expect(rest).toHaveLength(0)
    const [tl, tr, br, bl] = box.points
    expect(Math.atan2(tr.y - tl.y, tr.x - tl.x) * 180 / Math.PI).toBeCloseTo(20, 0)
    expect(Math.atan2(br.y - bl.y, br.x - bl.x) * 180 / Math.PI).toBeCloseTo(20, 0)
    const width = Math.hypot(tr.x - tl.x, tr.y - tl.y)
    const height = Math.hypot(bl.x - tl.x, bl.y - tl.y)
    // The pixel region is ~150 × 12 minus up to a pixel per side; unclip then adds ~8.2 per side.
    expect(width).toBeGreaterThan(162)
    expect(width).toBeLessThan(168)
    expect(height).toBeGreaterThan(24)
    expect(height).toBeLessThan(30)
  })

  it('returns separate lines top to bottom and words of one line left to right', () => {
    const prob = probMap(300, 200, [
      { cx: 220, cy: 131, w: 60, h: 10 }, // second line, right word, slightly higher than its neighbour
      { cx: 150, cy: 40, w: 200, h: 10 },
      { cx: 80, cy: 133, w: 80, h: 10 }
    ])
    const boxes = detBoxes(prob, 300, 200, plain)
    expect(boxes.map(b => Math.round(xs(b.points).reduce((a, b) => a + b) / 4))).toEqual([150, 80, 220])
  })

  it('ignores probabilities below the threshold, weak boxes and specks', () => {
    const noise = new Float32Array(100 * 80).map((_, i) => (i * 7919 % 97) / 97 * 0.29)
    expect(detBoxes(noise, 100, 80)).toEqual([])
    // Above thresh but with a mean of 0.45 < boxThresh.
    expect(detBoxes(probMap(100, 80, [{ cx: 50, cy: 40, w: 60, h: 10, value: 0.45 }]), 100, 80)).toEqual([])
    expect(detBoxes(probMap(100, 80, [{ cx: 50, cy: 40, w: 1, h: 1 }]), 100, 80)).toEqual([])
  })

  it('bounds the work: at most maxCandidates regions, maps of sane size only', () => {
    const dots = probMap(100, 100, Array.from({ length: 25 }, (_, i) => ({ cx: 10 + (i % 5) * 20, cy: 10 + Math.floor(i / 5) * 20, w: 12, h: 6 })))
    expect(detBoxes(dots, 100, 100, plain)).toHaveLength(25)
    expect(detBoxes(dots, 100, 100, { ...plain, maxCandidates: 7 })).toHaveLength(7)
    expect(() => detBoxes(new Float32Array(10), 5, 3)).toThrow(/needs 15/)
    expect(() => detBoxes(new Float32Array(0), 5000, 5000)).toThrow(/larger than/)
  })

  it('dilation grows the mask toward the right and bottom', () => {
    const prob = probMap(200, 100, [{ cx: 99.5, cy: 44.5, w: 119, h: 9 }])
    const [box] = detBoxes(prob, 200, 100, { dilate: true, unclipRatio: 0 })
    expect(box.points[0]).toEqual({ x: 40, y: 40 })
    expect(box.points[2]).toEqual({ x: 160, y: 50 })
  })
})

describe('minAreaRect', () => {
  it('recovers a rotated rectangle from its corners and inner points', () => {
    const a = 33 * Math.PI / 180
    const at = (u: number, v: number): Point => ({ x: 50 + u * Math.cos(a) - v * Math.sin(a), y: 40 + u * Math.sin(a) + v * Math.cos(a) })
    const points = [at(-30, -5), at(30, -5), at(30, 5), at(-30, 5), at(0, 0), at(10, 2), at(-20, -4), at(29, 4.9)]
    const r = minAreaRect(points)
    expect(r.width).toBeCloseTo(60, 9)
    expect(r.height).toBeCloseTo(10, 9)
    expect(r.cx).toBeCloseTo(50, 9)
    expect(r.cy).toBeCloseTo(40, 9)
    expect(Math.atan2(r.uy, r.ux)).toBeCloseTo(a, 9)
  })

  it('is no larger than any rectangle found by a brute-force angle scan', () => {
    let seed = 1
    const rnd = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647
    for (let trial = 0; trial < 20; trial++) {
      const points = Array.from({ length: 30 }, () => ({ x: rnd() * 100, y: rnd() * 40 + rnd() * 30 }))
      const r = minAreaRect(points)
      let brute = Infinity
      for (let deg = 0; deg < 90; deg += 0.05) {
        const c = Math.cos(deg * Math.PI / 180)
        const s = Math.sin(deg * Math.PI / 180)
        const us = points.map(p => p.x * c + p.y * s)
        const vs = points.map(p => -p.x * s + p.y * c)
        brute = Math.min(brute, (Math.max(...us) - Math.min(...us)) * (Math.max(...vs) - Math.min(...vs)))
      }
      expect(r.width * r.height).toBeLessThanOrEqual(brute + 1e-9)
      expect(r.width * r.height).toBeGreaterThan(brute * 0.99)
    }
  })

  it('handles degenerate inputs: collinear points and a single point', () => {
    expect(convexHull([{ x: 0, y: 0 }, { x: 1, y: 1 }, { x: 2, y: 2 }])).toHaveLength(2)
    const line = minAreaRect([{ x: 0, y: 0 }, { x: 3, y: 4 }, { x: 6, y: 8 }])
    expect(Math.max(line.width, line.height)).toBeCloseTo(10, 9)
    expect(Math.min(line.width, line.height)).toBeCloseTo(0, 9)
    expect(minAreaRect([{ x: 5, y: 6 }])).toMatchObject({ cx: 5, cy: 6, width: 0, height: 0 })
  })
})

describe('ctcDecode and parseDictionary', () => {
  const dict = parseDictionary('a\nb\nc\n')
  /** One-hot-ish steps: the named class gets p, the rest share what is left. */
  function steps (seq: Array<[string, number]>): Float32Array {
    const out = new Float32Array(seq.length * dict.length)
    seq.forEach(([ch, p], t) => {
      const cls = ch === '-' ? 0 : dict.indexOf(ch, 1)
      for (let c = 0; c < dict.length; c++) out[t * dict.length + c] = c === cls ? p : (1 - p) / (dict.length - 1)
    })
    return out
  }

  it('reads the key file as blank, its lines, then space', () => {
    expect(dict).toEqual(['', 'a', 'b', 'c', ' '])
    expect(parseDictionary('x\r\ny')).toEqual(['', 'x', 'y', ' '])
  })

  it('collapses repeats, keeps letters split by a blank, drops blanks, keeps spaces', () => {
    const seq: Array<[string, number]> = [['a', 0.9], ['a', 0.8], ['-', 0.9], ['a', 0.7], ['b', 0.6], ['b', 0.9], [' ', 0.8], ['-', 0.5], ['c', 0.5], ['-', 0.9]]
    const [r] = ctcDecode(steps(seq), [1, seq.length, dict.length], dict)
    expect(r.text).toBe('aab c')
    // The first step of each kept run counts: a 0.9, a 0.7, b 0.6, ' ' 0.8, c 0.5.
    expect(r.score).toBeCloseTo((0.9 + 0.7 + 0.6 + 0.8 + 0.5) / 5, 6)
  })

  it('decodes a batch and gives empty text a zero score', () => {
    const two = new Float32Array([...steps([['c', 0.9], ['-', 0.9]]), ...steps([['-', 0.9], ['-', 0.9]])])
    expect(ctcDecode(two, [2, 2, 5], dict)).toEqual([{ text: 'c', score: expect.closeTo(0.9, 6) }, { text: '', score: 0 }])
  })

  it('rejects outputs that do not fit the dictionary', () => {
    expect(() => ctcDecode(new Float32Array(12), [1, 2, 6], dict)).toThrow(/6 classes/)
    expect(() => ctcDecode(new Float32Array(9), [1, 2, 5], dict)).toThrow(/needs 10/)
  })
})

describe('recInput', () => {
  it('resizes to height 48 keeping aspect ratio and zero-pads to the widest crop', () => {
    const white = solid(100, 20, () => [255, 255, 255])
    const black = solid(30, 30, () => [0, 0, 0])
    const t = recInput([white, black])
    expect(t.name).toBe('x')
    expect(t.dims).toEqual([2, 3, 48, 240])
    const x = toTypedArray(t) as Float32Array
    const at = (n: number, c: number, y: number, col: number): number => x[((n * 3 + c) * 48 + y) * 240 + col]
    expect(at(0, 0, 10, 239)).toBe(1)
    expect(at(1, 2, 47, 47)).toBe(-1)
    expect(at(1, 1, 20, 48)).toBe(0)
    expect(at(1, 1, 20, 239)).toBe(0)
  })

  it('rounds the width up to whole CTC steps, at least 48, and squeezes lines wider than maxWidth', () => {
    expect(recInput([solid(50, 48, () => [9, 9, 9])]).dims).toEqual([1, 3, 48, 56])
    expect(recInput([solid(5, 48, () => [9, 9, 9])]).dims).toEqual([1, 3, 48, 48])
    const wide = recInput([solid(1000, 10, () => [255, 255, 255])], { maxWidth: 320 })
    expect(wide.dims).toEqual([1, 3, 48, 320])
    expect((toTypedArray(wide) as Float32Array).every(v => v === 1)).toBe(true)
  })
})

describe('detInput', () => {
  it('limits the longest side and rounds both sides to multiples of 32', () => {
    const sizes = (w: number, h: number, maxSide?: number): number[] => {
      const d = detInput(solid(w, h, () => [255, 255, 255]), { maxSide })
      expect(d.tensor.dims).toEqual([1, 3, d.height, d.width])
      expect(d.scaleX).toBeCloseTo(w / d.width, 9)
      return [d.width, d.height]
    }
    expect(sizes(1000, 500)).toEqual([960, 480])
    expect(sizes(1000, 1500, 640)).toEqual([416, 640])
    expect(sizes(100, 50)).toEqual([96, 64])
    expect(sizes(33, 10)).toEqual([32, 32])
    expect(sizes(1010, 100, 1010)).toEqual([992, 96])
  })

  it('normalises with ImageNet mean and std in B, G, R channel order', () => {
    const d = detInput(solid(64, 32, () => [255, 0, 0]))
    const x = toTypedArray(d.tensor) as Float32Array
    const plane = 64 * 32
    expect(x[0]).toBeCloseTo((0 - 0.485) / 0.229, 5)
    expect(x[plane]).toBeCloseTo((0 - 0.456) / 0.224, 5)
    expect(x[2 * plane]).toBeCloseTo((1 - 0.406) / 0.225, 5)
  })
})

describe('cropBox', () => {
  it('cuts a rotated box out level', () => {
    // Red inside a 20° rotated 60 × 16 band, white elsewhere.
    const a = 20 * Math.PI / 180
    const img = solid(120, 90, (x, y) => {
      const u = (x - 60) * Math.cos(a) + (y - 45) * Math.sin(a)
      const v = -(x - 60) * Math.sin(a) + (y - 45) * Math.cos(a)
      return Math.abs(u) <= 30 && Math.abs(v) <= 8 ? [255, 0, 0] : [255, 255, 255]
    })
    const at = (u: number, v: number): Point => ({ x: 60 + u * Math.cos(a) - v * Math.sin(a), y: 45 + u * Math.sin(a) + v * Math.cos(a) })
    const crop = cropBox(img, [at(-28, -6), at(28, -6), at(28, 6), at(-28, 6)])
    expect([crop.width, crop.height]).toEqual([56, 12])
    for (let i = 0; i < crop.width * crop.height; i++) expect(crop.data[i * 4 + 1]).toBeLessThan(60)
  })

  it('turns a tall crop 90° counter-clockwise, so its top ends up on the left', () => {
    const img = solid(10, 40, (_, y) => y < 20 ? [255, 0, 0] : [0, 0, 255])
    const crop = cropBox(img, [{ x: 0, y: 0 }, { x: 9, y: 0 }, { x: 9, y: 39 }, { x: 0, y: 39 }])
    expect([crop.width, crop.height]).toEqual([39, 9])
    expect(Array.from(crop.data.subarray(0, 4))).toEqual([255, 0, 0, 255])
    expect(Array.from(crop.data.subarray((crop.width - 1) * 4, crop.width * 4))).toEqual([0, 0, 255, 255])
  })
})

describe('batches and text assembly', () => {
  it('groups crops of similar shape into batches that cover every crop once', () => {
    const crops = [solid(200, 20, () => [0, 0, 0]), solid(20, 20, () => [0, 0, 0]), solid(190, 20, () => [0, 0, 0]), solid(30, 20, () => [0, 0, 0])]
    const batches = recognizeBatches(crops, 2)
    expect(batches.map(b => b.indices)).toEqual([[1, 3], [2, 0]])
    expect(batches.map(b => b.tensor.dims)).toEqual([[2, 3, 48, 72], [2, 3, 48, 480]])
    expect(() => recognizeBatches(crops, 0)).toThrow(/batch size/)
  })

  it('joins boxes of a row with a space and rows with newlines, also on a slightly rotated page', () => {
    const a = 4 * Math.PI / 180
    const box = (x: number, y: number, w: number): Quad => {
      const p = (u: number, v: number): Point => ({ x: (x + u) * Math.cos(a) - (y + v) * Math.sin(a), y: (x + u) * Math.sin(a) + (y + v) * Math.cos(a) })
      return [p(0, 0), p(w, 0), p(w, 30), p(0, 30)]
    }
    const lines = [
      { box: box(400, 100, 80), text: 'right', score: 1 },
      { box: box(0, 140, 300), text: 'second row', score: 1 },
      { box: box(0, 100, 200), text: 'left ', score: 1 }
    ]
    expect(assembleText(lines)).toBe('left right\nsecond row')
  })
})

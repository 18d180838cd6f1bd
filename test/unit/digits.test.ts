import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { describe, it, expect } from 'vitest';
import {
  DIGITS_INPUT,
  DIGITS_OUTPUT_LOGITS,
  DIGITS_OUTPUT_PROBS,
  argmax,
  preprocessDrawing,
  softmax,
} from '../../src/models/digits.js';

const modelsDir = fileURLToPath(new URL('../../public/models/', import.meta.url));

interface MnistDigit {
  length: number;
  get(index: number): number[];
}
const mnist = createRequire(import.meta.url)('mnist') as MnistDigit[];

const W = 280, H = 280;

/** Draw a 28×28 MNIST digit (white on black) at `scale`× with its top-left at (ox, oy) on a black canvas. */
function canvasWithDigit(digit: number[], scale: number, ox: number, oy: number): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(W * H * 4);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255; // opaque black
  for (let y = 0; y < 28 * scale; y++) {
    for (let x = 0; x < 28 * scale; x++) {
      const v = Math.round(digit[((y / scale) | 0) * 28 + ((x / scale) | 0)]! * 255);
      const q = ((oy + y) * W + ox + x) * 4;
      rgba[q] = rgba[q + 1] = rgba[q + 2] = v;
    }
  }
  return rgba;
}

function centreOfMass(img: Float32Array): { x: number; y: number } {
  let m = 0, mx = 0, my = 0;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = img[y * 28 + x]!;
      m += v;
      mx += (x + 0.5) * v;
      my += (y + 0.5) * v;
    }
  }
  return { x: mx / m, y: my / m };
}

describe('preprocessDrawing', () => {
  it('returns 784 zeros for an empty canvas', () => {
    const black = canvasWithDigit(new Array(784).fill(0), 1, 0, 0);
    const transparent = new Uint8ClampedArray(W * H * 4);
    for (const rgba of [black, transparent]) {
      const out = preprocessDrawing(rgba, W, H);
      expect(out).toHaveLength(784);
      expect(out.every((v) => v === 0)).toBe(true);
    }
  });

  it('fits the ink into 20×20 and centres its mass at (14, 14), values in [0, 1]', () => {
    // A white 100×40 bar in the top-left corner.
    const rgba = canvasWithDigit(new Array(784).fill(0), 1, 0, 0);
    for (let y = 10; y < 50; y++) for (let x = 5; x < 105; x++) rgba.fill(255, (y * W + x) * 4, (y * W + x) * 4 + 3);
    const out = preprocessDrawing(rgba, W, H);
    const com = centreOfMass(out);
    expect(Math.abs(com.x - 14)).toBeLessThan(0.05);
    expect(Math.abs(com.y - 14)).toBeLessThan(0.05);
    let cols = 0, rows = 0;
    for (let i = 0; i < 28; i++) {
      if (out.subarray(i * 28, i * 28 + 28).some((v) => v > 0)) rows++;
      if (out.some((v, j) => j % 28 === i && v > 0)) cols++;
    }
    expect(cols).toBe(20);
    expect(rows).toBe(8);
    expect(Math.max(...out)).toBe(1);
    expect(Math.min(...out)).toBe(0);
  });

  it('re-centres an off-centre 3× MNIST digit so the model still recognises it', async () => {
    // The last sample of every class: part of the held-out split (last 200 per class) the model never saw.
    const digits = Array.from({ length: 10 }, (_, d) => mnist[d]!.get(mnist[d]!.length - 1));
    const batch = new Float32Array(10 * 784);
    digits.forEach((digit, d) => {
      const ox = d % 2 === 0 ? 3 : 190; // 84×84 digit hugging the left or right edge
      const oy = d < 5 ? 5 : 190;
      const img = preprocessDrawing(canvasWithDigit(digit, 3, ox, oy), W, H);
      const com = centreOfMass(img);
      expect(Math.abs(com.x - 14), `digit ${d} x`).toBeLessThan(0.5);
      expect(Math.abs(com.y - 14), `digit ${d} y`).toBeLessThan(0.5);
      batch.set(img, d * 784);
    });

    const session = await ort.InferenceSession.create(`${modelsDir}digits.onnx`);
    try {
      const res = await session.run({ [DIGITS_INPUT]: new ort.Tensor('float32', batch, [10, 1, 28, 28]) });
      const logits = res[DIGITS_OUTPUT_LOGITS]!.data as Float32Array;
      const probs = res[DIGITS_OUTPUT_PROBS]!.data as Float32Array;
      const predicted = Array.from({ length: 10 }, (_, i) => argmax(probs.subarray(i * 10, i * 10 + 10)));
      expect(predicted).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (let i = 0; i < 10; i++) {
        const mine = softmax(logits.subarray(i * 10, i * 10 + 10));
        for (let k = 0; k < 10; k++) expect(mine[k]).toBeCloseTo(probs[i * 10 + k]!, 5);
      }
    } finally {
      await session.release();
    }
  });
});

describe('softmax / argmax', () => {
  it('softmax sums to 1, keeps the order and survives large logits', () => {
    for (const logits of [[1, 2, 3, 4], [0, 0, 0], [1000, 1001, 999], [-50, 20, 3.5, 0, 7]]) {
      const p = softmax(Float32Array.from(logits));
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      expect(p.every((v) => Number.isFinite(v) && v >= 0 && v <= 1)).toBe(true);
      expect(argmax(p)).toBe(argmax(logits));
    }
    expect(softmax(new Float32Array(0))).toHaveLength(0);
  });

  it('argmax picks the first maximum', () => {
    expect(argmax([0.1, 0.7, 0.2])).toBe(1);
    expect(argmax([3, 5, 5])).toBe(1);
    expect(argmax([-2, -1])).toBe(1);
    expect(argmax([])).toBe(-1);
  });
});

describe('public/models/digits.onnx', () => {
  it('matches the sha256 and size recorded in digits.json', () => {
    const meta = JSON.parse(readFileSync(`${modelsDir}digits.json`, 'utf8')) as {
      file: string;
      sha256: string;
      size: number;
      accuracy: number;
    };
    const bytes = readFileSync(`${modelsDir}${meta.file}`);
    expect(meta.file).toBe('digits.onnx');
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(meta.sha256);
    expect(bytes.length).toBe(meta.size);
    expect(meta.accuracy).toBeGreaterThanOrEqual(0.97);
  });
});

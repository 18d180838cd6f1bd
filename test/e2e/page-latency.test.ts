/**
 * The digit pad's Recognise button reads the drawing when it is pressed, so the reading and
 * preprocessing run while the button is held rather than between the click and the answer
 * (scripts/bench-ui.ts measures the latency; this checks the behaviour a user can tell apart).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { heldOutDigits } from '../../src/node/mnist.js'
import { openTab, paintDigit, readResult } from '../../src/node/page-driver.js'
import { argmax } from '../../src/models/digits.js'
import { referenceProbs, startE2E, stopE2E } from './helpers.js'
import type { E2E } from './helpers.js'
import type { Page } from 'playwright-core'
import type { ResultView } from '../../src/node/page-driver.js'

let e2e: E2E
let page: Page
const digits = heldOutDigits()

/** Two held-out digits the model tells apart. */
async function twoDifferent (): Promise<[Float32Array, Float32Array]> {
  const first = digits[0].pixels
  const firstClass = argmax(await referenceProbs(first))
  for (const d of digits.slice(1)) if (argmax(await referenceProbs(d.pixels)) !== firstClass) return [first, d.pixels]
  throw new Error('no two held-out digits with different predictions')
}

/** Runs `act` (which submits on this tab) and returns the result card it adds, once finished. */
async function resultOf (act: () => Promise<void>): Promise<ResultView> {
  const before = await page.evaluate(() => document.querySelector<HTMLElement>('[data-testid=result]')?.dataset.taskId ?? null)
  await act()
  await page.waitForFunction((id) => {
    const card = document.querySelector<HTMLElement>('[data-testid=result]')
    return card != null && card.dataset.taskId !== id && (card.dataset.status === 'done' || card.dataset.status === 'failed')
  }, before, { timeout: 30_000 })
  return await readResult(page)
}

function expectProbs (actual: number[] | undefined, expected: number[]): void {
  expect(actual).toHaveLength(expected.length)
  actual!.forEach((v, i) => { expect(Math.abs(v - expected[i]), `class ${i}`).toBeLessThanOrEqual(1e-4) })
}

describe('the digit pad under a press', () => {
  beforeAll(async () => {
    e2e = await startE2E()
    const context = await e2e.browser.newContext({ viewport: { width: 1280, height: 900 } })
    page = (await openTab(context, e2e.server.url)).page
    await page.locator('[data-testid=target-select]').selectOption('self')
  })

  afterAll(async () => { await stopE2E(e2e) })

  it('recognises what was on the pad when Recognise was pressed, and a keyboard press reads the pad then', async () => {
    const [pressed, later] = await twoDifferent()
    const button = (await page.locator('[data-testid=submit-digit]').boundingBox())!
    await paintDigit(page, pressed)
    const byPointer = await resultOf(async () => {
      await page.mouse.move(button.x + button.width / 2, button.y + button.height / 2)
      await page.mouse.down()
      // The pad changes while the button is held: the press already took the drawing.
      await paintDigit(page, later)
      await page.mouse.up()
    })
    expect(byPointer.status, byPointer.error).toBe('done')
    expectProbs(byPointer.probs, await referenceProbs(pressed))

    // Enter on the focused button: no press came first, so the pad is read as it is now.
    const byKeyboard = await resultOf(async () => {
      await page.locator('[data-testid=submit-digit]').focus()
      await page.keyboard.press('Enter')
    })
    expect(byKeyboard.status, byKeyboard.error).toBe('done')
    expectProbs(byKeyboard.probs, await referenceProbs(later))
  })
})

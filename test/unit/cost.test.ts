import { describe, expect, it } from 'vitest'
import { CostInputError, DEFAULT_MEMORY_GB, DEFAULT_PRICE_PER_GB_SECOND, cloudCost, describeCost, formatUsd } from '../../src/core/cost.js'

describe('cloudCost', () => {
  it('bills memory × seconds × price, with the documented Lambda defaults', () => {
    expect(DEFAULT_PRICE_PER_GB_SECOND).toBe(0.0000166667)
    expect(DEFAULT_MEMORY_GB).toBe(2)
    // 1000 s of inference at 2 GB = 2000 GB-s.
    const c = cloudCost(1_000_000)
    expect(c.gbSeconds).toBe(2000)
    expect(c.usd).toBeCloseTo(2000 * 0.0000166667, 12)
    expect(c.pricePerGbSecond).toBe(DEFAULT_PRICE_PER_GB_SECOND)
    expect(c.memoryGb).toBe(2)
  })

  it('takes a configured price and memory size', () => {
    const c = cloudCost(500, { pricePerGbSecond: 0.00002, memoryGb: 4 })
    expect(c.gbSeconds).toBe(2)
    expect(c.usd).toBeCloseTo(0.00004, 12)
    expect(cloudCost(0).usd).toBe(0)
  })

  it('refuses negative, infinite and non-numeric inputs rather than showing a wrong figure', () => {
    expect(() => cloudCost(-1)).toThrow(CostInputError)
    expect(() => cloudCost(Number.NaN)).toThrow(CostInputError)
    expect(() => cloudCost(10, { pricePerGbSecond: Number.POSITIVE_INFINITY })).toThrow(/pricePerGbSecond/)
    expect(() => cloudCost(10, { memoryGb: -2 })).toThrow(/memoryGb/)
  })
})

describe('formatUsd and describeCost', () => {
  it('keeps two significant digits for small sums and cents for large ones', () => {
    expect(formatUsd(0)).toBe('$0')
    expect(formatUsd(0.000333)).toBe('$0.00033')
    expect(formatUsd(0.0042)).toBe('$0.0042')
    expect(formatUsd(0.5)).toBe('$0.50')
    expect(formatUsd(12.345)).toBe('$12.35')
    expect(formatUsd(1e-9)).toBe('< $0.000001')
    expect(formatUsd(-1)).toBe('—')
  })

  it('states the assumptions next to the figure', () => {
    const text = describeCost(cloudCost(3000))
    expect(text).toMatch(/6\.0 GB-s at \$0\.0000166667 per GB-second with 2 GB/)
    expect(text).toMatch(/request charges/)
  })
})

/** A batch of digits: task inputs for each dataset image, and the summary and exports of the results. */
import { fromTypedArray, toTypedArray } from '../core/tensor.js'
import { argmax, DIGITS_INPUT, DIGITS_OUTPUT_PROBS } from './digits.js'
import type { DigitDataset } from './datasets.js'
import type { JobSource, StoredResult } from '../core/job-store.js'

export function digitJobSource (dataset: DigitDataset): JobSource {
  return {
    task: (index) => ({
      inputs: [fromTypedArray(DIGITS_INPUT, 'float32', [1, 1, 28, 28], dataset.pixels(index))],
      outputNames: [DIGITS_OUTPUT_PROBS]
    })
  }
}

export interface DigitPrediction {
  index: number
  label: number
  prediction: number
  confidence: number
  heldOut: boolean
  crossChecked: boolean
  agreedBy: string[]
}

export interface DigitJobSummary {
  count: number
  correct: number
  accuracy: number
  heldOutCount: number
  heldOutAccuracy: number
  crossChecked: number
}

/** One row per result, in input order. */
export function digitPredictions (results: StoredResult[], dataset: DigitDataset): DigitPrediction[] {
  return [...results].sort((a, b) => a.index - b.index).map(r => {
    const probs = toTypedArray(r.outputs.find(o => o.name === DIGITS_OUTPUT_PROBS)!) as Float32Array
    const prediction = argmax(probs)
    return {
      index: r.index,
      label: dataset.label(r.index),
      prediction,
      confidence: probs[prediction],
      heldOut: dataset.heldOut(r.index),
      crossChecked: r.crossChecked,
      agreedBy: r.agreedBy
    }
  })
}

export function summarizeDigits (rows: DigitPrediction[]): DigitJobSummary {
  const held = rows.filter(r => r.heldOut)
  const correct = rows.filter(r => r.prediction === r.label).length
  return {
    count: rows.length,
    correct,
    accuracy: rows.length > 0 ? correct / rows.length : 0,
    heldOutCount: held.length,
    heldOutAccuracy: held.length > 0 ? held.filter(r => r.prediction === r.label).length / held.length : 0,
    crossChecked: rows.filter(r => r.crossChecked).length
  }
}

export function digitsToCsv (rows: DigitPrediction[]): string {
  const lines = ['index,label,prediction,confidence,held_out,cross_checked,workers']
  for (const r of rows) lines.push(`${r.index},${r.label},${r.prediction},${r.confidence.toFixed(6)},${r.heldOut ? 1 : 0},${r.crossChecked ? 1 : 0},${r.agreedBy.join(' ')}`)
  return lines.join('\n') + '\n'
}

export function digitsToJson (rows: DigitPrediction[], summary: DigitJobSummary): string {
  return JSON.stringify({ summary, results: rows }, null, 2)
}

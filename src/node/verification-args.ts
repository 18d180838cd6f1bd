/** `--spot-check` and `--diversity` for the command-line requesters (submit, infer, ocr). */
import { DEFAULT_SPOT_CHECK } from '../core/verification.js'
import { DIVERSITY_MODES, isDiversityMode } from '../core/diversity.js'
import type { DiversityMode } from '../core/diversity.js'

export const VERIFICATION_OPTIONS = {
  'spot-check': { type: 'string', default: String(DEFAULT_SPOT_CHECK) },
  diversity: { type: 'string', default: 'standard' }
} as const

export const VERIFICATION_USAGE = `[--spot-check 0..1 (default ${DEFAULT_SPOT_CHECK})] [--diversity ${DIVERSITY_MODES.join('|')}]`

/** The flags, checked; `fail` gets a one-line reason. */
export function verificationArgs (values: { 'spot-check'?: string, diversity?: string }, fail: (message: string) => never): { spotCheck: number, diversity: DiversityMode } {
  const spotCheck = Number(values['spot-check'] ?? DEFAULT_SPOT_CHECK)
  if (!(spotCheck >= 0 && spotCheck <= 1)) fail(`--spot-check must be a share between 0 and 1, got "${values['spot-check']}"`)
  const diversity = values.diversity ?? 'standard'
  if (!isDiversityMode(diversity)) fail(`--diversity must be one of ${DIVERSITY_MODES.join(', ')}, got "${diversity}"`)
  return { spotCheck, diversity }
}

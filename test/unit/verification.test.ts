import { describe, expect, it } from 'vitest'
import { describeVerification } from '../../src/core/verification.js'

describe('describeVerification', () => {
  it('says what replicas, the diversity rule and spot checks mean for the job', () => {
    const text = describeVerification({ replicas: 2, adaptive: false, spotCheck: 0.05, diversity: 'standard' })
    expect(text).toMatch(/agree across 2 independent workers/)
    expect(text).toMatch(/one public host or \/24/)
    expect(text).toMatch(/5 % of results are recomputed on this machine/)
    expect(text).toMatch(/declared outputs/)
  })

  it('does not overstate a job with one replica and no spot checks', () => {
    const text = describeVerification({ replicas: 1, adaptive: false, spotCheck: 0, diversity: 'lan' })
    expect(text).toMatch(/one worker, unchecked by others/)
    expect(text).toMatch(/spot checks off/)
    expect(text).not.toMatch(/independent/)
  })

  it('names strict and LAN modes, adaptive replication and small shares', () => {
    expect(describeVerification({ replicas: 2, adaptive: false, spotCheck: 0.2, diversity: 'strict' })).toMatch(/reached through one relay/)
    expect(describeVerification({ replicas: 3, adaptive: false, spotCheck: 0.2, diversity: 'lan' })).toMatch(/LAN mode/)
    expect(describeVerification({ replicas: 1, adaptive: true, spotCheck: 0.005, diversity: 'standard' })).toMatch(/new workers are checked by 2 .*0\.5 % of results/)
  })
})

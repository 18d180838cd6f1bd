import { describe, expect, it } from 'vitest'
import { diversityGroups } from '../../src/core/diversity.js'

describe('diversityGroups', () => {
  it('groups a public IPv4 address by host and /24', () => {
    expect(diversityGroups({ ip: '203.0.113.7' })).toEqual(['host:203.0.113.7', 'net:203.0.113.0/24'])
    expect(diversityGroups({ ip: '203.0.113.9' })[1]).toBe('net:203.0.113.0/24')
  })

  it('groups a public IPv6 address by host and /48, whatever its spelling', () => {
    const a = diversityGroups({ ip: '2001:db8:abcd:1::5' })
    const b = diversityGroups({ ip: '2001:0db8:abcd:0001:0000:0000:0000:0005' })
    expect(a).toEqual(b)
    expect(a).toEqual(['host:2001:db8:abcd:1:0:0:0:5', 'net:2001:db8:abcd::/48'])
    expect(diversityGroups({ ip: '::ffff:203.0.113.7' })).toEqual(['host:203.0.113.7', 'net:203.0.113.0/24'])
  })

  it('gives private, loopback, link-local and unknown addresses no group', () => {
    for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.1.4', '172.20.0.1', '169.254.1.1', '::1', 'fe80::1', 'fd00::2', 'abc.local', 'not an ip', '1.2.3', '1:2::3::4']) {
      expect(diversityGroups({ ip })).toEqual([])
    }
    expect(diversityGroups({})).toEqual([])
  })

  it('adds the relay in strict mode, and nothing in lan mode', () => {
    expect(diversityGroups({ ip: '203.0.113.7', relay: 'R1' }, 'strict')).toEqual(['host:203.0.113.7', 'net:203.0.113.0/24', 'relay:R1'])
    expect(diversityGroups({ ip: '127.0.0.1', relay: 'R1' }, 'strict')).toEqual(['relay:R1'])
    expect(diversityGroups({ ip: 'abc.local', relay: 'R1' }, 'strict')).toEqual(['host:unknown', 'relay:R1'])
    expect(diversityGroups({ relay: 'R1' }, 'strict')).toEqual(['host:unknown', 'relay:R1'])
    expect(diversityGroups({ ip: '203.0.113.7', relay: 'R1' }, 'lan')).toEqual([])
  })
})

import { describe, expect, it } from 'vitest';
import { ParameterCount, PRE_AUTH_LIMITS, peerOf } from '../../../src/server/limits.js';

/** The pieces of the pre-authentication limits that the wire test (test/interop/wire-limits.test.ts) does not reach: IPv6 peers and chunked counting. */
describe('pre-authentication limits', () => {
  it('a peer is an IPv4 address (also IPv4-mapped) or an IPv6 /64', () => {
    expect(peerOf('127.0.0.2')).toBe('127.0.0.2');
    expect(peerOf('::ffff:127.0.0.2')).toBe('127.0.0.2');
    expect(peerOf('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(peerOf('2001:0db8:0001:0002:ffff:0:0:2')).toBe('2001:db8:1:2::/64');
    expect(peerOf('2001:db8:1:3::1')).not.toBe(peerOf('2001:db8:1:2::1'));
    expect(peerOf('::1')).toBe('0:0:0:0::/64');
    expect(peerOf('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('parameters are counted across the body chunks and the URL query together; one past the limit is InvalidParameterValue', () => {
    const max = PRE_AUTH_LIMITS.maxParameters;
    const body = Buffer.from(Array.from({ length: max - 1 }, (_, i) => `P${i}=v`).join('&'));
    const fill = () => {
      const c = new ParameterCount();
      c.query('Action=DescribeVolumes');
      // Chunks split anywhere, also right after an '&'.
      for (let at = 0; at < body.length; at += 7) c.body(body.subarray(at, at + 7));
      return c;
    };
    expect(() => fill()).not.toThrow();
    expect(() => fill().body(Buffer.from('&X=1'))).toThrow(
      expect.objectContaining({ name: 'InvalidParameterValue', message: expect.stringContaining(`more than ${max} parameters`) }),
    );
  });
});

import { describe, expect, it } from '@jest/globals';
import { endpointOf, hostPort } from './selector.js';

describe('hostPort', () => {
  it('writes IPv4 as ip:port and IPv6 in brackets, as URLs do', () => {
    expect(hostPort('10.0.0.1', 80)).toBe('10.0.0.1:80');
    expect(hostPort('fd00::1', 8080)).toBe('[fd00::1]:8080');
    expect(hostPort('::ffff:10.0.0.1', 5000)).toBe('[::ffff:10.0.0.1]:5000');
  });

  it('keeps what is known of a socket that has lost its peer', () => {
    expect(hostPort(undefined, undefined)).toBe(':');
  });

  it('names endpoints the same way', () => {
    expect(endpointOf('fd00::1', 8080).key).toBe('[fd00::1]:8080');
    expect(endpointOf('10.0.0.1', 80).key).toBe('10.0.0.1:80');
  });
});

import { canonicalIp, unmapIPv4 } from './ip.js';

describe('canonicalIp', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['FD00:0:0::0001', 'fd00::1'],
    ['fd00:10:244:1:0:0:0:11', 'fd00:10:244:1::11'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::FFFF:a00:1', '10.0.0.1'],
    ['::1', '::1'],
  ])('spells %j as %j', (input, expected) => {
    expect(canonicalIp(input)).toBe(expected);
  });

  it.each(['', 'web', '10.0.0', '10.0.0.256', 'fe80::1%eth0', 'fd00:::1'])('rejects %j', (input) => {
    expect(canonicalIp(input)).toBeUndefined();
  });
});

describe('unmapIPv4', () => {
  it('strips the IPv4-mapped prefix a dual-stack socket reports', () => {
    expect(unmapIPv4('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(unmapIPv4('::ffff:a00:1')).toBe('::ffff:a00:1');
    expect(unmapIPv4('10.0.0.1')).toBe('10.0.0.1');
  });
});

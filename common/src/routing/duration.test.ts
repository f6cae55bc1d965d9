import { formatGatewayDuration, parseGatewayDuration } from './duration.js';

describe('Gateway API durations (GEP-2257 test vectors)', () => {
  it.each([
    ['0h', 0],
    ['0s', 0],
    ['0h0m0s', 0],
    ['1h', 3_600_000],
    ['30m', 1_800_000],
    ['10s', 10_000],
    ['500ms', 500],
    ['2h30m', 9_000_000],
    ['150m', 9_000_000],
    ['7230s', 7_230_000],
    ['1h30m10s', 5_410_000],
    ['10s30m1h', 5_410_000],
    ['100ms200ms300ms', 600],
    ['01h', 3_600_000],
    ['00060m', 3_600_000],
    ['99999h', 99_999 * 3_600_000],
  ])('parses %s as %d ms', (text, ms) => {
    expect(parseGatewayDuration(text)).toBe(ms);
  });

  it.each([
    ['1', 'a missing unit'],
    ['1m1', 'a missing unit in the last component'],
    ['1d', 'days'],
    ['1h30m10s20ms50h', 'more than four components'],
    ['999999h', 'more than five digits'],
    ['1.5h', 'a fraction'],
    ['-15m', 'a negative value'],
    ['', 'nothing'],
    ['10 s', 'a space'],
    ['10S', 'an upper-case unit'],
    ['1us', 'microseconds'],
  ])('refuses %j (%s)', (text) => {
    expect(parseGatewayDuration(text)).toBeUndefined();
  });

  it.each([
    [0, '0s'],
    [3_600_000, '1h'],
    [1_800_000, '30m'],
    [500, '500ms'],
    [9_000_000, '2h30m'],
    [5_410_000, '1h30m10s'],
    [7_200_600, '2h600ms'],
    [9_010_600, '2h30m10s600ms'],
    [30_000, '30s'],
    [240 * 3_600_000, '240h'],
  ])('formats %d ms in the canonical form %s', (ms, text) => {
    expect(formatGatewayDuration(ms)).toBe(text);
  });
});

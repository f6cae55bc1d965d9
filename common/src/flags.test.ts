import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { durationFlag, formatDuration, parseDuration, readFlags } from './flags.js';

const SPEC = { values: ['config', 'port', 'ports'], switches: ['dry-run'], repeatable: ['port'], emptyAllowed: ['ports'] };

describe('readFlags', () => {
  it('reads --name value, --name=value, switches, repeatable flags and meaningful empty values', () => {
    const read = readFlags(['--config', '/etc/m.yaml', '--port=1', '--port', '2', '--dry-run', '--ports='], SPEC);
    expect(read.ok && Object.fromEntries(read.value)).toEqual({ config: ['/etc/m.yaml'], port: ['1', '2'], 'dry-run': ['true'], ports: [''] });
    const off = readFlags(['--dry-run=false'], SPEC);
    expect(off.ok && off.value.get('dry-run')).toEqual(['false']);
  });

  it.each([
    [['--nope'], 'unknown flag "--nope"'],
    [['stray'], 'unexpected argument "stray"'],
    [['--'], 'unexpected argument "--"'],
    [['--config'], '--config needs a value'],
    [['--config='], '--config needs a value'],
    [['--config', '--dry-run'], '--config needs a value'],
    [['--config', 'a', '--config', 'b'], '--config given more than once'],
    [['--dry-run=yes'], '--dry-run takes no value (or =true, =false), not "yes"'],
  ])('refuses %j, naming the flag', (argv, message) => {
    expect(readFlags(argv, SPEC)).toEqual({ ok: false, error: message });
  });

  it('never throws, whatever the arguments (property)', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom('--config', '--port', '--dry-run', '--ports=', '--', '--config=')), { maxLength: 8 }), (argv) => void readFlags(argv, SPEC)));
  });
});

describe('durations', () => {
  it.each([
    ['300ms', 300],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['1h30m', 5_400_000],
    ['0', 0],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '250', '-1s', '1w', 'soon', '1h 30m', '.5s', '5S'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('names the flag, the value and the range', () => {
    expect(durationFlag('--drain', '1h', { minMs: 1, maxMs: 600_000 })).toEqual({ ok: false, error: '--drain: "1h" must be between 1ms and 10m' });
    expect(durationFlag('--drain', 'later', { minMs: 1, maxMs: 600_000 })).toEqual({ ok: false, error: '--drain: "later" is not a duration (e.g. 300ms, 1s, 5m, 1h30m)' });
    expect(formatDuration(86_400_000)).toBe('24h');
    expect(formatDuration(172_800_000)).toBe('2d');
    expect(formatDuration(1500)).toBe('1500ms');
  });

  it('reads back what it formats (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 10 ** 10 }), (ms) => expect(parseDuration(formatDuration(ms))).toBe(ms)));
  });
});

import { describe, expect, it } from '@jest/globals';
import { DEFAULT_MESH_LIMITS, formatBytes, parseByteSize, parseMeshLimits } from './limits.js';

describe('parseByteSize', () => {
  it.each([
    ['1048576', 1048576],
    ['512Ki', 512 * 1024],
    ['16Mi', 16 * 1024 * 1024],
    ['16MiB', 16 * 1024 * 1024],
    ['1gi', 1024 * 1024 * 1024],
    [' 64 Ki ', 64 * 1024],
  ])('reads %j', (text, bytes) => expect(parseByteSize(text)).toBe(bytes));

  it.each(['', 'lots', '16MB', '1.5Mi', '-1', '16 Mi B x'])('refuses %j', (text) => expect(parseByteSize(text)).toBeUndefined());
});

describe('formatBytes', () => {
  it('writes the largest whole unit', () => {
    expect([12, 2048, 2100, 16 * 1024 * 1024, 1024 ** 3].map(formatBytes)).toEqual(['12 bytes', '2 KiB', '2.1 KiB', '16 MiB', '1 GiB']);
  });
});

describe('parseMeshLimits', () => {
  it('defaults what is not given', () => {
    expect(parseMeshLimits(undefined, undefined)).toEqual({ ok: true, value: DEFAULT_MESH_LIMITS });
    expect(parseMeshLimits('1Mi', undefined)).toEqual({ ok: true, value: { maxBytes: 1024 * 1024, maxDepth: 64 } });
  });

  it('names the bad limit and what it takes', () => {
    expect(parseMeshLimits('0', undefined)).toEqual({ ok: false, error: { which: 'maxBytes', message: '"0" is not a size from 1 byte to 1 GiB (e.g. 16Mi, 512Ki, 1048576)' } });
    expect(parseMeshLimits(undefined, '100000')).toEqual({ ok: false, error: { which: 'maxDepth', message: '"100000" is not a depth from 1 to 10000' } });
  });
});

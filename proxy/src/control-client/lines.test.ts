import { describe, expect, it } from '@jest/globals';
import { SnapshotLineReader, versionOf } from './lines.js';

const text = (line: { kind: string; bytes?: unknown }): string => (line.kind === 'line' && Buffer.isBuffer(line.bytes) ? line.bytes.toString('utf8') : line.kind);

describe('SnapshotLineReader', () => {
  it('splits lines across chunks and skips blank ones', () => {
    const reader = new SnapshotLineReader(1024, 1024);
    expect(reader.push(Buffer.from('{"a":1}\n{"b"')).map(text)).toEqual(['{"a":1}']);
    expect(reader.buffered).toBe(4);
    expect(reader.push(Buffer.from(':2}\n\n  \n{"c":3}\n')).map(text)).toEqual(['{"b":2}', '{"c":3}']);
    expect(reader.buffered).toBe(0);
  });

  it('skips a line over the limit to its end, reporting its size and first bytes, and reads on', () => {
    const reader = new SnapshotLineReader(16, 1024);
    const long = `{"version":"v7","objects":[${'1,'.repeat(20)}1]}`;
    const lines = [...reader.push(Buffer.from(long.slice(0, 10))), ...reader.push(Buffer.from(`${long.slice(10)}\n{"ok":1}\n`))];
    expect(lines).toHaveLength(2);
    const [skipped, next] = lines;
    expect(skipped).toEqual({ kind: 'too-large', bytes: long.length, prefix: expect.any(Buffer) });
    expect(skipped?.kind === 'too-large' && versionOf(skipped.prefix)).toBe('v7');
    expect(next && text(next)).toBe('{"ok":1}');
  });

  it('assembles a line longer than the sharing threshold in shared memory', () => {
    const reader = new SnapshotLineReader(1024, 8);
    const [small] = reader.push(Buffer.from('{"a":1}\n'));
    const [large] = [...reader.push(Buffer.from('{"abc":')), ...reader.push(Buffer.from('12345}\n'))];
    expect(small?.kind === 'line' && small.bytes.buffer instanceof SharedArrayBuffer).toBe(false);
    expect(large?.kind === 'line' && large.bytes.buffer instanceof SharedArrayBuffer).toBe(true);
    expect(large && text(large)).toBe('{"abc":12345}');
  });
});

describe('versionOf', () => {
  const version = (line: string): string | undefined => versionOf(Buffer.from(line));

  it('reads the version the control plane writes first, unescaped', () => {
    expect(version('{"type":"snapshot","version":"3f2a","objects":[')).toBe('3f2a');
    expect(version('{ "version" : "a\\"b" }')).toBe('a"b');
  });

  it('finds no version inside the objects, or in a line that is not a snapshot', () => {
    expect(version('{"type":"snapshot","objects":[{"version":"x"}],"version":"v1"}')).toBeUndefined();
    expect(version('[[[[[[[[')).toBeUndefined();
    expect(version('{"version":""}')).toBeUndefined();
    expect(version(`{"version":"${'v'.repeat(300)}"}`)).toBeUndefined();
  });
});

import { describe, expect, it } from '@jest/globals';
import { LineDecoder, encodeMessage, parseClientMessage, parseServerMessage } from './codec.js';
import { DISTRIBUTION_ERRORS } from './protocol.js';

describe('LineDecoder', () => {
  it('splits lines across chunks and skips blank ones', () => {
    const decoder = new LineDecoder(1024);
    expect(decoder.push('{"a":1}\n{"b"')).toEqual({ ok: true, value: ['{"a":1}'] });
    expect(decoder.buffered).toBe(4);
    expect(decoder.push(':2}\n\n  \n{"c":3}\n')).toEqual({ ok: true, value: ['{"b":2}', '{"c":3}'] });
    expect(decoder.buffered).toBe(0);
  });

  it('decodes a character split between chunks whole', () => {
    const bytes = Buffer.from('"café ✓"\n', 'utf8');
    const decoder = new LineDecoder(1024);
    const cut = bytes.indexOf(0x9c); // inside the three bytes of ✓
    expect(decoder.push(bytes.subarray(0, cut))).toEqual({ ok: true, value: [] });
    expect(decoder.push(bytes.subarray(cut))).toEqual({ ok: true, value: ['"café ✓"'] });
  });

  it('fails for good once a line outgrows the limit, within one chunk or across several', () => {
    const one = new LineDecoder(8);
    const result = one.push('123456789\n');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe(DISTRIBUTION_ERRORS.MESSAGE_TOO_LARGE);
    expect(one.push('ok\n').ok).toBe(false);

    const many = new LineDecoder(8);
    expect(many.push('12345').ok).toBe(true);
    expect(many.push('6789').ok).toBe(false);
  });
});

describe('messages', () => {
  it('round-trips every message type through one line', () => {
    const snapshot = { type: 'snapshot', version: 'v1', objects: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } }] } as const;
    const line = encodeMessage(snapshot);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(parseServerMessage(line)).toEqual({ ok: true, value: snapshot });
    expect(parseClientMessage(encodeMessage({ type: 'ack', version: 'v1' }))).toEqual({ ok: true, value: { type: 'ack', version: 'v1' } });
    expect(parseClientMessage(encodeMessage({ type: 'nack', version: 'v1', error: 'why' }))).toEqual({
      ok: true,
      value: { type: 'nack', version: 'v1', error: 'why' },
    });
  });

  it.each([
    ['not json', /not JSON/],
    ['[1]', /must be a JSON object/],
    ['{"type":"hello"}', /unknown message type "hello"/],
    ['{"type":"snapshot","objects":[]}', /a snapshot needs a version/],
    ['{"type":"snapshot","version":"v","objects":{}}', /snapshot v: objects must be a list/],
    ['{"type":"snapshot","version":"v","objects":[{"kind":"Service"}]}', /snapshot v: objects\[0\] must be an object with metadata/],
  ])('refuses the server line %s', (line, reason) => {
    const result = parseServerMessage(line);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe(DISTRIBUTION_ERRORS.BAD_MESSAGE);
      expect(result.error.message).toMatch(reason);
    }
  });

  it.each([
    ['a snapshot', '{"type":"snapshot","version":"v","objects":[]}', /unknown message type "snapshot"/],
    ['an ack without version', '{"type":"ack"}', /an ack needs a version/],
    ['a nack without error', '{"type":"nack","version":"v"}', /a nack needs an error/],
    ['a 300-character version', `{"type":"ack","version":"${'v'.repeat(300)}"}`, /needs a version/],
  ])('refuses %s from a sidecar', (_what, line, reason) => {
    const result = parseClientMessage(line);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toMatch(reason);
  });

  it('shortens a very long NACK reason', () => {
    const result = parseClientMessage(JSON.stringify({ type: 'nack', version: 'v', error: 'x'.repeat(20_000) }));
    expect(result.ok && result.value.type === 'nack' && result.value.error.length).toBe(16 * 1024 + 3);
  });
});

import { describe, expect, it } from '@jest/globals';
import {
  TRACE_HEADERS,
  b3StyleOf,
  extract,
  formatB3Single,
  inject,
  parseTracestate,
  type ExtractedContext,
  type HeaderValue,
} from './context.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';
const P = 'e457b5a2e4d86bd1';
const T64 = 'a3ce929d0e0e4736';

type Case = [string, Record<string, HeaderValue>, Partial<ExtractedContext> | undefined];

describe('extract', () => {
  const cases: Case[] = [
    ['reads a sampled W3C traceparent', { traceparent: `00-${T}-${S}-01` }, { traceId: T, spanId: S, sampled: true, format: 'w3c' }],
    ['reads an unsampled W3C traceparent', { traceparent: `00-${T}-${S}-00` }, { traceId: T, spanId: S, sampled: false }],
    ['reads the sampled bit among other W3C flags', { traceparent: `00-${T}-${S}-03` }, { sampled: true }],
    ['accepts a future W3C version with extra fields', { traceparent: `cc-${T}-${S}-01-what-the-future-holds` }, { traceId: T, sampled: true }],
    ['accepts a future W3C version of exactly 55 characters', { traceparent: `01-${T}-${S}-00` }, { traceId: T, sampled: false }],
    ['rejects W3C version ff', { traceparent: `ff-${T}-${S}-01` }, undefined],
    ['rejects W3C version 00 with trailing data', { traceparent: `00-${T}-${S}-01-extra` }, undefined],
    ['rejects an all-zero W3C trace id', { traceparent: `00-${'0'.repeat(32)}-${S}-01` }, undefined],
    ['rejects an all-zero W3C parent id', { traceparent: `00-${T}-${'0'.repeat(16)}-01` }, undefined],
    ['rejects uppercase W3C ids', { traceparent: `00-${T.toUpperCase()}-${S}-01` }, undefined],
    ['rejects a short W3C trace id', { traceparent: `00-${T.slice(2)}-${S}-01` }, undefined],
    ['rejects non-hex W3C flags', { traceparent: `00-${T}-${S}-0x` }, undefined],
    ['rejects a repeated traceparent header', { traceparent: [`00-${T}-${S}-01`, `00-${T}-${P}-01`] }, undefined],
    ['keeps a valid tracestate with W3C', { traceparent: `00-${T}-${S}-01`, tracestate: 'congo=t61rcWkgMzE, rojo=00f067aa0ba902b7' }, { traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' }],
    ['joins tracestate sent as several headers', { traceparent: `00-${T}-${S}-01`, tracestate: ['a=1', 'b=2'] }, { traceState: 'a=1,b=2' }],
    ['reads B3 single with sampled and parent', { b3: `${T}-${S}-1-${P}` }, { traceId: T, spanId: S, sampled: true, parentSpanId: P, format: 'b3-single' }],
    ['reads B3 single without the sampled state as undecided', { b3: `${T}-${S}` }, { traceId: T, spanId: S, sampled: undefined }],
    ['reads B3 single unsampled', { b3: `${T}-${S}-0` }, { sampled: false }],
    ['reads the B3 single debug state as sampled debug', { b3: `${T}-${S}-d` }, { sampled: true, debug: true }],
    ['left-pads a 64-bit B3 single trace id', { b3: `${T64}-${S}-1` }, { traceId: `0000000000000000${T64}` }],
    ['rejects B3 single with a bad sampled state', { b3: `${T}-${S}-x` }, undefined],
    ['rejects B3 single with a bad parent id', { b3: `${T}-${S}-1-xyz` }, undefined],
    ['ignores a sampling-only B3 single header', { b3: '0' }, undefined],
    ['reads B3 multi', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1', 'x-b3-parentspanid': P }, { traceId: T, spanId: S, sampled: true, parentSpanId: P, format: 'b3-multi' }],
    ['reads B3 multi unsampled', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '0' }, { sampled: false }],
    ['reads B3 multi legacy true/false sampled', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': 'true' }, { sampled: true }],
    ['reads B3 multi without sampled as undecided', { 'x-b3-traceid': T, 'x-b3-spanid': S }, { sampled: undefined }],
    ['reads the B3 multi debug flag as sampled debug', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-flags': '1' }, { sampled: true, debug: true }],
    ['left-pads a 64-bit B3 multi trace id', { 'x-b3-traceid': T64, 'x-b3-spanid': S }, { traceId: `0000000000000000${T64}` }],
    ['accepts uppercase B3 ids and lowercases them', { 'x-b3-traceid': T.toUpperCase(), 'x-b3-spanid': S.toUpperCase() }, { traceId: T, spanId: S }],
    ['drops a malformed B3 multi parent id but keeps the context', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-parentspanid': 'nope' }, { traceId: T, parentSpanId: undefined }],
    ['rejects B3 multi without a span id', { 'x-b3-traceid': T }, undefined],
    ['rejects B3 multi with a 48-bit trace id', { 'x-b3-traceid': T.slice(0, 12), 'x-b3-spanid': S }, undefined],
    ['rejects B3 multi with a bad sampled value', { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': 'maybe' }, undefined],
    ['prefers W3C when W3C and B3 are both present', { traceparent: `00-${T}-${S}-01`, b3: `${T64}-${P}-0` }, { traceId: T, spanId: S, sampled: true, format: 'w3c' }],
    ['falls back to B3 when traceparent is invalid', { traceparent: 'garbage', b3: `${T}-${P}-0` }, { spanId: P, sampled: false, format: 'b3-single' }],
    ['prefers B3 single over B3 multi', { b3: `${T}-${S}-1`, 'x-b3-traceid': T, 'x-b3-spanid': P }, { spanId: S, format: 'b3-single' }],
    ['ignores tracestate without a valid traceparent', { b3: `${T}-${S}-1`, tracestate: 'a=1' }, { traceState: undefined }],
    ['finds nothing in a request without trace headers', { host: 'reviews' }, undefined],
  ];

  it.each(cases)('%s', (_name, headers, expected) => {
    const ctx = extract(headers);
    if (expected === undefined) {
      expect(ctx).toBeUndefined();
      return;
    }
    expect(ctx).toBeDefined();
    // Field by field, so that `undefined` in the table means "absent".
    for (const [key, value] of Object.entries(expected)) expect([key, ctx?.[key as keyof ExtractedContext]]).toEqual([key, value]);
  });

  it('reads headers through a getter function', () => {
    const headers = new Map([['traceparent', `00-${T}-${S}-01`]]);
    expect(extract((name) => headers.get(name))).toMatchObject({ traceId: T, spanId: S });
  });
});

describe('parseTracestate', () => {
  it('drops malformed members and keeps the rest', () => {
    expect(parseTracestate('good=1,BAD=2,=x,also@vendor=ok,nokey')).toBe('good=1,also@vendor=ok');
  });

  it('keeps at most 32 members', () => {
    const members = Array.from({ length: 40 }, (_, i) => `k${i}=v`);
    expect(parseTracestate(members.join(','))?.split(',')).toHaveLength(32);
  });

  it('gives nothing when no member is valid', () => {
    expect(parseTracestate(' , ,')).toBeUndefined();
  });
});

describe('inject', () => {
  const ctx = { traceId: T, spanId: S, sampled: true, parentSpanId: P, traceState: 'a=1' };

  it('writes W3C and single B3 by default', () => {
    expect(inject({}, ctx)).toEqual({
      traceparent: `00-${T}-${S}-01`,
      tracestate: 'a=1',
      b3: `${T}-${S}-1-${P}`,
    });
  });

  it('writes W3C and the B3 multi set when asked', () => {
    expect(inject({}, { ...ctx, sampled: false }, 'multi')).toEqual({
      traceparent: `00-${T}-${S}-00`,
      tracestate: 'a=1',
      'x-b3-traceid': T,
      'x-b3-spanid': S,
      'x-b3-parentspanid': P,
      'x-b3-sampled': '0',
    });
  });

  it('writes debug as the B3 d state and x-b3-flags without x-b3-sampled', () => {
    const debug = { traceId: T, spanId: S, sampled: true, debug: true };
    expect(inject({}, debug).b3).toBe(`${T}-${S}-d`);
    const multi = inject({}, debug, 'multi');
    expect(multi['x-b3-flags']).toBe('1');
    expect(multi['x-b3-sampled']).toBeUndefined();
    expect(multi.traceparent).toBe(`00-${T}-${S}-01`);
  });

  it('leaves the B3 sampled state out when the decision is deferred', () => {
    expect(formatB3Single({ traceId: T, spanId: S, sampled: undefined, parentSpanId: P })).toBe(`${T}-${S}`);
  });

  it('round-trips through extract in both B3 styles', () => {
    for (const style of ['single', 'multi'] as const) {
      const headers = inject({}, { traceId: T, spanId: S, sampled: true }, style);
      delete headers.traceparent;
      expect(extract(headers)).toMatchObject({ traceId: T, spanId: S, sampled: true });
    }
  });

  it('only writes headers listed in TRACE_HEADERS', () => {
    const written = { ...inject({}, ctx, 'single'), ...inject({}, { ...ctx, debug: true }, 'multi') };
    for (const name of Object.keys(written)) expect(TRACE_HEADERS).toContain(name);
  });
});

describe('b3StyleOf', () => {
  it('answers multi when any x-b3 header came, even if W3C won', () => {
    expect(b3StyleOf({ traceparent: `00-${T}-${S}-01`, 'x-b3-traceid': T, 'x-b3-spanid': S })).toBe('multi');
    expect(b3StyleOf({ 'x-b3-sampled': '0' })).toBe('multi');
  });

  it('answers single otherwise', () => {
    expect(b3StyleOf({ b3: `${T}-${S}` })).toBe('single');
    expect(b3StyleOf({})).toBe('single');
  });
});

// The demo's trace collector on its own (no namespaces needed): each wire format it accepts is
// written as the same normalized span, and what it cannot read is refused without writing.
// The sidecars send OTLP as JSON, so protobuf is only proven here, on a hand-encoded request.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { readCollectedSpans, startCollector, type RunningCollector } from 'tsmesh/demo';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const PARENT = 'b7ad6b7169203331';

// ---- a minimal protobuf writer, for the request an OTLP/protobuf exporter would send ----------
function varint(value: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v === 0n ? low : low | 0x80);
  } while (v !== 0n);
  return Buffer.from(out);
}
const key = (field: number, wire: number): Buffer => varint(BigInt((field << 3) | wire));
const int = (field: number, value: bigint): Buffer => Buffer.concat([key(field, 0), varint(value)]);
const len = (field: number, payload: Buffer | string): Buffer => {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([key(field, 2), varint(BigInt(bytes.length)), bytes]);
};
const msg = (field: number, ...parts: Buffer[]): Buffer => len(field, Buffer.concat(parts));
const fixed64 = (field: number, value: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(value);
  return Buffer.concat([key(field, 1), b]);
};
const double = (field: number, value: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value);
  return Buffer.concat([key(field, 1), b]);
};
/** KeyValue{key=1, value=AnyValue{string=1 | bool=2 | int=3 | double=4}} */
const attribute = (field: number, name: string, value: string | boolean | bigint | number): Buffer =>
  msg(
    field,
    len(1, name),
    msg(2, typeof value === 'string' ? len(1, value) : typeof value === 'boolean' ? int(2, value ? 1n : 0n) : typeof value === 'bigint' ? int(3, value) : double(4, value)),
  );

/** The OTLP/JSON request and its protobuf twin: one CLIENT span with a parent, an error status and every scalar type. */
const START = 1_700_000_000_000_000_000n;
const otlpJson = {
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'reviews' } }] },
      scopeSpans: [
        {
          scope: { name: 'tsmesh-proxy' },
          spans: [
            {
              traceId: TRACE,
              spanId: SPAN,
              parentSpanId: PARENT,
              name: 'GET',
              kind: 3,
              startTimeUnixNano: String(START),
              endTimeUnixNano: String(START + 2_500_000n),
              attributes: [
                { key: 'http.request.method', value: { stringValue: 'GET' } },
                { key: 'http.response.status_code', value: { intValue: 503 } },
                { key: 'tsmesh.mtls', value: { boolValue: false } },
                { key: 'ratio', value: { doubleValue: 0.5 } },
                { key: 'offset', value: { intValue: -3 } },
              ],
              status: { code: 2, message: 'upstream reset' },
            },
          ],
        },
      ],
    },
  ],
};
const otlpProto = msg(
  1,
  msg(1, attribute(1, 'service.name', 'reviews')),
  msg(
    2,
    msg(1, len(1, 'tsmesh-proxy')),
    msg(
      2,
      len(1, Buffer.from(TRACE, 'hex')),
      len(2, Buffer.from(SPAN, 'hex')),
      len(4, Buffer.from(PARENT, 'hex')),
      len(5, 'GET'),
      int(6, 3n),
      fixed64(7, START),
      fixed64(8, START + 2_500_000n),
      attribute(9, 'http.request.method', 'GET'),
      attribute(9, 'http.response.status_code', 503n),
      attribute(9, 'tsmesh.mtls', false),
      attribute(9, 'ratio', 0.5),
      attribute(9, 'offset', -3n),
      msg(15, len(2, 'upstream reset'), int(3, 2n)),
    ),
  ),
);

const EXPECTED_OTLP_SPAN = {
  format: 'otlp',
  traceId: TRACE,
  id: SPAN,
  parentId: PARENT,
  kind: 'CLIENT',
  name: 'GET',
  service: 'reviews',
  timestampUs: Number(START / 1000n),
  durationUs: 2500,
  tags: {
    'http.request.method': 'GET',
    'http.response.status_code': '503',
    'tsmesh.mtls': 'false',
    ratio: '0.5',
    offset: '-3',
    'otel.status_code': 'ERROR',
    error: 'upstream reset',
    'service.name': 'reviews',
  },
};

describe('the demo trace collector', () => {
  let dir: string;
  let file: string;
  let collector: RunningCollector;
  let n = 0;
  const post = (path: string, contentType: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`http://127.0.0.1:${collector.port}${path}`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-collector-'));
    collector = await startCollector(0, join(dir, 'unused.jsonl'));
  });
  beforeEach(async () => {
    // One output file per test: restart on port 0 with a new file.
    await collector.close();
    file = join(dir, `spans-${n++}.jsonl`);
    collector = await startCollector(0, file);
  });
  afterAll(async () => {
    await collector?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('writes Zipkin v2 JSON spans as they came, a 64-bit trace id padded and a span without kind as INTERNAL', async () => {
    const spans = [
      { traceId: TRACE, id: SPAN, parentId: PARENT, kind: 'SERVER', name: 'get /', timestamp: 1_700_000_000_000_000, duration: 1200, localEndpoint: { serviceName: 'web' }, tags: { 'http.response.status_code': '200' } },
      { traceId: TRACE.slice(16), id: PARENT, name: 'local', timestamp: 1, duration: 2, localEndpoint: { serviceName: 'web' } },
    ];
    const res = await post('/api/v2/spans', 'application/json', JSON.stringify(spans));
    expect(res.status).toBe(202);
    expect(readCollectedSpans(file)).toEqual([
      { format: 'zipkin', traceId: TRACE, id: SPAN, parentId: PARENT, kind: 'SERVER', name: 'get /', service: 'web', timestampUs: 1_700_000_000_000_000, durationUs: 1200, tags: { 'http.response.status_code': '200' } },
      { format: 'zipkin', traceId: `0000000000000000${TRACE.slice(16)}`, id: PARENT, kind: 'INTERNAL', name: 'local', service: 'web', timestampUs: 1, durationUs: 2, tags: {} },
    ]);
  });

  test('writes an OTLP/JSON span with its attributes, status and resource as Zipkin would tag them', async () => {
    const res = await post('/v1/traces', 'application/json', JSON.stringify(otlpJson));
    expect([res.status, res.headers.get('content-type'), await res.text()]).toEqual([200, 'application/json', '{}']);
    expect(readCollectedSpans(file)).toEqual([EXPECTED_OTLP_SPAN]);
  });

  test('decodes the same span sent as gzipped OTLP/protobuf', async () => {
    const res = await post('/v1/traces', 'application/x-protobuf', gzipSync(otlpProto), { 'content-encoding': 'gzip' });
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'application/x-protobuf']);
    expect(readCollectedSpans(file)).toEqual([EXPECTED_OTLP_SPAN]);
  });

  test('refuses what it cannot read and writes nothing', async () => {
    expect((await post('/api/v2/spans', 'application/json', '{"not":"an array"}')).status).toBe(400);
    expect((await post('/v1/traces', 'application/json', '{')).status).toBe(400);
    expect((await post('/v1/traces', 'text/plain', 'spans')).status).toBe(415);
    expect((await post('/v1/traces', 'application/x-protobuf', Buffer.from([0x0a, 0x7f]))).status).toBe(400);
    expect((await post('/elsewhere', 'application/json', '[]')).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${collector.port}/api/v2/spans`)).status).toBe(404);
    expect(readCollectedSpans(file)).toEqual([]);
  });
});

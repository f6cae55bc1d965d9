// A trace collector small enough to run in a pod of the demo and the end-to-end tests: Zipkin v2
// JSON on POST /api/v2/spans, OTLP/HTTP (JSON or protobuf, gzip or not) on POST /v1/traces. Each
// span received is appended to a file as one JSON line in one shape whatever its format (Zipkin's,
// see CollectedSpan), so a reader needs neither wire format.
import { appendFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';

export const ZIPKIN_PATH = '/api/v2/spans';
export const OTLP_TRACES_PATH = '/v1/traces';

export type CollectedSpanKind = 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER' | 'INTERNAL';

/** One span as written to the output file, one JSON object per line. */
export interface CollectedSpan {
  /** The wire format it arrived in. */
  readonly format: 'zipkin' | 'otlp';
  /** Lowercase hex: 32 digits for a trace id, 16 for span ids. */
  readonly traceId: string;
  readonly id: string;
  /** Absent on a root span. */
  readonly parentId?: string;
  /** Zipkin's kinds; a span without one (Zipkin) or OTLP's INTERNAL/UNSPECIFIED is `INTERNAL`. */
  readonly kind: CollectedSpanKind;
  readonly name: string;
  /** Zipkin `localEndpoint.serviceName`, OTLP resource `service.name`. */
  readonly service: string;
  readonly timestampUs: number;
  readonly durationUs: number;
  /**
   * Every value as a string, as Zipkin tags them: the span's attributes, `otel.status_code` (and
   * `error`, the status message) when a status is set, then the resource's attributes.
   */
  readonly tags: Readonly<Record<string, string>>;
}

export interface RunningCollector {
  readonly server: http.Server;
  readonly port: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 << 20;

class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

// ---- Zipkin v2 JSON ---------------------------------------------------------------------------

interface ZipkinSpan {
  traceId?: unknown;
  id?: unknown;
  parentId?: unknown;
  kind?: unknown;
  name?: unknown;
  timestamp?: unknown;
  duration?: unknown;
  localEndpoint?: { serviceName?: unknown } | null;
  tags?: Record<string, unknown> | null;
}

const ZIPKIN_KINDS = new Set(['CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER']);

function lowerHex(value: unknown, what: string): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{16}(?:[0-9a-fA-F]{16})?$/.test(value)) throw new BadRequest(`bad ${what}: ${String(value)}`);
  return value.toLowerCase();
}

export function fromZipkin(body: unknown): CollectedSpan[] {
  if (!Array.isArray(body)) throw new BadRequest('a Zipkin v2 body is a JSON array of spans');
  return (body as ZipkinSpan[]).map((s) => {
    const tags: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.tags ?? {})) tags[k] = String(v);
    const kind = typeof s.kind === 'string' && ZIPKIN_KINDS.has(s.kind) ? (s.kind as CollectedSpanKind) : 'INTERNAL';
    return {
      format: 'zipkin',
      traceId: lowerHex(s.traceId, 'traceId').padStart(32, '0'),
      id: lowerHex(s.id, 'id'),
      ...(s.parentId !== undefined && s.parentId !== null ? { parentId: lowerHex(s.parentId, 'parentId') } : {}),
      kind,
      name: typeof s.name === 'string' ? s.name : '',
      service: typeof s.localEndpoint?.serviceName === 'string' ? s.localEndpoint.serviceName : '',
      timestampUs: Number(s.timestamp ?? 0),
      durationUs: Number(s.duration ?? 0),
      tags,
    };
  });
}

// ---- OTLP, after decoding (both encodings give this shape) -------------------------------------

/** OTLP's AnyValue reduced to what a tag can hold. */
type OtlpValue = string | number | boolean | bigint | readonly OtlpValue[] | undefined;

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startNanos: bigint;
  endNanos: bigint;
  attributes: Array<[string, OtlpValue]>;
  status: { code: number; message: string };
}

interface OtlpResourceSpans {
  resource: Array<[string, OtlpValue]>;
  spans: OtlpSpan[];
}

const OTLP_KINDS: Record<number, CollectedSpanKind> = { 2: 'SERVER', 3: 'CLIENT', 4: 'PRODUCER', 5: 'CONSUMER' };
const OTLP_STATUS = ['UNSET', 'OK', 'ERROR'];

function tagValue(value: OtlpValue): string {
  if (Array.isArray(value)) return JSON.stringify(value.map((v: OtlpValue) => (typeof v === 'bigint' ? Number(v) : v)));
  return String(value);
}

function normalizeOtlp(batches: OtlpResourceSpans[]): CollectedSpan[] {
  const out: CollectedSpan[] = [];
  for (const batch of batches) {
    const resource = new Map(batch.resource);
    const service = resource.get('service.name');
    for (const s of batch.spans) {
      const tags: Record<string, string> = {};
      for (const [k, v] of s.attributes) tags[k] = tagValue(v);
      if (s.status.code !== 0) tags['otel.status_code'] = OTLP_STATUS[s.status.code] ?? String(s.status.code);
      if (s.status.code === 2 && s.status.message !== '') tags['error'] = s.status.message;
      for (const [k, v] of resource) tags[k] = tagValue(v);
      out.push({
        format: 'otlp',
        traceId: lowerHex(s.traceId, 'traceId'),
        id: lowerHex(s.spanId, 'spanId'),
        ...(s.parentSpanId !== '' ? { parentId: lowerHex(s.parentSpanId, 'parentSpanId') } : {}),
        kind: OTLP_KINDS[s.kind] ?? 'INTERNAL',
        name: s.name,
        service: typeof service === 'string' ? service : '',
        timestampUs: Number(s.startNanos / 1000n),
        durationUs: Number((s.endNanos - s.startNanos) / 1000n),
        tags,
      });
    }
  }
  return out;
}

// ---- OTLP/JSON ---------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function asArray(value: unknown): Json[] {
  return Array.isArray(value) ? (value as Json[]) : [];
}

/** OTLP/JSON ids are hex; a producer following the plain protobuf JSON mapping sends base64. */
function jsonId(value: unknown): string {
  if (typeof value !== 'string' || value === '') return '';
  if (/^[0-9a-fA-F]+$/.test(value) && (value.length === 16 || value.length === 32)) return value;
  return Buffer.from(value, 'base64').toString('hex');
}

function jsonValue(v: Json | undefined): OtlpValue {
  if (v === undefined) return undefined;
  if ('stringValue' in v) return String(v.stringValue);
  if ('boolValue' in v) return Boolean(v.boolValue);
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return asArray((v.arrayValue as Json | undefined)?.values).map((x) => jsonValue(x));
  if ('bytesValue' in v) return String(v.bytesValue);
  return undefined;
}

function jsonAttributes(list: unknown): Array<[string, OtlpValue]> {
  return asArray(list).map((kv) => [String(kv.key), jsonValue(kv.value as Json | undefined)]);
}

function jsonNanos(value: unknown): bigint {
  if (typeof value === 'string' && /^\d+$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isFinite(value)) return BigInt(Math.trunc(value));
  if (typeof value === 'object' && value !== null && 'low' in value && 'high' in value) {
    const { low, high } = value as { low: number; high: number };
    return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
  }
  return 0n;
}

export function fromOtlpJson(body: unknown): CollectedSpan[] {
  if (typeof body !== 'object' || body === null) throw new BadRequest('an OTLP/JSON body is an ExportTraceServiceRequest object');
  return normalizeOtlp(
    asArray((body as Json).resourceSpans).map((rs) => ({
      resource: jsonAttributes((rs.resource as Json | undefined)?.attributes),
      spans: asArray(rs.scopeSpans).flatMap((ss) =>
        asArray(ss.spans).map((s) => {
          const status = (s.status as Json | undefined) ?? {};
          return {
            traceId: jsonId(s.traceId),
            spanId: jsonId(s.spanId),
            parentSpanId: jsonId(s.parentSpanId),
            name: String(s.name ?? ''),
            kind: Number(s.kind ?? 0),
            startNanos: jsonNanos(s.startTimeUnixNano),
            endNanos: jsonNanos(s.endTimeUnixNano),
            attributes: jsonAttributes(s.attributes),
            status: { code: Number(status.code ?? 0), message: String(status.message ?? '') },
          };
        }),
      ),
    })),
  );
}

// ---- OTLP/protobuf: just enough of the wire format for ExportTraceServiceRequest --------------

interface WireField {
  readonly field: number;
  /** Varints and fixed-width numbers. */
  readonly int: bigint;
  /** Length-delimited payloads (and fixed64 bytes, for doubles). */
  readonly bytes: Buffer;
}

function* wireFields(buf: Buffer): Generator<WireField> {
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= buf.length || shift > 63n) throw new BadRequest('truncated protobuf varint');
      const byte = buf[at++] ?? 0;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
  };
  const take = (n: number): Buffer => {
    if (at + n > buf.length) throw new BadRequest('truncated protobuf field');
    const out = buf.subarray(at, at + n);
    at += n;
    return out;
  };
  while (at < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    switch (Number(key & 7n)) {
      case 0:
        yield { field, int: varint(), bytes: Buffer.alloc(0) };
        break;
      case 1: {
        const bytes = take(8);
        yield { field, int: bytes.readBigUInt64LE(), bytes };
        break;
      }
      case 2:
        yield { field, int: 0n, bytes: take(Number(varint())) };
        break;
      case 5: {
        const bytes = take(4);
        yield { field, int: BigInt(bytes.readUInt32LE()), bytes };
        break;
      }
      default:
        throw new BadRequest(`unsupported protobuf wire type in field ${field}`);
    }
  }
}

function protoValue(buf: Buffer): OtlpValue {
  let value: OtlpValue;
  for (const f of wireFields(buf)) {
    if (f.field === 1) value = f.bytes.toString('utf8');
    else if (f.field === 2) value = f.int !== 0n;
    else if (f.field === 3) value = BigInt.asIntN(64, f.int);
    else if (f.field === 4) value = f.bytes.readDoubleLE();
    else if (f.field === 5) value = [...wireFields(f.bytes)].filter((x) => x.field === 1).map((x) => protoValue(x.bytes));
    else if (f.field === 7) value = f.bytes.toString('base64');
  }
  return value;
}

function protoKeyValue(buf: Buffer): [string, OtlpValue] {
  let key = '';
  let value: OtlpValue;
  for (const f of wireFields(buf)) {
    if (f.field === 1) key = f.bytes.toString('utf8');
    else if (f.field === 2) value = protoValue(f.bytes);
  }
  return [key, value];
}

function protoSpan(buf: Buffer): OtlpSpan {
  const span: OtlpSpan = { traceId: '', spanId: '', parentSpanId: '', name: '', kind: 0, startNanos: 0n, endNanos: 0n, attributes: [], status: { code: 0, message: '' } };
  for (const f of wireFields(buf)) {
    if (f.field === 1) span.traceId = f.bytes.toString('hex');
    else if (f.field === 2) span.spanId = f.bytes.toString('hex');
    else if (f.field === 4) span.parentSpanId = f.bytes.toString('hex');
    else if (f.field === 5) span.name = f.bytes.toString('utf8');
    else if (f.field === 6) span.kind = Number(f.int);
    else if (f.field === 7) span.startNanos = f.int;
    else if (f.field === 8) span.endNanos = f.int;
    else if (f.field === 9) span.attributes.push(protoKeyValue(f.bytes));
    else if (f.field === 15) {
      for (const s of wireFields(f.bytes)) {
        if (s.field === 2) span.status.message = s.bytes.toString('utf8');
        else if (s.field === 3) span.status.code = Number(s.int);
      }
    }
  }
  return span;
}

export function fromOtlpProtobuf(buf: Buffer): CollectedSpan[] {
  const batches: OtlpResourceSpans[] = [];
  for (const rs of wireFields(buf)) {
    if (rs.field !== 1) continue;
    const batch: OtlpResourceSpans = { resource: [], spans: [] };
    for (const f of wireFields(rs.bytes)) {
      if (f.field === 1) {
        for (const a of wireFields(f.bytes)) if (a.field === 1) batch.resource.push(protoKeyValue(a.bytes));
      } else if (f.field === 2) {
        for (const s of wireFields(f.bytes)) if (s.field === 2) batch.spans.push(protoSpan(s.bytes));
      }
    }
    batches.push(batch);
  }
  return normalizeOtlp(batches);
}

// ---- the server --------------------------------------------------------------------------------

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy(new BadRequest('body too large', 413));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function decode(path: string, contentType: string, body: Buffer): CollectedSpan[] {
  const parseJson = (): unknown => {
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch {
      throw new BadRequest('body is not JSON');
    }
  };
  if (path === ZIPKIN_PATH) return fromZipkin(parseJson());
  if (contentType.startsWith('application/json')) return fromOtlpJson(parseJson());
  if (contentType.startsWith('application/x-protobuf') || contentType.startsWith('application/protobuf')) return fromOtlpProtobuf(body);
  throw new BadRequest(`unsupported content type "${contentType}"`, 415);
}

/**
 * Listens on 0.0.0.0:`port` and appends every span it is sent to `outFile`, one CollectedSpan per
 * line, before answering (Zipkin 202, OTLP 200 with an empty response in the request's encoding).
 * A malformed body is answered 400 (415 for an unknown content type) and nothing is written.
 */
export function startCollector(port: number, outFile: string): Promise<RunningCollector> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'POST' || (path !== ZIPKIN_PATH && path !== OTLP_TRACES_PATH)) {
      res.writeHead(404).end();
      return;
    }
    const contentType = String(req.headers['content-type'] ?? '').toLowerCase();
    readBody(req)
      .then((raw) => {
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        const spans = decode(path, contentType, body);
        if (spans.length > 0) appendFileSync(outFile, spans.map((s) => `${JSON.stringify(s)}\n`).join(''));
        if (path === ZIPKIN_PATH) res.writeHead(202).end();
        else if (contentType.startsWith('application/json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      })
      .catch((error: unknown) => {
        const status = error instanceof BadRequest ? error.status : 400;
        if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
      });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => {
      server.off('error', reject);
      const address = server.address();
      resolve({
        server,
        port: typeof address === 'object' && address ? address.port : port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** The spans a collector wrote to `file` so far (none if it does not exist yet). */
export function readCollectedSpans(file: string): CollectedSpan[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  // Spans are appended as whole lines, but a read racing an append can end inside one (a write of
  // several pages becomes visible page by page): that part is not a span yet, the next read has it.
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as CollectedSpan);
}

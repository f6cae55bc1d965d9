// The request shapes the benchmark measures, each a named case with its own h2load load: plain
// GETs over four connections and over one, and a gRPC-shaped unary call whose answer ends in trailers.

/** The gRPC-shaped call: its path, the upstreams' answer, and the trailers every peer must pass on. */
export const GRPC_PATH = '/bench.Echo/Call';
export const GRPC_TRAILERS: Readonly<Record<string, string>> = Object.freeze({ 'grpc-status': '0', 'grpc-message': 'ok' });

/** One gRPC message: the 5-byte frame header (not compressed, 100-byte length), then a protobuf message of 100 bytes. */
export function grpcRequestBody(): Uint8Array {
  const message = new Uint8Array(100).fill(0x78); // 'x'
  // Field 1 (bytes), length 98: a valid protobuf message of exactly 100 bytes.
  message[0] = 0x0a;
  message[1] = 98;
  const body = new Uint8Array(5 + message.length);
  new DataView(body.buffer).setUint32(1, message.length);
  body.set(message, 5);
  return body;
}

export interface BenchRequest {
  /** Path on every peer; the upstreams answer it with 200. */
  readonly path: string;
  /** Request headers besides the pseudo-headers, as `name: value` lines (h2load and nghttp -H). */
  readonly headers: readonly string[];
  /** A body makes the request a POST (h2load and nghttp -d); without one it is a GET. */
  readonly body?: Uint8Array;
  /** Trailers the upstreams end the answer with, checked on the wire through every peer before measuring. */
  readonly trailers?: Readonly<Record<string, string>>;
}

export interface BenchCase {
  readonly name: string;
  /** One line for --help and the report. */
  readonly summary: string;
  /** h2load -c and -m. */
  readonly connections: number;
  readonly streams: number;
  readonly request: BenchRequest;
}

export const CASES: readonly BenchCase[] = Object.freeze([
  {
    name: 'get',
    summary: 'GET /, 4 connections × 10 streams',
    connections: 4,
    streams: 10,
    request: { path: '/', headers: [] },
  },
  {
    name: 'get-1conn',
    summary: 'GET /, 1 connection × 40 streams (per-stream balancing of one connection)',
    connections: 1,
    streams: 40,
    request: { path: '/', headers: [] },
  },
  {
    name: 'grpc',
    summary: `POST ${GRPC_PATH} (application/grpc, te: trailers, 105-byte body), answered with trailers; 4 × 10`,
    connections: 4,
    streams: 10,
    request: {
      path: GRPC_PATH,
      headers: ['content-type: application/grpc', 'te: trailers'],
      body: grpcRequestBody(),
      trailers: GRPC_TRAILERS,
    },
  },
]);

export const CASE_NAMES: readonly string[] = CASES.map((c) => c.name);

export function methodOf(request: BenchRequest): 'GET' | 'POST' {
  return request.body ? 'POST' : 'GET';
}

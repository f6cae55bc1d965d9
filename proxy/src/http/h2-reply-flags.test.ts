// An answer the HTTP/2 forwarder gives itself keeps its response flag in the access log, also when
// the client had already ended its side (a GET, a unary gRPC call): writing the answer closes the
// stream, and the line must still say why (NR, UT), as on HTTP/1.1.
import http2 from 'node:http2';
import type net from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { err, ok, TsmeshError } from '@tsmesh/common';
import { PROXY_ERRORS } from '../errors.js';
import { AccessLog, ProxyMetrics, RequestTelemetry } from '../telemetry/index.js';
import { captureLog } from '../telemetry/testing/log-capture.js';
import { listenH2, listenTcp } from '../testing/servers.js';
import { retryPolicyOf } from '../upstream/retry.js';
import { fixedSelector } from '../upstream/selector.js';
import { attachHttpContext, type HttpConnectionContext } from './context.js';
import { H2Forwarder } from './h2.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function forwarderWith(route: HttpConnectionContext['route']) {
  const access = captureLog('info', { component: 'access' });
  const telemetry = new RequestTelemetry({ metrics: new ProxyMetrics({ defaultMetrics: false }), accessLog: new AccessLog(access.logger) });
  const forwarder = new H2Forwarder({ connectTimeoutMs: 1000 }, { telemetry });
  cleanups.push(() => forwarder.close());
  const ctx: HttpConnectionContext = { direction: 'outbound', route, source: {}, destination: {}, mtls: false };
  const front = await listenTcp(
    (socket: net.Socket) => {
      attachHttpContext(socket, ctx);
      forwarder.accept(socket);
    },
    { pauseOnConnect: true, allowHalfOpen: true },
  );
  cleanups.push(() => front.close());
  const session = http2.connect(`http://127.0.0.1:${front.port}`);
  session.on('error', () => undefined);
  cleanups.push(() => session.destroy());
  return { access, session };
}

function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<http2.IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let head: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (head = h));
    req.on('data', () => undefined);
    req.on('end', () => resolve(head));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

async function accessLines(access: ReturnType<typeof captureLog>): Promise<Array<Record<string, unknown>>> {
  for (let i = 0; i < 50 && access.lines().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  return access.lines() as Array<Record<string, unknown>>;
}

describe('HTTP/2: the access log keeps the flag of an answer the proxy gave itself', () => {
  it('a GET no route matches: 404 with flag NR', async () => {
    const { access, session } = await forwarderWith(() => err(new TsmeshError(PROXY_ERRORS.NO_ROUTE, 'no rule matches')));
    const head = await request(session, { ':path': '/nowhere' });
    expect(head[':status']).toBe(404);
    expect(await accessLines(access)).toEqual([expect.objectContaining({ type: 'http', status: 404, flags: 'NR' })]);
  });

  it('a gRPC call past timeouts.backendRequest on every try: DEADLINE_EXCEEDED with flag UT', async () => {
    const hung = await listenH2(() => undefined);
    cleanups.push(() => hung.close());
    const endpoint = { key: `127.0.0.1:${hung.port}`, address: '127.0.0.1', port: hung.port };
    const retry = retryPolicyOf(undefined, Object.freeze({ attempts: 1, backoffMs: 1, codes: Object.freeze([]), grpcCodes: Object.freeze([14]) }));
    const { access, session } = await forwarderWith(() => ok({ selector: fixedSelector('greeter', endpoint), tryTimeoutMs: 50, retry }));
    const frame = Buffer.from([0, 0, 0, 0, 2, 0x7b, 0x7d]); // one uncompressed gRPC message: {}
    const head = await request(session, { ':method': 'POST', ':path': '/tsmesh.demo.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers' }, frame);
    expect(head['grpc-status']).toBe('4');
    expect(await accessLines(access)).toEqual([expect.objectContaining({ type: 'http', grpc_status: 4, flags: 'UT', attempts: 2 })]);
  });
});

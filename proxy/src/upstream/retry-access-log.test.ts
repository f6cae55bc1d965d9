// Every retry is visible in the access log: the three forwarders (HTTP/1.1 relay and node
// engines, HTTP/2) built directly with an access log in memory, each routing to one endpoint that
// answers 503 until its third request, under a route retry on 503.
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { ok } from '@tsmesh/common';
import { attachHttpContext, type HttpConnectionContext } from '../http/context.js';
import { H1Forwarder } from '../http/h1.js';
import { H2Forwarder } from '../http/h2.js';
import { H1Relay } from '../h1/relay.js';
import { AccessLog, ProxyMetrics, RequestTelemetry } from '../telemetry/index.js';
import { captureLog } from '../telemetry/testing/log-capture.js';
import { listenH2, listenHttp, listenTcp, type Listening } from '../testing/servers.js';
import { retryPolicyOf } from './retry.js';
import { fixedSelector, type UpstreamEndpoint } from './selector.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const RETRY = retryPolicyOf(Object.freeze({ codes: Object.freeze([503]), attempts: 2, backoffMs: 1 }), undefined);

function context(port: number): HttpConnectionContext {
  const endpoint: UpstreamEndpoint = { key: `127.0.0.1:${port}`, address: '127.0.0.1', port };
  return { direction: 'outbound', route: () => ok({ selector: fixedSelector('shop/web:8080', endpoint), retry: RETRY, routeName: 'shop/web-retry#0' }), source: {}, destination: {}, mtls: false };
}

function telemetry() {
  const access = captureLog('info', { component: 'access' });
  return { access, telemetry: new RequestTelemetry({ metrics: new ProxyMetrics({ defaultMetrics: false }), accessLog: new AccessLog(access.logger) }) };
}

/** A front listener handing each connection, with its context, to `accept`. */
async function front(ctx: HttpConnectionContext, accept: (socket: net.Socket) => void): Promise<Listening<net.Server>> {
  const listening = await listenTcp(
    (socket) => {
      attachHttpContext(socket, ctx);
      accept(socket);
    },
    { pauseOnConnect: true, allowHalfOpen: true },
  );
  cleanups.push(() => listening.close());
  return listening;
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false, headers: REQUEST_HEADERS }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

async function flakyHttp(): Promise<Listening<http.Server>> {
  let n = 0;
  const server = await listenHttp((_req, res) => {
    n++;
    if (n < 3) res.writeHead(503).end('not yet');
    else res.end('third');
  });
  cleanups.push(() => server.close());
  return server;
}

const REQUEST_HEADERS = { 'x-request-id': 'req-42', 'user-agent': 'shopper/1.0' };
/** What the access line says of the request and its routing. */
const ROUTED = { request_id: 'req-42', user_agent: 'shopper/1.0', upstream_cluster: 'shop/web:8080', route_name: 'shop/web-retry#0' };

const H1 = { connectTimeoutMs: 1000, maxHeaderBytes: 32 * 1024, keepAliveTimeoutMs: 5000 };

describe('the access log shows the attempts of a retried request', () => {
  it('HTTP/1.1 relay engine', async () => {
    const server = await flakyHttp();
    const { access, telemetry: t } = telemetry();
    const relay = new H1Relay(H1, { telemetry: t });
    cleanups.push(() => relay.close());
    const listening = await front(context(server.port), (socket) => relay.accept(socket));
    expect(await get(listening.port)).toEqual({ status: 200, body: 'third' });
    expect(access.lines()).toEqual([expect.objectContaining({ type: 'http', status: 200, attempts: 3, ...ROUTED })]);
  });

  it('HTTP/1.1 node engine', async () => {
    const server = await flakyHttp();
    const { access, telemetry: t } = telemetry();
    const forwarder = new H1Forwarder(H1, { telemetry: t });
    cleanups.push(() => forwarder.close());
    const listening = await front(context(server.port), (socket) => forwarder.accept(socket));
    expect(await get(listening.port)).toEqual({ status: 200, body: 'third' });
    expect(access.lines()).toEqual([expect.objectContaining({ type: 'http', status: 200, attempts: 3, ...ROUTED })]);
  });

  it('HTTP/2', async () => {
    let n = 0;
    const server = await listenH2((stream) => {
      n++;
      stream.respond({ ':status': n < 3 ? 503 : 200 });
      stream.end(n < 3 ? 'not yet' : 'third');
    });
    cleanups.push(() => server.close());
    const { access, telemetry: t } = telemetry();
    const forwarder = new H2Forwarder({ connectTimeoutMs: 1000 }, { telemetry: t });
    cleanups.push(() => forwarder.close());
    const listening = await front(context(server.port), (socket) => forwarder.accept(socket));
    const session = http2.connect(`http://127.0.0.1:${listening.port}`);
    session.on('error', () => undefined);
    cleanups.push(() => session.destroy());
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = session.request({ ':path': '/', ...REQUEST_HEADERS });
      let status = 0;
      let body = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => resolve({ status, body }));
      req.on('error', reject);
    });
    expect(answer).toEqual({ status: 200, body: 'third' });
    expect(access.lines()).toEqual([expect.objectContaining({ type: 'http', status: 200, attempts: 3, ...ROUTED })]);
  });
});

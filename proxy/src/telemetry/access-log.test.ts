import { describe, expect, it } from '@jest/globals';
import { setLogLevel } from '@tsmesh/common';
import { AccessLog } from './access-log.js';
import { captureLog } from './testing/log-capture.js';

const base = {
  reporter: 'source' as const,
  direction: 'outbound' as const,
  durationMs: 12.34567,
  bytesSent: 512,
  bytesReceived: 64,
  upstream: '10.0.0.7:9080',
  downstream: '127.0.0.1:40312',
  sourceIdentity: 'spiffe://cluster.local/ns/bookinfo/sa/productpage',
  destinationIdentity: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
  destinationService: 'reviews.bookinfo.svc.cluster.local',
  mtls: true,
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
};

describe('AccessLog', () => {
  it('writes the upstream attempts of a request, retries included', () => {
    const log = captureLog('info', { component: 'access' });
    const access = new AccessLog(log.logger);
    access.http({ ...base, protocol: 'http1', method: 'GET', authority: 'reviews', path: '/', status: 200, attempts: 3 });
    access.http({ ...base, protocol: 'http1', method: 'GET', authority: 'reviews', path: '/', status: 404 });
    expect(log.lines().map((l) => l['attempts'])).toEqual([3, 0]);
  });

  it('writes one JSON line per request with every field', () => {
    const log = captureLog('info', { component: 'access' });
    new AccessLog(log.logger).http({
      ...base,
      protocol: 'grpc',
      method: 'POST',
      authority: 'reviews:9080',
      path: '/reviews.Reviews/Get',
      status: 200,
      grpcStatus: 0,
      flags: ['UR'],
    });
    const [line, ...rest] = log.lines();
    expect(rest).toHaveLength(0);
    expect(line).toMatchObject({
      level: 30,
      component: 'access',
      type: 'http',
      reporter: 'source',
      direction: 'outbound',
      protocol: 'grpc',
      method: 'POST',
      authority: 'reviews:9080',
      path: '/reviews.Reviews/Get',
      status: 200,
      grpc_status: 0,
      duration_ms: 12.346,
      bytes_sent: 512,
      bytes_received: 64,
      upstream: '10.0.0.7:9080',
      downstream: '127.0.0.1:40312',
      source_identity: base.sourceIdentity,
      destination_identity: base.destinationIdentity,
      destination_service: base.destinationService,
      mtls: true,
      trace_id: base.traceId,
      flags: 'UR',
    });
    expect(typeof line?.time).toBe('string');
  });

  it('writes a TCP line without request fields, with - for no flags', () => {
    const log = captureLog();
    new AccessLog(log.logger).tcp({ ...base, flags: [] });
    const [line] = log.lines();
    expect(line).toMatchObject({ type: 'tcp', bytes_sent: 512, flags: '-' });
    expect(line).not.toHaveProperty('method');
  });

  it('writes null for what is unknown', () => {
    const log = captureLog();
    new AccessLog(log.logger).http({
      reporter: 'destination',
      direction: 'inbound',
      protocol: 'http1',
      method: 'GET',
      authority: 'x',
      path: '/',
      status: undefined,
      durationMs: 1,
      bytesSent: 0,
      bytesReceived: 0,
      mtls: false,
      flags: ['NR', 'DC'],
    });
    expect(log.lines()[0]).toMatchObject({ status: 0, upstream: null, source_identity: null, trace_id: null, flags: 'NR,DC' });
  });

  it('writes nothing and reports disabled when switched off, even at info', () => {
    const log = captureLog('info', { component: 'access' });
    const access = new AccessLog(log.logger, { enabled: false });
    expect(access.enabled).toBe(false);
    access.http({ ...base, protocol: 'http1', method: 'GET', authority: 'a', path: '/', status: 200 });
    access.tcp({ ...base });
    expect(log.lines()).toHaveLength(0);
    expect(AccessLog.off().enabled).toBe(false);
  });

  it('writes nothing and reports disabled when the level is above info', () => {
    const log = captureLog('warn');
    const access = new AccessLog(log.logger);
    expect(access.enabled).toBe(false);
    access.tcp({ ...base });
    expect(log.lines()).toHaveLength(0);
  });

  it('writes the level as a word on the sidecar\'s own access logger, and follows the sidecar\'s log level', () => {
    const written: string[] = [];
    const access = new AccessLog(undefined, { destination: { write: (line: string) => void written.push(line) } });
    access.http({ ...base, protocol: 'http1', method: 'GET', authority: 'reviews', path: '/', status: 200 });
    const line = JSON.parse(written[0] ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'info', component: 'access', type: 'http', status: 200 });
    expect(typeof line['time']).toBe('string');
    try {
      setLogLevel('warn');
      expect(access.enabled).toBe(false);
      access.tcp({ ...base });
      expect(written).toHaveLength(1);
    } finally {
      setLogLevel('info');
    }
  });

  it('writes the request id, user agent, upstream cluster and route name of a request', () => {
    const log = captureLog();
    const access = new AccessLog(log.logger);
    access.http({
      ...base,
      protocol: 'http1',
      method: 'GET',
      authority: 'reviews',
      path: '/',
      status: 200,
      requestId: '9f2c1a7e-5b7d-4a43-9d55-1f0ad3b0c2e4',
      userAgent: 'curl/8.5.0',
      upstreamCluster: 'bookinfo/reviews:9080',
      routeName: 'bookinfo/reviews-v2#0',
    });
    access.http({ ...base, protocol: 'http1', method: 'GET', authority: 'reviews', path: '/', status: 404 });
    const [full, bare] = log.lines();
    expect(full).toMatchObject({
      request_id: '9f2c1a7e-5b7d-4a43-9d55-1f0ad3b0c2e4',
      user_agent: 'curl/8.5.0',
      upstream_cluster: 'bookinfo/reviews:9080',
      route_name: 'bookinfo/reviews-v2#0',
    });
    expect(bare).toMatchObject({ request_id: null, user_agent: null, upstream_cluster: null, route_name: null });
  });

  it('cuts an overlong user agent or request id', () => {
    const log = captureLog();
    new AccessLog(log.logger).http({ ...base, protocol: 'http1', method: 'GET', authority: 'r', path: '/', status: 200, userAgent: 'a'.repeat(5000), requestId: 'r'.repeat(5000) });
    expect(String(log.lines()[0]?.['user_agent'])).toHaveLength(1024);
    expect(String(log.lines()[0]?.['request_id'])).toHaveLength(1024);
  });
});

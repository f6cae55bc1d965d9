import { describe, expect, it } from '@jest/globals';
import { err, TsmeshError } from '@tsmesh/common';
import type { CallFactory, UpstreamCall } from '../upstream/call.js';
import type { H1UpstreamPool } from '../upstream/h1-pool.js';
import type { UpstreamSelector } from '../upstream/selector.js';
import type { HttpConnectionContext, HttpRouteTarget, MirrorTarget } from './context.js';
import { h1MirrorSender, MIRROR_BODY_LIMIT, mirrorHeadersH1, mirrorHeadH2, mirrorTee, type MirrorHead, type MirrorResult, type MirrorSender } from './mirror.js';

const target = (cluster: string): MirrorTarget => ({ selector: {} as UpstreamSelector, cluster });
const HEAD: MirrorHead = { method: 'POST', path: '/a?b=1', authority: 'svc', headers: ['x-a', '1'] };

/** A sender that records what it was asked to send. */
function recorder(fail = new Set<string>()): MirrorSender & { sent: Array<{ cluster: string; head: MirrorHead; body: string }> } {
  const sent: Array<{ cluster: string; head: MirrorHead; body: string }> = [];
  return {
    sent,
    send(t, head, body) {
      if (fail.has(t.cluster)) throw new Error('boom');
      sent.push({ cluster: t.cluster, head, body: body.toString() });
    },
  };
}

function counter(): { counts: Array<[string, MirrorResult]>; count: (cluster: string, result: MirrorResult) => void } {
  const counts: Array<[string, MirrorResult]> = [];
  return { counts, count: (cluster, result) => counts.push([cluster, result]) };
}

const routed = (mirrors: MirrorTarget[] | undefined, extra: Partial<HttpRouteTarget> = {}): HttpRouteTarget => ({ selector: {} as UpstreamSelector, mirrors, ...extra });

describe('MirrorTee', () => {
  it('sends one copy per mirror when the request ends, with the body as it passed', () => {
    const sender = recorder();
    const { count } = counter();
    const tee = mirrorTee(sender, count, routed([target('a'), target('b')]), () => HEAD)!;
    const chunk = Buffer.from('hello ');
    tee.data(chunk);
    chunk.fill(0x78); // the forwarder's buffer is reused or released: the copy must not see it change
    tee.data(Buffer.from('world'));
    expect(sender.sent).toEqual([]);
    tee.end();
    expect(sender.sent).toEqual([
      { cluster: 'a', head: HEAD, body: 'hello world' },
      { cluster: 'b', head: HEAD, body: 'hello world' },
    ]);
    tee.end();
    expect(sender.sent).toHaveLength(2);
  });

  it('is not made, and builds no head, for a request without mirrors', () => {
    let built = false;
    expect(mirrorTee(recorder(), () => undefined, routed(undefined), () => ((built = true), HEAD))).toBeUndefined();
    expect(mirrorTee(recorder(), () => undefined, routed([]), () => ((built = true), HEAD))).toBeUndefined();
    expect(built).toBe(false);
  });

  it('abandons the copies of a body over the bound, counted once per mirror, and sends nothing after', () => {
    const sender = recorder();
    const { counts, count } = counter();
    const tee = mirrorTee(sender, count, routed([target('a'), target('b')]), () => HEAD)!;
    tee.data(Buffer.alloc(MIRROR_BODY_LIMIT));
    expect(counts).toEqual([]);
    tee.data(Buffer.alloc(1));
    expect(counts).toEqual([['a', 'abandoned'], ['b', 'abandoned']]);
    tee.data(Buffer.alloc(1));
    tee.end();
    tee.abandon();
    expect(sender.sent).toEqual([]);
    expect(counts).toHaveLength(2);
  });

  it('abandons the copies of a request that never ends, and not those of one that did', () => {
    const { counts, count } = counter();
    const cut = mirrorTee(recorder(), count, routed([target('a')]), () => HEAD)!;
    cut.data(Buffer.from('x'));
    cut.abandon();
    expect(counts).toEqual([['a', 'abandoned']]);
    const sender = recorder();
    const whole = mirrorTee(sender, count, routed([target('b')]), () => HEAD)!;
    whole.end();
    whole.abandon();
    expect(counts).toEqual([['a', 'abandoned']]);
    expect(sender.sent).toHaveLength(1);
  });

  it('counts a copy whose sender throws as failed, and still sends the others', () => {
    const sender = recorder(new Set(['a']));
    const { counts, count } = counter();
    const tee = mirrorTee(sender, count, routed([target('a'), target('b')]), () => HEAD)!;
    expect(() => tee.end()).not.toThrow();
    expect(counts).toEqual([['a', 'failed']]);
    expect(sender.sent.map((s) => s.cluster)).toEqual(['b']);
  });
});

describe('the head of a copy', () => {
  const ctx = { direction: 'outbound', addHeaders: [['x-added', 'mesh']] } as unknown as HttpConnectionContext;

  it('HTTP/1: what the endpoint gets, without framing, Host, hop-by-hop or trace headers', () => {
    const raw = ['Host', 'svc', 'Content-Length', '5', 'Connection', 'keep-alive, x-hop', 'X-Hop', '1', 'traceparent', '00-aa-bb-01', 'X-Keep', 'k', 'X-Drop', 'd'];
    const edited = routed([target('a')], { requestHeaders: { set: [['x-set', 's']], add: [], remove: ['x-drop'] } });
    expect(mirrorHeadersH1(raw, edited, ctx)).toEqual(['X-Keep', 'k', 'x-set', 's', 'x-added', 'mesh']);
  });

  it('HTTP/2: pseudo-headers become method, path and authority', () => {
    const head = mirrorHeadH2([':method', 'POST', ':scheme', 'http', ':path', '/p?q', ':authority', 'api.internal', 'content-type', 'application/grpc', 'te', 'trailers']);
    expect(head).toEqual({ method: 'POST', path: '/p?q', authority: 'api.internal', headers: ['content-type', 'application/grpc', 'te', 'trailers'] });
  });
});

describe('h1MirrorSender', () => {
  it('counts a copy whose mirror cluster has no endpoint as failed, and releases the call', () => {
    let released = 0;
    const calls: CallFactory = () =>
      ({
        next: () => err(new TsmeshError('TSMESH_ERR_NO_ENDPOINTS' as never, 'no endpoints')),
        release: () => void released++,
        cluster: 'shop/shadow:80',
      }) as unknown as UpstreamCall;
    const { counts, count } = counter();
    const pool = (): H1UpstreamPool => {
      throw new Error('no connection may be made');
    };
    h1MirrorSender(pool, calls, count).send(target('shop/shadow:80'), HEAD, Buffer.alloc(0), undefined);
    expect(counts).toEqual([['shop/shadow:80', 'failed']]);
    expect(released).toBe(1);
  });
});

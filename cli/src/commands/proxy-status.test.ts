// The parts of `tsmesh proxy-status` that need no control plane: the status of a stream, the
// relative times, the table. The command against running control planes (direct, and through the
// API server's port-forward) is tested in tests/src/control/proxy-status.test.ts.
import { describe, expect, it } from '@jest/globals';
import { describeKubeError, proxyStatus, relative, statusTable, syncStatus, type ConnectionRecord } from './proxy-status.js';

const NOW = Date.parse('2026-12-06T00:00:00Z');
const base: ConnectionRecord = {
  spiffeId: 'spiffe://cluster.local/ns/shop/sa/web',
  namespace: 'shop',
  serviceAccount: 'web',
  pod: 'web-0',
  connectedAt: '2026-12-05T23:50:00.000Z',
  lastSeen: '2026-12-05T23:59:57.000Z',
  certificateExpiresAt: '2026-12-06T23:00:00.000Z',
};

describe('syncStatus', () => {
  it('says SYNCED when the version sent was acknowledged', () => {
    expect(syncStatus({ ...base, lastSent: { version: 'a', at: '' }, lastAcked: { version: 'a', at: '' } })).toBe('SYNCED');
  });
  it('says NACKED when the version sent was refused, even after an older ACK', () => {
    expect(syncStatus({ ...base, lastSent: { version: 'b', at: '' }, lastAcked: { version: 'a', at: '' }, lastNacked: { version: 'b', at: '', error: 'bad' } })).toBe('NACKED');
  });
  it('says STALE when the version sent is not answered yet, NOT SENT before anything was sent', () => {
    expect(syncStatus({ ...base, lastSent: { version: 'b', at: '' }, lastAcked: { version: 'a', at: '' } })).toBe('STALE');
    expect(syncStatus(base)).toBe('NOT SENT');
  });
});

describe('relative', () => {
  it('gives the distance from now in its largest unit', () => {
    expect(relative('2026-12-05T23:59:57Z', NOW)).toBe('3s ago');
    expect(relative('2026-12-06T23:00:00Z', NOW)).toBe('in 23h');
    expect(relative('2026-12-04T00:00:00Z', NOW)).toBe('2d ago');
    expect(relative('2026-12-07T00:00:00Z', NOW)).toBe('in 24h');
    expect(relative('2026-12-06T00:00:00Z', NOW)).toBe('now');
    expect(relative(undefined, NOW)).toBe('-');
    expect(relative('not a date', NOW)).toBe('-');
  });
});

describe('statusTable', () => {
  it('shows one line per sidecar with the NACK reason and an expired certificate', () => {
    const synced = proxyStatus({ ...base, lastSent: { version: 'v1', at: '' }, lastAcked: { version: 'v1', at: '' } }, 'control-0');
    const nacked = proxyStatus(
      { ...base, pod: undefined, namespace: 'other', certificateExpiresAt: '2026-12-05T22:00:00Z', lastSent: { version: 'v2', at: '' }, lastNacked: { version: 'v2', at: '', error: 'snapshot v2:\n1 invalid object' } },
      'control-0',
    );
    expect(statusTable([synced, nacked], NOW)).toBe(
      [
        'NAME        SNAPSHOT  STATUS                                 LAST SEEN  CERT EXPIRES    CONTROL',
        'web-0.shop  v1        SYNCED                                 3s ago     in 23h          control-0',
        'web.other   v2        NACKED: snapshot v2: 1 invalid object  3s ago     EXPIRED 2h ago  control-0',
        '',
      ].join('\n'),
    );
  });

  it('says when no sidecar is connected', () => {
    expect(statusTable([], NOW)).toBe('No sidecars connected.\n');
  });
});

describe('describeKubeError', () => {
  it('gives the status and the API server message on one line', () => {
    expect(describeKubeError({ code: 403, body: JSON.stringify({ message: 'pods is forbidden' }), message: 'HTTP-Code: 403\nMessage: ...' })).toBe('HTTP 403: pods is forbidden');
    expect(describeKubeError(new Error('connect ECONNREFUSED 127.0.0.1:1\nmore'))).toBe('connect ECONNREFUSED 127.0.0.1:1');
    expect(describeKubeError(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:2') }))).toBe('fetch failed: connect ECONNREFUSED 127.0.0.1:2');
  });
});

// Where the inbound sidecar delivers: the pod address the client asked for when it is the pod's own
// (either family of a dual-stack pod), else the pod IP; from 127.0.0.6 or ::6 to match.
import { describe, expect, test } from '@jest/globals';
import type { UpstreamEndpoint, UpstreamSelector } from '../upstream/selector.js';
import { Inbound, INBOUND_SOURCE_ADDRESS, type InboundDeps } from './inbound.js';

const POD_V4 = '10.1.0.5';
const POD_V6 = 'fd00:1::5';

function inbound(podIp: string | undefined, own: readonly string[] = [POD_V4, POD_V6]): Inbound {
  // Only what appSelector reads; the data path is exercised through running sidecars elsewhere.
  const deps: Partial<InboundDeps> = { podIp, isOwnAddress: (address) => own.includes(address), self: { workload: 'web' } };
  return new Inbound(deps as InboundDeps);
}

function endpoint(selector: UpstreamSelector): UpstreamEndpoint {
  const picked = selector.select();
  if (!picked.ok) throw picked.error;
  return picked.value.endpoint;
}

describe('Inbound.appSelector', () => {
  test('delivers to the pod address of the family the client used, from the matching loopback source', () => {
    const i = inbound(POD_V4);
    expect(endpoint(i.appSelector(8080, POD_V6))).toMatchObject({ address: POD_V6, port: 8080, localAddress: '::6', key: `[${POD_V6}]:8080` });
    expect(endpoint(i.appSelector(8080, POD_V4))).toMatchObject({ address: POD_V4, port: 8080, localAddress: INBOUND_SOURCE_ADDRESS });
  });

  test('an original destination that is not the pod is delivered to the pod IP, never dialled', () => {
    const i = inbound(POD_V4);
    expect(endpoint(i.appSelector(8080, '203.0.113.9'))).toMatchObject({ address: POD_V4, localAddress: INBOUND_SOURCE_ADDRESS });
    expect(endpoint(i.appSelector(8080, 'fd00:99::1'))).toMatchObject({ address: POD_V4, localAddress: INBOUND_SOURCE_ADDRESS });
    expect(endpoint(i.appSelector(8080))).toMatchObject({ address: POD_V4 });
  });

  test('an IPv6-only pod delivers from ::6', () => {
    expect(endpoint(inbound(POD_V6, [POD_V6]).appSelector(9000, POD_V6))).toMatchObject({ address: POD_V6, localAddress: '::6' });
  });

  test('without a pod IP (local mode) it delivers to 127.0.0.1 from any source', () => {
    const delivered = endpoint(inbound(undefined).appSelector(8080, POD_V6));
    expect(delivered).toMatchObject({ address: '127.0.0.1', port: 8080 });
    expect(delivered.localAddress).toBeUndefined();
  });

  test('keeps one selector (one pooled upstream) per address and port', () => {
    const i = inbound(POD_V4);
    expect(i.appSelector(8080, POD_V6)).toBe(i.appSelector(8080, POD_V6));
    expect(i.appSelector(8080, POD_V4)).toBe(i.appSelector(8080));
    expect(i.appSelector(8080, POD_V4)).not.toBe(i.appSelector(8080, POD_V6));
    expect(i.appSelector(8080)).not.toBe(i.appSelector(8081));
  });
});

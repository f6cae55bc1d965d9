import type { CompiledListener, ListenerCertificate } from '@tsmesh/common';
import { pickCertificate } from './sni.js';

const cert = (secret: string, ...dnsNames: string[]): ListenerCertificate => ({ secret, cert: '', key: '', dnsNames });

function listener(name: string, hostname: string | undefined, ...certificates: ListenerCertificate[]): CompiledListener {
  return { gateway: 'edge/gw', name, port: 443, protocol: 'HTTPS', hostname, certificates, attachedRoutes: 0, conditions: [], programmed: true };
}

describe('pickCertificate (SNI selection among HTTPS listeners of one port)', () => {
  const a = listener('a', 'a.example.com', cert('edge/a', 'a.example.com'));
  const wild = listener('wild', '*.example.com', cert('edge/wild', '*.example.com'));
  const deep = listener('deep', '*.b.example.com', cert('edge/deep', '*.b.example.com'));
  const any = listener('any', undefined, cert('edge/x', 'x.test'), cert('edge/y', 'y.test'));

  it.each([
    ['an exact listener hostname over a wildcard', [wild, a], 'a.example.com', 'edge/a'],
    ['the wildcard for another name under it', [wild, a], 'c.example.com', 'edge/wild'],
    ['the longest wildcard', [wild, deep], 'x.b.example.com', 'edge/deep'],
    ['names are compared without case or a trailing dot', [a], 'A.Example.COM.', 'edge/a'],
    ['a listener without hostname when no hostname fits', [a, any], 'other.test', 'edge/x'],
    ['among one listener certificates, the one whose SANs cover the name', [any], 'y.test', 'edge/y'],
    ['without SNI, the listener without hostname', [a, any], '', 'edge/x'],
  ] as const)('picks %s', (_name, listeners, servername, secret) => {
    expect(pickCertificate(listeners, servername)?.secret).toBe(secret);
  });

  it.each([
    ['a name no listener serves', [a, wild], 'a.example.net'],
    ['the bare suffix of a wildcard', [wild], 'example.com'],
    ['no SNI when every listener has a hostname', [a], ''],
  ] as const)('refuses %s', (_name, listeners, servername) => {
    expect(pickCertificate(listeners, servername)).toBeUndefined();
  });
});

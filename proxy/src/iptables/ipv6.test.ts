import { hasGlobalIpv6, hasIpv6InboundSource, inboundSourceArgs } from './ipv6.js';
import { FakeNetfilter, IF_INET6_GLOBAL, IF_INET6_LOOPBACK_ONLY } from './testing/fake-netfilter.js';

const ON_LO = '00000000000000000000000000000006 01 80 00 80       lo\n';

describe('hasGlobalIpv6', () => {
  it('is true for a global-scope address on a pod interface', async () => {
    expect(await hasGlobalIpv6(new FakeNetfilter({ ifInet6: IF_INET6_GLOBAL }))).toBe(true);
  });

  it('is false with only loopback and link-local addresses, or IPv6 disabled', async () => {
    expect(await hasGlobalIpv6(new FakeNetfilter())).toBe(false);
    const linkLocal = IF_INET6_LOOPBACK_ONLY + 'fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n';
    expect(await hasGlobalIpv6(new FakeNetfilter({ ifInet6: linkLocal }))).toBe(false);
    expect(await hasGlobalIpv6(new FakeNetfilter({ ifInet6: undefined }))).toBe(false);
  });

  it('ignores global addresses on lo, such as ::6 from an earlier run', async () => {
    expect(await hasGlobalIpv6(new FakeNetfilter({ ifInet6: IF_INET6_LOOPBACK_ONLY + ON_LO }))).toBe(false);
  });
});

describe('hasIpv6InboundSource', () => {
  it('finds ::6 on lo only', async () => {
    expect(await hasIpv6InboundSource(new FakeNetfilter({ ifInet6: IF_INET6_LOOPBACK_ONLY + ON_LO }))).toBe(true);
    expect(await hasIpv6InboundSource(new FakeNetfilter({ ifInet6: IF_INET6_GLOBAL }))).toBe(false);
    expect(await hasIpv6InboundSource(new FakeNetfilter({ ifInet6: ON_LO.replace(' lo', ' eth0') }))).toBe(false);
  });
});

describe('inboundSourceArgs', () => {
  it('adds idempotently with replace and removes with del', () => {
    expect(inboundSourceArgs('add')).toEqual(['-6', 'addr', 'replace', '::6/128', 'dev', 'lo']);
    expect(inboundSourceArgs('remove')).toEqual(['-6', 'addr', 'del', '::6/128', 'dev', 'lo']);
  });
});

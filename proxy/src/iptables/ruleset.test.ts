import type { RedirectConfig } from './config.js';
import { FakeNetfilter } from './testing/fake-netfilter.js';
import { parseIptablesFlags } from './flags.js';
import { EMPTY_NAT_TABLE, parseNatTable } from './nat-table.js';
import { applyInput, cleanupInput, ownChainRules, type Family } from './ruleset.js';

function config(...flags: string[]): RedirectConfig {
  const parsed = parseIptablesFlags(flags);
  if (!parsed.ok) throw parsed.error;
  return parsed.value.redirect;
}

/** The own-chain rules of one chain, without the `-A CHAIN ` prefix. */
function chain(name: string, redirect: RedirectConfig, family: Family = 4): string[] {
  const prefix = `-A ${name} `;
  return ownChainRules(redirect, family)
    .filter((rule) => rule.startsWith(prefix))
    .map((rule) => rule.slice(prefix.length));
}

const DEFAULT_INPUT_V4 = `*nat
:TSMESH_INBOUND - [0:0]
:TSMESH_INBOUND_REDIRECT - [0:0]
:TSMESH_OUTBOUND - [0:0]
:TSMESH_OUTBOUND_REDIRECT - [0:0]
-A TSMESH_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A TSMESH_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A TSMESH_INBOUND -p tcp -m tcp --dport 15000:15099 -j RETURN
-A TSMESH_INBOUND -p tcp -j TSMESH_INBOUND_REDIRECT
-A TSMESH_OUTBOUND -s 127.0.0.6/32 -o lo -j RETURN
-A TSMESH_OUTBOUND ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j TSMESH_INBOUND
-A TSMESH_OUTBOUND ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j TSMESH_INBOUND
-A TSMESH_OUTBOUND -m owner --uid-owner 1337 -j RETURN
-A TSMESH_OUTBOUND -m owner --gid-owner 1337 -j RETURN
-A TSMESH_OUTBOUND -d 127.0.0.1/32 -j RETURN
-A TSMESH_OUTBOUND -p tcp -m tcp --dport 15000:15099 -j RETURN
-A TSMESH_OUTBOUND -p tcp -j TSMESH_OUTBOUND_REDIRECT
-A PREROUTING -p tcp -j TSMESH_INBOUND
-A OUTPUT -p tcp -j TSMESH_OUTBOUND
COMMIT
`;

describe('applyInput on a fresh table', () => {
  it('is exactly the default IPv4 ruleset', () => {
    expect(applyInput(config(), 4, EMPTY_NAT_TABLE)).toBe(DEFAULT_INPUT_V4);
  });

  it('is the same ruleset for IPv6 with ::1 as loopback and ::6 as the inbound source', () => {
    const v6 = DEFAULT_INPUT_V4.replaceAll('127.0.0.1/32', '::1/128').replaceAll('127.0.0.6/32', '::6/128');
    expect(applyInput(config(), 6, EMPTY_NAT_TABLE)).toBe(v6);
  });
});

describe('ownChainRules', () => {
  it('lets the inbound proxy reach the app from 127.0.0.6 before anything else', () => {
    expect(chain('TSMESH_OUTBOUND', config())[0]).toBe('-s 127.0.0.6/32 -o lo -j RETURN');
  });

  it('sends the proxy dialling its own pod address over lo through the inbound chain, before its RETURN', () => {
    const rules = chain('TSMESH_OUTBOUND', config());
    const viaInbound = rules.indexOf('! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j TSMESH_INBOUND');
    const ownReturn = rules.indexOf('-m owner --uid-owner 1337 -j RETURN');
    expect(viaInbound).toBeGreaterThan(0);
    expect(ownReturn).toBeGreaterThan(viaInbound);
  });

  it('does not exempt the app talking to its own pod address over lo', () => {
    const rules = chain('TSMESH_OUTBOUND', config());
    expect(rules.filter((r) => r.includes('-o lo') && r.endsWith('-j RETURN'))).toEqual(['-s 127.0.0.6/32 -o lo -j RETURN']);
  });

  it('uses --proxy-uid and --proxy-gid for the owner matches', () => {
    const rules = chain('TSMESH_OUTBOUND', config('--proxy-uid=2000', '--proxy-gid=3000'));
    expect(rules.filter((r) => r.includes('-owner'))).toEqual([
      '! -d 127.0.0.1/32 -o lo -m owner --uid-owner 2000 -j TSMESH_INBOUND',
      '! -d 127.0.0.1/32 -o lo -m owner --gid-owner 3000 -j TSMESH_INBOUND',
      '-m owner --uid-owner 2000 -j RETURN',
      '-m owner --gid-owner 3000 -j RETURN',
    ]);
  });

  it('redirects to --inbound-port and --outbound-port', () => {
    const redirect = config('--inbound-port=9006', '--outbound-port=9001');
    expect(chain('TSMESH_INBOUND_REDIRECT', redirect)).toEqual(['-p tcp -j REDIRECT --to-ports 9006']);
    expect(chain('TSMESH_OUTBOUND_REDIRECT', redirect)).toEqual(['-p tcp -j REDIRECT --to-ports 9001']);
  });

  it('returns --exclude-inbound-ports before capturing the rest', () => {
    expect(chain('TSMESH_INBOUND', config('--exclude-inbound-ports=22,8081'))).toEqual([
      '-p tcp -m tcp --dport 15000:15099 -j RETURN',
      '-p tcp -m tcp --dport 22 -j RETURN',
      '-p tcp -m tcp --dport 8081 -j RETURN',
      '-p tcp -j TSMESH_INBOUND_REDIRECT',
    ]);
  });

  it('captures only --include-inbound-ports, minus excluded and mesh-reserved ones', () => {
    expect(chain('TSMESH_INBOUND', config('--include-inbound-ports=80,443,15020,8080', '--exclude-inbound-ports=8080'))).toEqual([
      '-p tcp -m tcp --dport 15000:15099 -j RETURN',
      '-p tcp -m tcp --dport 80 -j TSMESH_INBOUND_REDIRECT',
      '-p tcp -m tcp --dport 443 -j TSMESH_INBOUND_REDIRECT',
    ]);
  });

  it('captures no inbound port with an empty --include-inbound-ports or --exclude-inbound-ports=*', () => {
    const onlyReserved = ['-p tcp -m tcp --dport 15000:15099 -j RETURN'];
    expect(chain('TSMESH_INBOUND', config('--include-inbound-ports='))).toEqual(onlyReserved);
    expect(chain('TSMESH_INBOUND', config('--exclude-inbound-ports=*'))).toEqual(onlyReserved);
  });

  it('returns --exclude-outbound-ports after the proxy and loopback rules', () => {
    const rules = chain('TSMESH_OUTBOUND', config('--exclude-outbound-ports=5432,6379'));
    expect(rules.slice(-3)).toEqual([
      '-p tcp -m tcp --dport 5432 -j RETURN',
      '-p tcp -m tcp --dport 6379 -j RETURN',
      '-p tcp -j TSMESH_OUTBOUND_REDIRECT',
    ]);
  });

  it('never captures mesh-reserved destination ports outbound', () => {
    expect(chain('TSMESH_OUTBOUND', config())).toContain('-p tcp -m tcp --dport 15000:15099 -j RETURN');
  });

  it('returns --exclude-outbound-ip-ranges of the matching family only', () => {
    const redirect = config('--exclude-outbound-ip-ranges=10.0.0.0/8,fd00::/8,169.254.169.254');
    expect(chain('TSMESH_OUTBOUND', redirect, 4).filter((r) => r.startsWith('-d ') && !r.startsWith('-d 127.'))).toEqual([
      '-d 10.0.0.0/8 -j RETURN',
      '-d 169.254.169.254/32 -j RETURN',
    ]);
    expect(chain('TSMESH_OUTBOUND', redirect, 6).filter((r) => r.startsWith('-d ') && !r.startsWith('-d ::1'))).toEqual([
      '-d fd00::/8 -j RETURN',
    ]);
  });

  it('captures only --include-outbound-ip-ranges of the matching family', () => {
    const redirect = config('--include-outbound-ip-ranges=10.96.0.0/12,fd00:10:96::/112');
    expect(chain('TSMESH_OUTBOUND', redirect, 4).slice(-1)).toEqual(['-d 10.96.0.0/12 -p tcp -j TSMESH_OUTBOUND_REDIRECT']);
    expect(chain('TSMESH_OUTBOUND', redirect, 6).slice(-1)).toEqual(['-d fd00:10:96::/112 -p tcp -j TSMESH_OUTBOUND_REDIRECT']);
  });

  it('captures nothing outbound for a family none of the included ranges belongs to', () => {
    const rules = chain('TSMESH_OUTBOUND', config('--include-outbound-ip-ranges=10.0.0.0/8'), 6);
    expect(rules.some((r) => r.endsWith('-j TSMESH_OUTBOUND_REDIRECT'))).toBe(false);
  });

  it('captures nothing outbound with an empty --include-outbound-ip-ranges or an exclude of *', () => {
    for (const flag of ['--include-outbound-ip-ranges=', '--exclude-outbound-ip-ranges=*', '--exclude-outbound-ports=*']) {
      expect(chain('TSMESH_OUTBOUND', config(flag)).some((r) => r.endsWith('-j TSMESH_OUTBOUND_REDIRECT'))).toBe(false);
    }
  });

  it('keeps the proxy-to-own-pod-address rules when nothing else is captured outbound', () => {
    const rules = chain('TSMESH_OUTBOUND', config('--include-outbound-ip-ranges='));
    expect(rules).toContain('! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j TSMESH_INBOUND');
  });
});

describe('applyInput against an existing table', () => {
  it('does not add the built-in jumps again when they are in place', () => {
    const current = parseNatTable(`*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:TSMESH_INBOUND - [0:0]
:TSMESH_OUTBOUND - [0:0]
-A PREROUTING -p tcp -j TSMESH_INBOUND
-A OUTPUT -p tcp -j TSMESH_OUTBOUND
COMMIT
`);
    const input = applyInput(config(), 4, current);
    expect(input).not.toContain('-A PREROUTING');
    expect(input).not.toContain('-A OUTPUT');
    expect(input).not.toContain('-D ');
    expect(input).toContain(':TSMESH_INBOUND - [0:0]');
  });

  it('deletes duplicate and stale jumps, and removes TSMESH_ chains it no longer uses', () => {
    const current = parseNatTable(`*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:TSMESH_INBOUND - [0:0]
:TSMESH_OLD - [0:0]
-A PREROUTING -p tcp -j TSMESH_INBOUND
-A PREROUTING -p tcp -j TSMESH_INBOUND
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -p tcp -m comment --comment "old  tsmesh" -j TSMESH_OLD
-A TSMESH_OLD -j TSMESH_INBOUND
COMMIT
`);
    const input = applyInput(config(), 4, current).split('\n');
    expect(input.filter((l) => /^-[DFX] /.test(l))).toEqual([
      '-D PREROUTING -p tcp -j TSMESH_INBOUND',
      '-D OUTPUT -p tcp -m comment --comment "old  tsmesh" -j TSMESH_OLD',
      '-F TSMESH_OLD',
      '-X TSMESH_OLD',
    ]);
    expect(input.filter((l) => l.startsWith('-A PREROUTING') || l.startsWith('-A OUTPUT'))).toEqual([
      '-A OUTPUT -p tcp -j TSMESH_OUTBOUND',
    ]);
  });

  it('leaves exactly one copy of each rule when applied twice, even with other flags the second time', () => {
    const netfilter = new FakeNetfilter();
    const first = applyInput(config('--exclude-inbound-ports=22'), 4, parseNatTable(netfilter.save(4)));
    netfilter.tables[4].get('PREROUTING')?.push('-j KUBE-LIKE-OTHER'); // someone else's rule survives
    expect(netfilter.restoreSync(4, first)).toBe(0);
    const afterFirst = netfilter.rules(4);
    const second = applyInput(config('--exclude-inbound-ports=22'), 4, parseNatTable(netfilter.save(4)));
    expect(netfilter.restoreSync(4, second)).toBe(0);
    expect(netfilter.rules(4)).toEqual(afterFirst);
    expect(new Set(afterFirst).size).toBe(afterFirst.length);

    const third = applyInput(config('--inbound-port=9006'), 4, parseNatTable(netfilter.save(4)));
    expect(netfilter.restoreSync(4, third)).toBe(0);
    const rules = netfilter.rules(4);
    expect(rules).toContain('-A TSMESH_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 9006');
    expect(rules).not.toContain('-A TSMESH_INBOUND -p tcp -m tcp --dport 22 -j RETURN');
    expect(rules.filter((r) => r.startsWith('-A PREROUTING'))).toEqual(['-A PREROUTING -j KUBE-LIKE-OTHER', '-A PREROUTING -p tcp -j TSMESH_INBOUND']);
  });
});

describe('cleanupInput', () => {
  it('is undefined when the table holds nothing of ours', () => {
    expect(cleanupInput(EMPTY_NAT_TABLE)).toBeUndefined();
    expect(cleanupInput(parseNatTable('*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n'))).toBeUndefined();
  });

  it('deletes every jump into a TSMESH_ chain, then flushes and deletes every TSMESH_ chain', () => {
    const netfilter = new FakeNetfilter();
    netfilter.tables[4].get('OUTPUT')?.push('-j KUBE-LIKE-OTHER');
    expect(netfilter.restoreSync(4, applyInput(config(), 4, EMPTY_NAT_TABLE))).toBe(0);
    expect(netfilter.restoreSync(4, applyInput(config(), 4, EMPTY_NAT_TABLE))).toBe(0); // a duplicate jump, as an old tool might leave
    const input = cleanupInput(parseNatTable(netfilter.save(4)));
    expect(input?.split('\n').slice(0, 5)).toEqual([
      '*nat',
      '-D PREROUTING -p tcp -j TSMESH_INBOUND',
      '-D PREROUTING -p tcp -j TSMESH_INBOUND',
      '-D OUTPUT -p tcp -j TSMESH_OUTBOUND',
      '-D OUTPUT -p tcp -j TSMESH_OUTBOUND',
    ]);
    expect(netfilter.restoreSync(4, input ?? '')).toBe(0);
    expect(netfilter.rules(4)).toEqual(['-A OUTPUT -j KUBE-LIKE-OTHER']);
    expect([...netfilter.tables[4].keys()]).toEqual(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']);
  });
});

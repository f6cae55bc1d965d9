// Applies the ruleset to the real kernel inside throwaway network namespaces (needs root).
import { execFileSync } from 'node:child_process';
import { setLogLevel } from '@tsmesh/common';
import { runIptables } from './apply.js';
import { netnsExecutor } from './executor.js';
import { parseIptablesFlags } from './flags.js';
import { canUseNetns, createNetns, deleteNetns, savedNat } from './testing/netns.js';

const describeAsRoot = canUseNetns() ? describe : describe.skip;

async function tsmesh(ns: string, ...flags: string[]) {
  const options = parseIptablesFlags(flags);
  if (!options.ok) throw options.error;
  const result = await runIptables(options.value, netnsExecutor(ns));
  if (!result.ok) throw result.error;
  return result.value;
}

function ownRules(rules: readonly string[]): string[] {
  return rules.filter((r) => r.includes('TSMESH_'));
}

describeAsRoot('tsmesh iptables in a network namespace', () => {
  let ns: string | undefined;
  beforeAll(() => setLogLevel('silent'));
  beforeEach(() => {
    ns = createNetns();
  });
  afterEach(() => {
    deleteNetns(ns);
    ns = undefined;
  });

  it('installs every rule exactly once when applied twice', async () => {
    const name = ns ?? '';
    await tsmesh(name, '--exclude-inbound-ports=22', '--exclude-outbound-ip-ranges=10.0.0.0/8');
    const once = await savedNat(name);
    await tsmesh(name, '--exclude-inbound-ports=22', '--exclude-outbound-ip-ranges=10.0.0.0/8');
    const twice = await savedNat(name);
    expect(twice).toEqual(once);
    expect(new Set(twice.rules).size).toBe(twice.rules.length);
    expect(twice.rules.filter((r) => r.startsWith('-A PREROUTING') || r.startsWith('-A OUTPUT'))).toEqual([
      '-A PREROUTING -p tcp -j TSMESH_INBOUND',
      '-A OUTPUT -p tcp -j TSMESH_OUTBOUND',
    ]);
    expect(twice.rules).toContain('-A TSMESH_INBOUND -p tcp -m tcp --dport 22 -j RETURN');
    expect(twice.rules).toContain('-A TSMESH_OUTBOUND -d 10.0.0.0/8 -j RETURN');
    expect(twice.chains.filter((c) => c.startsWith('TSMESH_')).sort()).toEqual([
      'TSMESH_INBOUND',
      'TSMESH_INBOUND_REDIRECT',
      'TSMESH_OUTBOUND',
      'TSMESH_OUTBOUND_REDIRECT',
    ]);
  });

  it('installs exactly the rules it planned: iptables-save reads back every one of them', async () => {
    const name = ns ?? '';
    const plan = await tsmesh(name, '--include-inbound-ports=80,443', '--include-outbound-ip-ranges=10.96.0.0/12');
    const [step] = plan.steps;
    const planned = (step?.kind === 'restore' ? (step.input ?? '') : '').split('\n').filter((l) => l.startsWith('-A '));
    expect(ownRules((await savedNat(name)).rules).sort()).toEqual([...planned].sort());
  });

  it('replaces the rules when run again with other flags, keeping one jump each', async () => {
    const name = ns ?? '';
    await tsmesh(name, '--exclude-inbound-ports=22');
    await tsmesh(name, '--inbound-port=9006');
    const { rules } = await savedNat(name);
    expect(rules).not.toContain('-A TSMESH_INBOUND -p tcp -m tcp --dport 22 -j RETURN');
    expect(rules).toContain('-A TSMESH_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 9006');
    expect(rules.filter((r) => r.endsWith('-j TSMESH_OUTBOUND'))).toHaveLength(1);
  });

  it('programs ip6tables with --ipv6 on, with IPv6 ranges only, and twice leaves one copy', async () => {
    const name = ns ?? '';
    const flags = ['--ipv6=on', '--exclude-outbound-ip-ranges=10.0.0.0/8,fd00::/8'];
    await tsmesh(name, ...flags);
    await tsmesh(name, ...flags);
    const v6 = await savedNat(name, 6);
    expect(new Set(v6.rules).size).toBe(v6.rules.length);
    expect(v6.rules).toContain('-A TSMESH_OUTBOUND -s ::6/128 -o lo -j RETURN');
    expect(v6.rules).toContain('-A TSMESH_OUTBOUND -d fd00::/8 -j RETURN');
    expect(v6.rules.join('\n')).not.toContain('10.0.0.0');
    expect((await savedNat(name, 4)).rules.join('\n')).not.toContain('fd00');
  });

  it('programs ip6tables in auto mode only once the namespace has a global IPv6 address', async () => {
    const name = ns ?? '';
    await tsmesh(name);
    expect(ownRules((await savedNat(name, 6)).rules)).toEqual([]);
    execFileSync('ip', ['-n', name, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    execFileSync('ip', ['-n', name, 'addr', 'add', 'fd00:77::1/64', 'dev', 'veth0', 'nodad']);
    const plan = await tsmesh(name);
    expect(plan.steps.flatMap((s) => (s.kind === 'restore' ? [s.family] : []))).toEqual([4, 6]);
    expect((await savedNat(name, 6)).rules).toContain('-A OUTPUT -p tcp -j TSMESH_OUTBOUND');
  });

  it('removes every TSMESH_ chain and jump of both families on cleanup, and keeps other rules', async () => {
    const name = ns ?? '';
    execFileSync('ip', ['netns', 'exec', name, 'iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'udp', '-j', 'RETURN']);
    await tsmesh(name, '--ipv6=on');
    await tsmesh(name, '--cleanup');
    for (const family of [4, 6] as const) {
      const { rules, chains } = await savedNat(name, family);
      expect(rules.filter((r) => r.includes('TSMESH'))).toEqual([]);
      expect(chains.filter((c) => c.startsWith('TSMESH'))).toEqual([]);
    }
    expect((await savedNat(name)).rules).toEqual(['-A OUTPUT -p udp -j RETURN']);
    const again = await tsmesh(name, '--cleanup');
    expect(again.steps.every((s) => s.kind === 'restore' && s.input === undefined)).toBe(true);
  });
});

import { setLogLevel } from '@tsmesh/common';
import { IPTABLES_ERRORS } from '../errors.js';
import { planIptables, renderPlan, runIptables, type PlanStep } from './apply.js';
import type { IptablesOptions } from './config.js';
import { FakeNetfilter, IF_INET6_GLOBAL, IF_INET6_LOOPBACK_ONLY } from './testing/fake-netfilter.js';
import { parseIptablesFlags } from './flags.js';

function options(...flags: string[]): IptablesOptions {
  const parsed = parseIptablesFlags(flags);
  if (!parsed.ok) throw parsed.error;
  return parsed.value;
}

async function run(netfilter: FakeNetfilter, ...flags: string[]) {
  const result = await runIptables(options(...flags), netfilter);
  if (!result.ok) throw result.error;
  return result.value;
}

async function failure(netfilter: FakeNetfilter, ...flags: string[]) {
  const result = await runIptables(options(...flags), netfilter);
  if (result.ok) throw new Error('expected a failure');
  return result.error;
}

beforeAll(() => setLogLevel('silent'));

const restores = (netfilter: FakeNetfilter) => netfilter.calls.filter((c) => c.includes('-restore'));

const families = (steps: readonly PlanStep[]) => steps.flatMap((s) => (s.kind === 'restore' ? [s.family] : []));

describe('planIptables', () => {
  it('only reads: it runs the save commands and no restore', async () => {
    const netfilter = new FakeNetfilter({ ifInet6: IF_INET6_GLOBAL });
    const plan = await planIptables(options(), netfilter);
    expect(plan.ok).toBe(true);
    expect(netfilter.calls).toEqual(['iptables-save -t nat', 'ip6tables-save -t nat']);
    expect(netfilter.rules(4)).toEqual([]);
    expect(netfilter.ifInet6).toBe(IF_INET6_GLOBAL);
  });
});

describe('runIptables', () => {
  it('reads the nat table, then applies one iptables-restore --noflush', async () => {
    const netfilter = new FakeNetfilter();
    await run(netfilter);
    expect(netfilter.calls).toEqual(['iptables-save -t nat', 'iptables-restore --noflush']);
    expect(netfilter.rules(4)).toContain('-A OUTPUT -p tcp -j TSMESH_OUTBOUND');
  });

  it('leaves one copy of each rule when run twice', async () => {
    const netfilter = new FakeNetfilter({ ifInet6: IF_INET6_GLOBAL });
    await run(netfilter);
    const once = { 4: netfilter.rules(4), 6: netfilter.rules(6) };
    await run(netfilter);
    expect({ 4: netfilter.rules(4), 6: netfilter.rules(6) }).toEqual(once);
  });

  it('programs ip6tables in auto mode when the namespace has a global IPv6 address', async () => {
    const netfilter = new FakeNetfilter({ ifInet6: IF_INET6_GLOBAL });
    const plan = await run(netfilter, '--exclude-outbound-ip-ranges=10.0.0.0/8,fd00::/8');
    expect(restores(netfilter)).toEqual(['iptables-restore --noflush', 'ip6tables-restore --noflush']);
    expect(netfilter.calls).toContain('ip -6 addr replace ::6/128 dev lo');
    expect(plan.notes).toEqual(['fake netns has a global IPv6 address: programming ip6tables too']);
    expect(netfilter.rules(4)).toContain('-A TSMESH_OUTBOUND -d 10.0.0.0/8 -j RETURN');
    expect(netfilter.rules(4).join('\n')).not.toContain('fd00');
    expect(netfilter.rules(6)).toContain('-A TSMESH_OUTBOUND -d fd00::/8 -j RETURN');
    expect(netfilter.rules(6).join('\n')).not.toContain('10.0.0.0');
  });

  it('leaves ip6tables alone in auto mode without a global IPv6 address, and says IPv6 ranges are ignored', async () => {
    const netfilter = new FakeNetfilter();
    const plan = await run(netfilter, '--exclude-outbound-ip-ranges=fd00::/8');
    expect(netfilter.calls.some((c) => c.startsWith('ip6tables'))).toBe(false);
    expect(plan.notes).toEqual(['IPv6 ranges are ignored: ip6tables is not being programmed (see --ipv6)']);
  });

  it('programs ip6tables with --ipv6 on and never with --ipv6 off', async () => {
    const on = new FakeNetfilter();
    await run(on, '--ipv6=on');
    expect(on.rules(6)).toContain('-A OUTPUT -p tcp -j TSMESH_OUTBOUND');
    const off = new FakeNetfilter({ ifInet6: IF_INET6_GLOBAL });
    await run(off, '--ipv6=off');
    expect(off.calls.some((c) => c.startsWith('ip6tables'))).toBe(false);
  });

  it('fails clearly, having changed nothing, when --ipv6 on and ip6tables is missing', async () => {
    const netfilter = new FakeNetfilter({ ip6tables: false });
    const error = await failure(netfilter, '--ipv6', 'on');
    expect(error.code).toBe(IPTABLES_ERRORS.TOOL_MISSING);
    expect(error.message).toBe('ip6tables-save not found in fake netns: --ipv6 on needs ip6tables');
    expect(restores(netfilter)).toEqual([]);
  });

  it('fails rather than leave IPv6 uncaptured when auto finds a global address but no ip6tables', async () => {
    const netfilter = new FakeNetfilter({ ip6tables: false, ifInet6: IF_INET6_GLOBAL });
    const error = await failure(netfilter);
    expect(error.message).toContain('ip6tables-save not found');
    expect(error.message).toContain('--ipv6 off');
    expect(restores(netfilter)).toEqual([]);
  });

  it('fails when the nat table cannot be read, before changing anything', async () => {
    const netfilter = new FakeNetfilter({ saveDenied: true });
    const error = await failure(netfilter);
    expect(error.code).toBe(IPTABLES_ERRORS.READ_STATE);
    expect(error.message).toBe('iptables-save -t nat failed (exit 4): iptables-save v1.8.9 (nf_tables): Permission denied (you must be root)');
    expect(restores(netfilter)).toEqual([]);
  });

  it('names the line iptables-restore refused', async () => {
    const netfilter = new FakeNetfilter();
    netfilter.tables[4].delete('PREROUTING'); // makes the jump from PREROUTING fail
    const error = await failure(netfilter);
    expect(error.code).toBe(IPTABLES_ERRORS.RESTORE);
    expect(error.message).toMatch(/line \d+ failed.*\(the line is: -A PREROUTING -p tcp -j TSMESH_INBOUND\)$/);
  });
});

describe('dry run', () => {
  it('runs no restore and renders the exact inputs, headed by the command', async () => {
    const netfilter = new FakeNetfilter();
    const plan = await run(netfilter, '--dry-run', '--ipv6=on');
    expect(restores(netfilter)).toEqual([]);
    const text = renderPlan(plan);
    expect(text).toContain('\n# iptables-restore --noflush (IPv4)\n*nat\n');
    expect(text).toContain('COMMIT\n# ip6tables-restore --noflush (IPv6)\n*nat\n');
    expect(text).toBe(
      '# ip -6 addr replace ::6/128 dev lo  (the inbound proxy\'s IPv6 source address)\n' +
        plan.steps.map((s) => (s.kind === 'restore' ? `# ${s.restore} --noflush (IPv${s.family})\n${s.input}` : '')).join(''),
    );
  });

  it('shows the input for an empty table, with a note, when the table cannot be read', async () => {
    const plan = await run(new FakeNetfilter({ saveDenied: true }), '--dry-run');
    expect(plan.notes[0]).toMatch(/^could not read the IPv4 nat table \(.*Permission denied.*\): showing the input for an empty table$/);
    const [step] = plan.steps;
    expect(step?.kind === 'restore' && step.input).toContain('-A PREROUTING -p tcp -j TSMESH_INBOUND');
  });
});

describe('the IPv6 inbound source address', () => {
  it('is added to lo before any restore, and only when missing', async () => {
    const netfilter = new FakeNetfilter();
    await run(netfilter, '--ipv6=on');
    expect(netfilter.calls[2]).toBe('ip -6 addr replace ::6/128 dev lo');
    expect(netfilter.ifInet6).toContain('00000000000000000000000000000006 01 80 00 80       lo');
    netfilter.calls.length = 0;
    await run(netfilter, '--ipv6=on');
    expect(netfilter.calls.filter((c) => c.startsWith('ip '))).toEqual([]);
  });

  it('is not added for IPv4 only, and does not count as the pod having IPv6', async () => {
    const netfilter = new FakeNetfilter();
    await run(netfilter, '--ipv6=on');
    netfilter.calls.length = 0;
    const plan = await run(netfilter, '--ipv6=auto');
    expect(families(plan.steps)).toEqual([4]);
    expect(netfilter.calls.filter((c) => c.startsWith('ip'))).toEqual(['iptables-save -t nat', 'iptables-restore --noflush']);
  });

  it('fails clearly, before any restore, when ip is not installed', async () => {
    const netfilter = new FakeNetfilter({ ip: false });
    const error = await failure(netfilter, '--ipv6=on');
    expect(error.code).toBe(IPTABLES_ERRORS.ADDRESS);
    expect(error.message).toBe('ip -6 addr replace ::6/128 dev lo in fake netns not found (iproute2 is needed for IPv6 capture)');
    expect(restores(netfilter)).toEqual([]);
  });

  it('is removed by cleanup', async () => {
    const netfilter = new FakeNetfilter();
    await run(netfilter, '--ipv6=on');
    await run(netfilter, '--cleanup');
    expect(netfilter.ifInet6).toBe(IF_INET6_LOOPBACK_ONLY);
    expect(netfilter.calls.at(-1)).toBe('ip -6 addr del ::6/128 dev lo');
  });
});

describe('cleanup', () => {
  it('removes every TSMESH_ chain and jump of both families, and leaves other rules', async () => {
    const netfilter = new FakeNetfilter({ ifInet6: IF_INET6_GLOBAL });
    netfilter.tables[4].get('OUTPUT')?.push('-j SOMEONE-ELSE');
    await run(netfilter);
    await run(netfilter, '--cleanup');
    expect(netfilter.rules(4)).toEqual(['-A OUTPUT -j SOMEONE-ELSE']);
    expect(netfilter.rules(6)).toEqual([]);
    expect([...netfilter.tables[6].keys()].some((c) => c.startsWith('TSMESH_'))).toBe(false);
  });

  it('runs no restore when there is nothing to remove', async () => {
    const netfilter = new FakeNetfilter();
    const plan = await run(netfilter, '--cleanup');
    expect(restores(netfilter)).toEqual([]);
    expect(renderPlan(plan)).toBe('# iptables-restore --noflush (IPv4)\n# nothing to remove\n# ip6tables-restore --noflush (IPv6)\n# nothing to remove\n');
  });

  it('skips IPv6 quietly in auto mode when ip6tables is not installed', async () => {
    const netfilter = new FakeNetfilter({ ip6tables: false });
    const plan = await run(netfilter, '--cleanup');
    expect(families(plan.steps)).toEqual([4]);
    expect(plan.notes).toEqual([]);
  });
});

// The built `tsmesh iptables` binary, run as the init container would, inside throwaway network
// namespaces (needs root and a prior `npx tsc -b`).
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IPTABLES_FLAGS } from '@tsmesh/proxy';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tsmesh iptables args...`, inside netns `ns` when given. */
function tsmesh(ns: string | undefined, ...args: string[]): Promise<Run> {
  const command = [process.execPath, MAIN, 'iptables', ...args];
  const [file = '', ...rest] = ns === undefined ? command : ['ip', 'netns', 'exec', ns, ...command];
  return new Promise((resolve) => {
    execFile(file, rest, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

function natRules(ns: string, family: 4 | 6 = 4): string[] {
  const save = execFileSync('ip', ['netns', 'exec', ns, family === 4 ? 'iptables-save' : 'ip6tables-save', '-t', 'nat'], { encoding: 'utf8' });
  return save.split('\n').filter((l) => l.startsWith('-A ') || (l.startsWith(':') && l.includes('TSMESH')));
}

function canUseNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    execFileSync('iptables-save', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run 'npx tsc -b' first`);
});

describe('tsmesh iptables --help', () => {
  it('documents every flag', async () => {
    const { code, stdout } = await tsmesh(undefined, '--help');
    expect(code).toBe(0);
    for (const flag of IPTABLES_FLAGS) expect(stdout).toContain(`--${flag.name}`);
  });
});

describe('tsmesh iptables with a bad flag', () => {
  it.each([
    [['--outbound-port', '70000'], '--outbound-port', '70000'],
    [['--inbound-port=abc'], '--inbound-port', 'abc'],
    [['--exclude-outbound-ip-ranges=10.0.0.0/33'], '--exclude-outbound-ip-ranges', '10.0.0.0/33'],
    [['--include-outbound-ip-ranges', '300.1.1.1/8'], '--include-outbound-ip-ranges', '300.1.1.1/8'],
    [['--no-such-flag'], '--no-such-flag', ''],
  ])('exits 2 with one line naming %j', async (argv, flag, value) => {
    const { code, stdout, stderr } = await tsmesh(undefined, ...argv);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(flag);
    expect(stderr).toContain(value);
  });
});

(canUseNetns() ? describe : describe.skip)('tsmesh iptables in a network namespace', () => {
  let ns = '';
  beforeEach(() => {
    ns = `tsm-ipt-${randomBytes(4).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', ns]);
  });
  afterEach(() => {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  });

  it('leaves exactly one copy of each rule when run twice', async () => {
    expect((await tsmesh(ns, '--exclude-inbound-ports=22')).code).toBe(0);
    const once = natRules(ns);
    const second = await tsmesh(ns, '--exclude-inbound-ports=22');
    expect(second.code).toBe(0);
    const twice = natRules(ns);
    expect(twice).toEqual(once);
    expect(new Set(twice).size).toBe(twice.length);
    expect(twice.filter((r) => r.includes('-j TSMESH_INBOUND') && r.startsWith('-A PREROUTING'))).toHaveLength(1);
    expect(twice.filter((r) => r.includes('-j TSMESH_OUTBOUND') && r.startsWith('-A OUTPUT'))).toHaveLength(1);
  });

  it('--dry-run changes nothing and prints exactly the rules a run then installs', async () => {
    const dry = await tsmesh(ns, '--dry-run', '--ipv6=off', '--include-inbound-ports=80,443');
    expect(dry.code).toBe(0);
    expect(dry.stdout.startsWith('# iptables-restore --noflush (IPv4)\n*nat\n')).toBe(true);
    expect(natRules(ns)).toEqual([]);
    expect((await tsmesh(ns, '--ipv6=off', '--include-inbound-ports=80,443')).code).toBe(0);
    const printed = dry.stdout.split('\n').filter((l) => l.startsWith('-A '));
    expect(natRules(ns).filter((l) => l.startsWith('-A ')).sort()).toEqual(printed.sort());
  });

  it('a bad flag exits non-zero and changes nothing', async () => {
    expect((await tsmesh(ns)).code).toBe(0);
    const before = natRules(ns);
    const bad = await tsmesh(ns, '--inbound-port=9006', '--exclude-outbound-ip-ranges=300.1.1.1/8');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--exclude-outbound-ip-ranges');
    expect(bad.stderr).toContain('300.1.1.1/8');
    expect(natRules(ns)).toEqual(before);
    expect(natRules(ns).join('\n')).not.toContain('9006');
  });

  it('--cleanup leaves no TSMESH chain or jump in either family', async () => {
    expect((await tsmesh(ns, '--ipv6=on')).code).toBe(0);
    expect(natRules(ns, 6).length).toBeGreaterThan(0);
    const cleanup = await tsmesh(ns, '--cleanup');
    expect(cleanup.code).toBe(0);
    for (const family of [4, 6] as const) expect(natRules(ns, family).filter((r) => r.includes('TSMESH'))).toEqual([]);
    const lo = execFileSync('ip', ['-n', ns, '-6', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
    expect(lo).not.toContain('::6/128');
  });
});

import { DEFAULT_REDIRECT, type IptablesOptions } from './config.js';
import { IPTABLES_ERRORS } from '../errors.js';
import { IPTABLES_FLAGS, iptablesHelp, parseIptablesFlags } from './flags.js';

function parse(...argv: string[]): IptablesOptions {
  const result = parseIptablesFlags(argv);
  if (!result.ok) throw new Error(`unexpected failure: ${result.error.message}`);
  return result.value;
}

function failure(...argv: string[]): string {
  const result = parseIptablesFlags(argv);
  if (result.ok) throw new Error(`expected ${argv.join(' ')} to be refused`);
  expect(result.error.code).toBe(IPTABLES_ERRORS.BAD_FLAG);
  return result.error.message;
}

describe('parseIptablesFlags', () => {
  it('gives the mesh defaults when no flag is given', () => {
    expect(parse()).toEqual({ mode: 'apply', dryRun: false, ipv6: 'auto', redirect: DEFAULT_REDIRECT });
  });

  it('returns frozen options', () => {
    const options = parse('--proxy-uid', '7');
    expect(Object.isFrozen(options)).toBe(true);
    expect(Object.isFrozen(options.redirect)).toBe(true);
  });

  it('accepts both --flag value and --flag=value', () => {
    expect(parse('--outbound-port', '9001').redirect.outboundPort).toBe(9001);
    expect(parse('--outbound-port=9001').redirect.outboundPort).toBe(9001);
  });

  it('reads every value flag', () => {
    const { redirect, ipv6 } = parse(
      '--proxy-uid=1000',
      '--proxy-gid=1001',
      '--outbound-port=9001',
      '--inbound-port=9006',
      '--exclude-outbound-ports=5432,6379',
      '--exclude-inbound-ports=22',
      '--include-inbound-ports=80,443',
      '--exclude-outbound-ip-ranges=10.0.0.0/8,fd00::/8',
      '--include-outbound-ip-ranges=192.168.0.0/16',
      '--ipv6=off',
    );
    expect(ipv6).toBe('off');
    expect(redirect).toEqual({
      proxyUid: 1000,
      proxyGid: 1001,
      outboundPort: 9001,
      inboundPort: 9006,
      excludeOutboundPorts: [5432, 6379],
      excludeInboundPorts: [22],
      includeInboundPorts: [80, 443],
      excludeOutboundIpRanges: [
        { family: 4, text: '10.0.0.0/8' },
        { family: 6, text: 'fd00::/8' },
      ],
      includeOutboundIpRanges: [{ family: 4, text: '192.168.0.0/16' }],
    });
  });

  it('reads the switches, with or without an explicit true/false', () => {
    expect(parse('--dry-run').dryRun).toBe(true);
    expect(parse('--dry-run=false').dryRun).toBe(false);
    expect(parse('--cleanup').mode).toBe('cleanup');
    expect(parse('--cleanup=true', '--dry-run').mode).toBe('cleanup');
  });

  it('takes * as all and an empty value as none', () => {
    expect(parse('--include-inbound-ports', '*').redirect.includeInboundPorts).toBe('*');
    expect(parse('--include-inbound-ports=').redirect.includeInboundPorts).toEqual([]);
    expect(parse('--include-inbound-ports', '').redirect.includeInboundPorts).toEqual([]);
    expect(parse('--exclude-outbound-ip-ranges=*').redirect.excludeOutboundIpRanges).toBe('*');
  });

  it('trims spaces and drops duplicate list items', () => {
    expect(parse('--exclude-inbound-ports= 22, 80 ,22').redirect.excludeInboundPorts).toEqual([22, 80]);
  });

  it('turns a bare address into a host block and lower-cases IPv6', () => {
    expect(parse('--exclude-outbound-ip-ranges=10.1.2.3,FD00::1').redirect.excludeOutboundIpRanges).toEqual([
      { family: 4, text: '10.1.2.3/32' },
      { family: 6, text: 'fd00::1/128' },
    ]);
  });

  it.each([
    [['--outbound-port', '70000'], 'invalid --outbound-port value "70000": 70000 is out of the port range (1-65535)'],
    [['--inbound-port=0'], 'invalid --inbound-port value "0": 0 is out of the port range (1-65535)'],
    [['--inbound-port', 'abc'], 'invalid --inbound-port value "abc": "abc" is not a port number (1-65535)'],
    [['--outbound-port=-1'], 'invalid --outbound-port value "-1": "-1" is not a port number (1-65535)'],
    [['--exclude-inbound-ports=22,70000'], 'invalid --exclude-inbound-ports value "22,70000": 70000 is out of the port range (1-65535)'],
    [['--exclude-outbound-ports=80,http'], 'invalid --exclude-outbound-ports value "80,http": "http" is not a port number (1-65535)'],
    [['--include-inbound-ports=80,,90'], 'invalid --include-inbound-ports value "80,,90": the list has an empty item'],
    [['--include-inbound-ports=*,80'], 'invalid --include-inbound-ports value "*,80": * must stand alone, not inside a list'],
    [['--exclude-outbound-ip-ranges', '10.0.0.0/33'], 'invalid --exclude-outbound-ip-ranges value "10.0.0.0/33": "/33" is not a prefix length for IPv4 (0-32)'],
    [['--exclude-outbound-ip-ranges=300.1.1.1/8'], 'invalid --exclude-outbound-ip-ranges value "300.1.1.1/8": "300.1.1.1" is not an IPv4 or IPv6 address'],
    [['--include-outbound-ip-ranges=fd00::/129'], 'invalid --include-outbound-ip-ranges value "fd00::/129": "/129" is not a prefix length for IPv6 (0-128)'],
    [['--include-outbound-ip-ranges=10.0.0.0/'], 'invalid --include-outbound-ip-ranges value "10.0.0.0/": "/" is not a prefix length for IPv4 (0-32)'],
    [['--include-outbound-ip-ranges=fe80::1%eth0/64'], 'invalid --include-outbound-ip-ranges value "fe80::1%eth0/64": "fe80::1%eth0" is not an IPv4 or IPv6 address'],
    [['--proxy-uid=root'], 'invalid --proxy-uid value "root": "root" is not a numeric id (0-4294967294)'],
    [['--proxy-gid=4294967295'], 'invalid --proxy-gid value "4294967295": "4294967295" is not a numeric id (0-4294967294)'],
    [['--ipv6=maybe'], 'invalid --ipv6 value "maybe": expected auto, on or off'],
    [['--dry-run=yes'], '--dry-run takes no value (or =true, =false), not "yes"'],
    [['--frobnicate'], 'unknown flag "--frobnicate"; see \'tsmesh iptables --help\''],
    [['--frobnicate=1'], 'unknown flag "--frobnicate"; see \'tsmesh iptables --help\''],
    [['--help'], 'unknown flag "--help"; see \'tsmesh iptables --help\''],
    [['-x'], 'unexpected argument "-x" (all settings are --flags)'],
    [['10.0.0.0/8'], 'unexpected argument "10.0.0.0/8" (all settings are --flags)'],
    [['--outbound-port'], '--outbound-port needs a value'],
    [['--outbound-port', '--dry-run'], '--outbound-port needs a value'],
    [['--outbound-port=1', '--outbound-port=2'], '--outbound-port given more than once'],
    [['--inbound-port=15001'], '--inbound-port and --outbound-port must differ (both are 15001)'],
  ])('refuses %j with a message naming the flag and the value', (argv, message) => {
    expect(failure(...argv)).toBe(message);
  });

  it('reports every bad value at once', () => {
    expect(failure('--outbound-port=70000', '--exclude-outbound-ip-ranges=300.1.1.1/8')).toBe(
      'invalid --outbound-port value "70000": 70000 is out of the port range (1-65535); ' +
        'invalid --exclude-outbound-ip-ranges value "300.1.1.1/8": "300.1.1.1" is not an IPv4 or IPv6 address',
    );
  });
});

describe('iptablesHelp', () => {
  it('documents every flag', () => {
    const help = iptablesHelp();
    for (const flag of IPTABLES_FLAGS) expect(help).toContain(`--${flag.name}`);
  });

  it('fits in 100 columns', () => {
    for (const line of iptablesHelp().split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });

  it('lists only flags the parser knows', () => {
    const names = IPTABLES_FLAGS.map((f) => f.name).filter((n) => n !== 'help');
    for (const name of names) {
      const value = IPTABLES_FLAGS.find((f) => f.name === name)?.placeholder === undefined ? [] : ['1'];
      const result = parseIptablesFlags([`--${name}`, ...value]);
      expect(result.ok || !result.error.message.startsWith('unknown flag')).toBe(true);
    }
  });
});

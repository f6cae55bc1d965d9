import { TsmeshError } from '@tsmesh/common';
import { parseCaConfig, parseDuration, parseListen } from './config.js';

const LOCAL = ['--state-dir', '/var/lib/ca', '--token-file', '/etc/tokens.yaml'];

function badFlag(argv: string[]): string {
  try {
    parseCaConfig(argv, {});
  } catch (error) {
    expect((error as TsmeshError).code).toBe('TSMESH_ERR_BAD_FLAG');
    return (error as Error).message;
  }
  throw new Error('expected the flags to be refused');
}

describe('parseCaConfig', () => {
  it('fills in the defaults for local mode', () => {
    const config = parseCaConfig(LOCAL, {});
    expect(config).toMatchObject({
      listen: { host: '0.0.0.0', port: 15012 },
      stateDir: '/var/lib/ca',
      tokenFile: '/etc/tokens.yaml',
      trustDomain: 'cluster.local',
      defaultTtlSeconds: 86400,
      maxTtlSeconds: 172800,
      materialPollSeconds: 30,
      logLevel: 'info',
    });
    expect(config.servingSans).toEqual([
      { type: 'dns', value: 'tsmesh-ca' },
      { type: 'dns', value: 'tsmesh-ca.tsmesh-system.svc' },
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ]);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads every flag, in both --flag value and --flag=value forms', () => {
    const config = parseCaConfig(
      [
        '--root-cert=/pki/root.pem', '--intermediate-cert', '/pki/int.pem', '--intermediate-key', '/pki/int.key',
        '--extra-roots', '/pki/next-root.pem', '--listen', '[::]:8443', '--trust-domain', 'prod.example',
        '--max-ttl', '7d', '--default-ttl', '1h30m', '--serving-san', 'ca.example,10.0.0.9', '--serving-san=::1',
        '--kubeconfig', '/home/op/.kube/config', '--material-poll', '2s',
      ],
      { TSMESH_LOG_LEVEL: 'debug' },
    );
    expect(config).toMatchObject({
      listen: { host: '::', port: 8443 },
      rootCertFile: '/pki/root.pem',
      intermediateCertFile: '/pki/int.pem',
      intermediateKeyFile: '/pki/int.key',
      extraRootsFile: '/pki/next-root.pem',
      trustDomain: 'prod.example',
      maxTtlSeconds: 7 * 86400,
      defaultTtlSeconds: 5400,
      tokenFile: undefined,
      kubeconfig: '/home/op/.kube/config',
      materialPollSeconds: 2,
      logLevel: 'debug',
    });
    expect(config.servingSans.slice(4)).toEqual([
      { type: 'dns', value: 'ca.example' },
      { type: 'ip', value: '10.0.0.9' },
      { type: 'ip', value: '::1' },
    ]);
  });

  it('lowers the default lifetime to a smaller maximum', () => {
    expect(parseCaConfig([...LOCAL, '--max-ttl', '1h'], {}).defaultTtlSeconds).toBe(3600);
  });

  it('warns and falls back on an unknown log level', () => {
    const config = parseCaConfig(LOCAL, { TSMESH_LOG_LEVEL: 'loud' });
    expect(config.logLevel).toBe('info');
    expect(config.warnings).toEqual(['TSMESH_LOG_LEVEL="loud" is not a log level; using info']);
  });

  it.each([
    [[], 'needs --state-dir DIR'],
    [[...LOCAL, '--bogus'], 'unknown flag "--bogus"'],
    [[...LOCAL, 'extra'], 'unexpected argument "extra"'],
    [['--state-dir'], '--state-dir needs a value'],
    [[...LOCAL, '--state-dir', '/other'], '--state-dir given more than once'],
    [[...LOCAL, '--max-ttl', 'forever'], '--max-ttl "forever" is not a duration'],
    [[...LOCAL, '--material-poll', 'often'], '--material-poll "often" is not a duration'],
    [[...LOCAL, '--default-ttl', '72h'], '--default-ttl 72h is longer than --max-ttl 48h'],
    [[...LOCAL, '--trust-domain', 'Bad/Domain'], '--trust-domain "Bad/Domain" is not a valid trust domain'],
    [[...LOCAL, '--listen', 'localhost'], '--listen "localhost" is not HOST:PORT'],
    [[...LOCAL, '--listen', '0.0.0.0:70000'], '--listen "0.0.0.0:70000" is not HOST:PORT'],
    [[...LOCAL, '--serving-san', 'bad name!'], '--serving-san "bad name!" is neither a DNS name nor an IP address'],
    [[...LOCAL, '--root-key', '/k.pem'], '--root-key needs --root-cert'],
    [[...LOCAL, '--root-cert', '/r.pem', '--intermediate-cert', '/i.pem'], '--intermediate-cert and --intermediate-key go together'],
    [['--root-cert', '/r.pem'], '--root-cert needs either --root-key'],
    [[...LOCAL, '--intermediate-cert', '/i.pem', '--intermediate-key', '/k.pem'], '--intermediate-cert needs --root-cert'],
  ])('refuses %j with one clear line', (argv, expected) => {
    const message = badFlag(argv);
    expect(message).toContain(expected);
    expect(message).not.toContain('\n');
  });
});

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['30m', 1800],
    ['24h', 86400],
    ['7d', 604800],
    ['1h30m', 5400],
    ['1.5h', 5400],
  ])('reads %s as %d seconds', (text, seconds) => {
    expect(parseDuration(text, 'max-ttl')).toBe(seconds);
  });

  it.each([['24'], ['h'], ['-1h'], ['0s'], ['1w']])('refuses %s', (text) => {
    expect(() => parseDuration(text, 'max-ttl')).toThrow(/--max-ttl/);
  });
});

describe('parseListen', () => {
  it('reads an IPv6 address in brackets', () => {
    expect(parseListen('[::1]:15012')).toEqual({ host: '::1', port: 15012 });
  });
});

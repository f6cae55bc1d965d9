import { describe, expect, test } from '@jest/globals';
import { availableParallelism } from 'node:os';
import { ConfigError, MAX_CONCURRENCY, parseConcurrency, parseDurationMs, parseProxyConfig } from './config.js';

const refused = (argv: string[], env: Record<string, string> = {}): string => {
  try {
    parseProxyConfig(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected the configuration to be refused');
};

describe('parseProxyConfig', () => {
  test('defaults to the SPEC ports, capture on 0.0.0.0 and admin on 127.0.0.1, frozen', () => {
    const config = parseProxyConfig([], {});
    expect(config.outbound).toEqual({ host: '0.0.0.0', port: 15001 });
    expect(config.inbound).toEqual({ host: '0.0.0.0', port: 15006 });
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 15000 });
    expect(config.health).toEqual({ host: '0.0.0.0', port: 15020 });
    expect(config.detectTimeoutMs).toBe(300);
    expect(config.connectTimeoutMs).toBe(1000);
    expect(config.meshFile).toBeUndefined();
    expect(config.outboundTarget).toBeUndefined();
    expect(config.podNamespace).toBe('default');
    expect(config.logLevel).toBe('info');
    expect(config.concurrency).toBe(2);
    expect(Object.isFrozen(config)).toBe(true);
  });

  test('reads flags in both --flag value and --flag=value forms; listen ports may be 0', () => {
    const config = parseProxyConfig(['--config=/etc/mesh.yaml', '--outbound-port', '0', '--admin-port=0', '--bind', '127.0.0.1', '--detect-timeout', '1.5s', '--connect-timeout=250ms'], {});
    expect(config.meshFile).toBe('/etc/mesh.yaml');
    expect(config.outbound).toEqual({ host: '127.0.0.1', port: 0 });
    expect(config.admin.port).toBe(0);
    expect(config.detectTimeoutMs).toBe(1500);
    expect(config.connectTimeoutMs).toBe(250);
  });

  test('reads the mesh limits, and refuses a bad one naming the flag', () => {
    expect(parseProxyConfig([], {}).meshLimits).toEqual({ maxBytes: 16 * 1024 * 1024, maxDepth: 64 });
    expect(parseProxyConfig(['--mesh-max-bytes', '512Ki', '--mesh-max-depth=32'], {}).meshLimits).toEqual({ maxBytes: 512 * 1024, maxDepth: 32 });
    expect(parseProxyConfig(['--mesh-max-bytes', '1048576'], {}).meshLimits.maxBytes).toBe(1048576);
    expect(refused(['--mesh-max-bytes', 'lots'])).toBe('--mesh-max-bytes: "lots" is not a size from 1 byte to 1 GiB (e.g. 16Mi, 512Ki, 1048576)');
    expect(refused(['--mesh-max-bytes', '2Gi'])).toMatch(/^--mesh-max-bytes: "2Gi" is not a size/);
    expect(refused(['--mesh-max-depth', '0'])).toBe('--mesh-max-depth: "0" is not a depth from 1 to 10000');
    expect(refused(['--mesh-max-depth', '-3'])).toMatch(/^--mesh-max-depth: "-3"/);
  });

  test('reads explicit-port targets, IPv4 and bracketed IPv6', () => {
    const config = parseProxyConfig(['--outbound-target', '10.96.0.10:80', '--inbound-target', '[fd00::1]:8080'], {});
    expect(config.outboundTarget).toEqual({ address: '10.96.0.10', port: 80, family: 4 });
    expect(config.inboundTarget).toEqual({ address: 'fd00::1', port: 8080, family: 6 });
  });

  test('reads the sidecar environment', () => {
    const config = parseProxyConfig([], {
      TSMESH_POD_NAME: 'web-0',
      TSMESH_POD_NAMESPACE: 'shop',
      TSMESH_POD_IP: '10.0.0.5',
      TSMESH_SERVICE_ACCOUNT: 'web',
      TSMESH_LOG_LEVEL: 'debug',
      TSMESH_OPAQUE_PORTS: '3306, 5432',
      TSMESH_APP_PROBES: '{"app/livez":{"httpGet":{"port":8080}}}',
    });
    expect(config).toEqual(expect.objectContaining({ podName: 'web-0', podNamespace: 'shop', podIp: '10.0.0.5', serviceAccount: 'web', logLevel: 'debug' }));
    expect([...config.opaquePorts]).toEqual([3306, 5432]);
    expect(config.appProbes).toEqual({ 'app/livez': { httpGet: { port: 8080 } } });
  });

  test('refuses unknown flags, missing or empty values, bad ports and bad targets, naming them', () => {
    expect(refused(['--verbose'])).toContain('--verbose');
    expect(refused(['--config'])).toContain('--config needs a value');
    expect(refused(['--config='])).toContain('--config needs a value');
    expect(refused(['--outbound-port', '70000'])).toContain('--outbound-port');
    expect(refused(['--inbound-port', '-1'])).toContain('--inbound-port');
    expect(refused(['--outbound-target', '10.96.0.10'])).toContain('HOST:PORT');
    expect(refused(['--outbound-target', '10.96.0.10:0'])).toContain('--outbound-target');
  });

  test('refuses a bad log level, opaque port list or probe document', () => {
    expect(refused([], { TSMESH_LOG_LEVEL: 'loud' })).toContain('TSMESH_LOG_LEVEL');
    expect(refused([], { TSMESH_OPAQUE_PORTS: '3306,http' })).toContain('TSMESH_OPAQUE_PORTS');
    expect(refused([], { TSMESH_APP_PROBES: '{not json' })).toContain('TSMESH_APP_PROBES');
    expect(refused([], { TSMESH_APP_PROBES: 'null' })).toContain('TSMESH_APP_PROBES');
    expect(refused([], { TSMESH_APP_PROBES: '["app/livez"]' })).toContain('TSMESH_APP_PROBES');
  });
});

describe('parseDurationMs', () => {
  test.each([
    ['300ms', 300],
    ['1s', 1000],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['1m30s', 90_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDurationMs('--detect-timeout', text)).toBe(ms);
  });

  // One duration format for every tsmesh flag (common/src/flags.ts): a bare number has no unit and is refused.
  test.each(['0ms', '11m', 'soon', '1h', '-5s', '250'])('refuses %s', (text) => {
    expect(() => parseDurationMs('--detect-timeout', text)).toThrow(ConfigError);
  });
});

describe('--http-idle-timeout', () => {
  test('is five minutes by default and takes a duration up to a day', () => {
    expect(parseProxyConfig([], {}).httpIdleTimeoutMs).toBe(300_000);
    expect(parseProxyConfig(['--http-idle-timeout', '30s'], {}).httpIdleTimeoutMs).toBe(30_000);
    expect(() => parseProxyConfig(['--http-idle-timeout', '0'], {})).toThrow(/--http-idle-timeout: "0" must be between 1ms and 24h/);
  });
});

describe('--http1-engine', () => {
  test('is node by default, relay on request, and refuses anything else', () => {
    expect(parseProxyConfig([], {}).http1Engine).toBe('relay');
    expect(parseProxyConfig(['--http1-engine', 'relay'], {}).http1Engine).toBe('relay');
    expect(parseProxyConfig(['--http1-engine=node'], {}).http1Engine).toBe('node');
    expect(() => parseProxyConfig(['--http1-engine', 'undici'], {})).toThrow(/--http1-engine: "undici" is not an engine/);
  });
});

describe('TSMESH_HEAP_TRIM', () => {
  test('is on by default, off on request, and refuses anything else naming the variable', () => {
    expect(parseProxyConfig([], {}).heapTrim).toBe(true);
    expect(parseProxyConfig([], { TSMESH_HEAP_TRIM: 'on' }).heapTrim).toBe(true);
    expect(parseProxyConfig([], { TSMESH_HEAP_TRIM: 'off' }).heapTrim).toBe(false);
    expect(() => parseProxyConfig([], { TSMESH_HEAP_TRIM: 'no' })).toThrow('TSMESH_HEAP_TRIM: "no" is not on or off');
  });
});

describe('--tcp-idle-timeout', () => {
  test('is an hour by default, as in Envoy and Istio; 0 turns it off; up to a day', () => {
    expect(parseProxyConfig([], {}).tcpIdleTimeoutMs).toBe(3_600_000);
    expect(parseProxyConfig(['--tcp-idle-timeout', '0'], {}).tcpIdleTimeoutMs).toBe(0);
    expect(parseProxyConfig(['--tcp-idle-timeout=90s'], {}).tcpIdleTimeoutMs).toBe(90_000);
    expect(parseProxyConfig(['--tcp-idle-timeout', '24h'], {}).tcpIdleTimeoutMs).toBe(86_400_000);
  });

  test('refuses what is not a duration or more than a day, naming the flag', () => {
    expect(() => parseProxyConfig(['--tcp-idle-timeout', '25h'], {})).toThrow(/--tcp-idle-timeout: "25h" must be between 1ms and 24h/);
    expect(() => parseProxyConfig(['--tcp-idle-timeout', 'forever'], {})).toThrow(/--tcp-idle-timeout: "forever" is not a duration/);
  });
});

describe('--concurrency', () => {
  test('takes a number of event loops; 0 is one per core', () => {
    expect(parseProxyConfig(['--concurrency', '1'], {}).concurrency).toBe(1);
    expect(parseProxyConfig(['--concurrency=4'], {}).concurrency).toBe(4);
    expect(parseProxyConfig(['--concurrency', '0'], {}).concurrency).toBe(Math.min(availableParallelism(), MAX_CONCURRENCY));
    expect(parseConcurrency('0', 6)).toBe(6);
    expect(parseConcurrency('0', 500)).toBe(MAX_CONCURRENCY);
    expect(parseConcurrency(String(MAX_CONCURRENCY))).toBe(MAX_CONCURRENCY);
  });

  test.each(['-1', 'two', '1.5', String(MAX_CONCURRENCY + 1), ''])('refuses %p, naming the flag', (value) => {
    expect(refused([`--concurrency=${value}`])).toContain('--concurrency');
  });
});

describe('--zone and TSMESH_ZONE', () => {
  test('leave the zone to discovery by default', () => {
    expect(parseProxyConfig([], {}).zone).toBeUndefined();
  });

  test('take the zone from the flag over the variable', () => {
    expect(parseProxyConfig([], { TSMESH_ZONE: 'eu-west-1a' }).zone).toBe('eu-west-1a');
    expect(parseProxyConfig(['--zone', 'eu-west-1b'], { TSMESH_ZONE: 'eu-west-1a' }).zone).toBe('eu-west-1b');
  });

  test('refuse a zone that is not a Kubernetes label value, naming the setting', () => {
    expect(refused(['--zone', 'eu west'])).toBe('--zone: "eu west" is not a zone name (a label value: up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)');
    expect(refused([], { TSMESH_ZONE: '-a' })).toContain('TSMESH_ZONE: "-a" is not a zone name');
  });
});

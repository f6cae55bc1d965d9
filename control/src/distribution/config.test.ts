import { describe, expect, it } from '@jest/globals';
import { CONTROL_ERRORS } from '../errors.js';
import { controlPlaneConfig, distributionConfig, parseListenAddress } from './config.js';

const TLS = ['--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--trust-bundle', 'b.pem'];

function failure(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error('expected a failure');
}

describe('distributionConfig', () => {
  it('takes its flags out and leaves the discovery flags', () => {
    const { config, rest } = distributionConfig(['--config', 'mesh.yaml', ...TLS, '--listen=127.0.0.1:1234', '--log-level', 'debug'], {});
    expect(rest).toEqual(['--config', 'mesh.yaml', '--log-level', 'debug']);
    expect(config).toEqual({
      listen: { host: '127.0.0.1', port: 1234 },
      tlsCertFile: 'c.pem',
      tlsKeyFile: 'k.pem',
      trustBundleFile: 'b.pem',
      debugListen: { host: '127.0.0.1', port: 15011 },
      trustDomain: 'cluster.local',
      rootNamespace: 'tsmesh-system',
      debounceMs: 100,
      trustBundleConfigMap: 'tsmesh-ca-root-cert',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the trust bundle ConfigMap, or turns publishing off', () => {
    expect(distributionConfig([...TLS, '--trust-bundle-configmap', 'mesh-roots'], {}).config.trustBundleConfigMap).toBe('mesh-roots');
    expect(distributionConfig(TLS, { TSMESH_CONTROL_TRUST_BUNDLE_CONFIGMAP: 'off' }).config.trustBundleConfigMap).toBeUndefined();
  });

  it('reads the environment when a flag is absent, and a flag wins', () => {
    const env = {
      TSMESH_CONTROL_TLS_CERT: 'env-c.pem',
      TSMESH_CONTROL_TLS_KEY: 'env-k.pem',
      TSMESH_CONTROL_TRUST_BUNDLE: 'env-b.pem',
      TSMESH_CONTROL_LISTEN: '[::]:15010',
      TSMESH_CONTROL_DEBUG_LISTEN: 'off',
      TSMESH_TRUST_DOMAIN: 'example.org',
    };
    const { config } = distributionConfig(['--tls-key', 'flag-k.pem'], env);
    expect(config).toMatchObject({ tlsCertFile: 'env-c.pem', tlsKeyFile: 'flag-k.pem', listen: { host: '::', port: 15010 }, debugListen: undefined, trustDomain: 'example.org' });
  });

  it('names a missing TLS file flag', () => {
    const error = failure(() => distributionConfig(['--tls-cert', 'c.pem'], {}));
    expect(error.code).toBe(CONTROL_ERRORS.BAD_FLAG);
    expect(error.message).toMatch(/^--tls-key is required/);
  });

  it.each([
    [['--listen', 'nowhere'], /--listen: "nowhere" is not HOST:PORT/],
    [['--listen', '1.2.3.4:70000'], /--listen: "1.2.3.4:70000" is not HOST:PORT/],
    [['--debug-listen'], /--debug-listen needs a value/],
    [['--trust-domain', 'Bad Domain'], /--trust-domain: "Bad Domain" is not a SPIFFE trust domain/],
    [['--root-namespace', 'Not_A_Namespace'], /--root-namespace: "Not_A_Namespace" is not a namespace name/],
    [['--debounce-ms', '-5'], /--debounce-ms: "-5" is not a number of milliseconds/],
    [['--trust-bundle-configmap', 'Roots_Here'], /--trust-bundle-configmap: "Roots_Here" is not a ConfigMap name \(or "off"\)/],
  ])('refuses %j', (flags, message) => {
    expect(failure(() => distributionConfig([...TLS, ...flags], {})).message).toMatch(message);
  });

  it('parses host:port and [v6]:port', () => {
    expect(parseListenAddress('listen', '0.0.0.0:0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseListenAddress('listen', '[fd00::1]:15010')).toEqual({ host: 'fd00::1', port: 15010 });
    expect(() => parseListenAddress('listen', ':15010')).toThrow(/not HOST:PORT/);
  });
});

describe('controlPlaneConfig', () => {
  it('combines the discovery and distribution settings', () => {
    const config = controlPlaneConfig([...TLS, '--config', 'mesh.yaml'], {});
    expect(config.discovery.source).toEqual({ kind: 'file', path: 'mesh.yaml', limits: { maxBytes: 16 * 1024 * 1024, maxDepth: 64 } });
    expect(config.distribution.tlsCertFile).toBe('c.pem');
  });

  it('leaves unknown flags for the discovery config to refuse', () => {
    expect(failure(() => controlPlaneConfig([...TLS, '--bogus'], {})).message).toMatch(/bogus/);
  });
});

import { describe, expect, it } from '@jest/globals';
import { controlPlaneConfig, parseListenAddress } from './config.js';
import { CONTROL_ERRORS } from './errors.js';

const TLS = ['--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--trust-bundle', 'b.pem'];

function failure(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error('expected a failure');
}

describe('controlPlaneConfig: discovery', () => {
  const discovery = (argv: readonly string[], env: Record<string, string> = {}) => controlPlaneConfig([...TLS, ...argv], env).discovery;

  it('reads from Kubernetes with the default kubeconfig when nothing is given', () => {
    expect(discovery([])).toEqual({ source: { kind: 'kubernetes', kubeconfig: undefined }, logLevel: 'info' });
  });

  it('reads a mesh file with --config, with its size and depth limits', () => {
    expect(discovery(['--config', '/etc/mesh.yaml']).source).toEqual({ kind: 'file', path: '/etc/mesh.yaml', limits: { maxBytes: 16 * 1024 * 1024, maxDepth: 64 } });
    const limited = discovery(['--config', '/etc/mesh.yaml', '--mesh-max-bytes', '1Mi'], { TSMESH_CONTROL_MESH_MAX_DEPTH: '20' });
    expect(limited.source).toEqual({ kind: 'file', path: '/etc/mesh.yaml', limits: { maxBytes: 1024 * 1024, maxDepth: 20 } });
  });

  it('takes a flag over its environment variable', () => {
    const config = discovery(['--kubeconfig', '/a'], { TSMESH_CONTROL_KUBECONFIG: '/b', TSMESH_CONTROL_LOG_LEVEL: 'debug' });
    expect(config).toEqual({ source: { kind: 'kubernetes', kubeconfig: '/a' }, logLevel: 'debug' });
  });

  it('returns frozen objects', () => {
    const config = controlPlaneConfig(TLS, {});
    expect([Object.isFrozen(config), Object.isFrozen(config.discovery), Object.isFrozen(config.distribution)]).toEqual([true, true, true]);
  });
});

describe('controlPlaneConfig: distribution', () => {
  it('reads every distribution flag, in either form, next to the discovery flags', () => {
    const config = controlPlaneConfig(['--config', 'mesh.yaml', ...TLS, '--listen=127.0.0.1:1234', '--log-level', 'debug'], {});
    expect(config.discovery).toEqual({ source: { kind: 'file', path: 'mesh.yaml', limits: { maxBytes: 16 * 1024 * 1024, maxDepth: 64 } }, logLevel: 'debug' });
    expect(config.distribution).toEqual({
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
  });

  it('names the trust bundle ConfigMap, or turns publishing off', () => {
    expect(controlPlaneConfig([...TLS, '--trust-bundle-configmap', 'mesh-roots'], {}).distribution.trustBundleConfigMap).toBe('mesh-roots');
    expect(controlPlaneConfig(TLS, { TSMESH_CONTROL_TRUST_BUNDLE_CONFIGMAP: 'off' }).distribution.trustBundleConfigMap).toBeUndefined();
  });

  it('reads the debounce in the duration format every tsmesh program uses', () => {
    expect(controlPlaneConfig([...TLS, '--debounce', '0'], {}).distribution.debounceMs).toBe(0);
    expect(controlPlaneConfig([...TLS, '--debounce=1.5s'], {}).distribution.debounceMs).toBe(1500);
    expect(controlPlaneConfig(TLS, { TSMESH_CONTROL_DEBOUNCE: '250ms' }).distribution.debounceMs).toBe(250);
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
    const { distribution } = controlPlaneConfig(['--tls-key', 'flag-k.pem'], env);
    expect(distribution).toMatchObject({ tlsCertFile: 'env-c.pem', tlsKeyFile: 'flag-k.pem', listen: { host: '::', port: 15010 }, debugListen: undefined, trustDomain: 'example.org' });
  });

  it('names a missing TLS file flag', () => {
    const error = failure(() => controlPlaneConfig(['--tls-cert', 'c.pem'], {}));
    expect(error.code).toBe(CONTROL_ERRORS.BAD_FLAG);
    expect(error.message).toMatch(/^--tls-key is required/);
  });

  it('parses host:port and [v6]:port', () => {
    expect(parseListenAddress('listen', '0.0.0.0:0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseListenAddress('listen', '[fd00::1]:15010')).toEqual({ host: 'fd00::1', port: 15010 });
    expect(() => parseListenAddress('listen', ':15010')).toThrow(/not HOST:PORT/);
  });
});

describe('controlPlaneConfig refuses', () => {
  it.each([
    [['--config', 'a', '--kubeconfig', 'b'], /exclude each other/],
    [['--log-level', 'loud'], /--log-level: "loud" is not valid/],
    [['--watch'], /unknown flag "--watch"/],
    [['--bogus'], /bogus/],
    [['positional'], /unexpected argument "positional"/],
    [['--listen', 'a:1', '--listen', 'b:2'], /--listen given more than once/],
    [['--config', 'a', '--mesh-max-bytes', '16MB'], /--mesh-max-bytes: "16MB" is not a size/],
    [['--config', 'a', '--mesh-max-depth', 'deep'], /--mesh-max-depth: "deep" is not a depth from 1 to 10000/],
    [['--listen', 'nowhere'], /--listen: "nowhere" is not HOST:PORT/],
    [['--listen', '1.2.3.4:70000'], /--listen: "1.2.3.4:70000" is not HOST:PORT/],
    [['--debug-listen'], /--debug-listen needs a value/],
    [['--trust-domain', 'Bad Domain'], /--trust-domain: "Bad Domain" is not a SPIFFE trust domain/],
    [['--root-namespace', 'Not_A_Namespace'], /--root-namespace: "Not_A_Namespace" is not a namespace name/],
    [['--debounce', '-5'], /--debounce: "-5" is not a duration/],
    [['--debounce', '100'], /--debounce: "100" is not a duration/],
    [['--debounce', '2m'], /--debounce: "2m" must be between 0ms and 1m/],
    [['--debounce-ms', '100'], /unknown flag "--debounce-ms"/],
    [['--trust-bundle-configmap', 'Roots_Here'], /--trust-bundle-configmap: "Roots_Here" is not a ConfigMap name \(or "off"\)/],
  ])('%j', (flags, message) => {
    const error = failure(() => controlPlaneConfig([...TLS, ...flags], {}));
    expect(error.code).toBe(CONTROL_ERRORS.BAD_FLAG);
    expect(error.message).toMatch(message);
  });
});

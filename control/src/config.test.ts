import { describe, expect, it } from '@jest/globals';
import { controlConfig } from './config.js';
import { CONTROL_ERRORS } from './errors.js';

describe('controlConfig', () => {
  it('reads from Kubernetes with the default kubeconfig when nothing is given', () => {
    expect(controlConfig([], {})).toEqual({ source: { kind: 'kubernetes', kubeconfig: undefined }, logLevel: 'info' });
  });

  it('reads a mesh file with --config, with its size and depth limits', () => {
    expect(controlConfig(['--config', '/etc/mesh.yaml'], {}).source).toEqual({ kind: 'file', path: '/etc/mesh.yaml', limits: { maxBytes: 16 * 1024 * 1024, maxDepth: 64 } });
    const limited = controlConfig(['--config', '/etc/mesh.yaml', '--mesh-max-bytes', '1Mi'], { TSMESH_CONTROL_MESH_MAX_DEPTH: '20' });
    expect(limited.source).toEqual({ kind: 'file', path: '/etc/mesh.yaml', limits: { maxBytes: 1024 * 1024, maxDepth: 20 } });
  });

  it('takes a flag over its environment variable', () => {
    const config = controlConfig(['--kubeconfig', '/a'], { TSMESH_CONTROL_KUBECONFIG: '/b', TSMESH_CONTROL_LOG_LEVEL: 'debug' });
    expect(config).toEqual({ source: { kind: 'kubernetes', kubeconfig: '/a' }, logLevel: 'debug' });
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(controlConfig([], {}))).toBe(true);
  });

  it.each([
    [['--config', 'a', '--kubeconfig', 'b'], 'exclude each other'],
    [['--log-level', 'loud'], '--log-level: "loud" is not valid'],
    [['--watch'], "Unknown option '--watch'"],
    [['--config', 'a', '--mesh-max-bytes', '16MB'], '--mesh-max-bytes: "16MB" is not a size'],
    [['--config', 'a', '--mesh-max-depth', 'deep'], '--mesh-max-depth: "deep" is not a depth from 1 to 10000'],
  ])('refuses %j', (argv, message) => {
    expect(() => controlConfig(argv, {})).toThrow(expect.objectContaining({ code: CONTROL_ERRORS.BAD_FLAG, message: expect.stringContaining(message) }));
  });
});

// The flags several commands share: the argument loop's two value forms, and each shared flag's
// accepted values and its one-line error.
import { describe, expect, it } from '@jest/globals';
import { UsageError } from './command.js';
import { argumentsOf, controlNamespaceFlag, durationFlag, kubeconfigFlag } from './flags.js';

describe('argumentsOf', () => {
  it('reads a value after = or from the next argument, which it then skips', () => {
    const seen: [string, boolean, string | undefined][] = [];
    for (const a of argumentsOf(['--timeout=2s', '--kubeconfig', 'k.yaml', 'clusters', '--pre'])) {
      seen.push([a.flag, a.inline, a.flag.startsWith('--') && a.flag !== '--pre' ? a.value() : undefined]);
    }
    expect(seen).toEqual([
      ['--timeout', true, '2s'],
      ['--kubeconfig', false, 'k.yaml'],
      ['clusters', false, undefined],
      ['--pre', false, undefined],
    ]);
  });

  it('keeps = in a single-dash or positional argument, and gives undefined past the end', () => {
    const [short, last] = [...argumentsOf(['-o=json', '--level'])];
    expect([short?.flag, short?.inline]).toEqual(['-o=json', false]);
    expect(last?.value()).toBeUndefined();
  });
});

describe('the shared flags', () => {
  it('reads durations from 1ms to 600s, in milliseconds', () => {
    expect([durationFlag('--timeout', '1ms'), durationFlag('--timeout', '2s'), durationFlag('--timeout', '600s')]).toEqual([1, 2000, 600_000]);
    for (const bad of ['0ms', '601s', '5m', '', undefined]) {
      expect(() => durationFlag('--timeout', bad)).toThrow(new UsageError(`--timeout: "${bad ?? ''}" is not a duration from 1ms to 600s (e.g. 2s, 500ms)`));
    }
  });

  it('wants a file for --kubeconfig and a namespace name for --control-namespace', () => {
    expect(kubeconfigFlag('k.yaml')).toBe('k.yaml');
    expect(() => kubeconfigFlag('')).toThrow(new UsageError('--kubeconfig needs a file'));
    expect(controlNamespaceFlag('mesh-system')).toBe('mesh-system');
    expect(() => controlNamespaceFlag('Mesh_System')).toThrow(new UsageError('--control-namespace: "Mesh_System" is not a namespace name'));
    expect(() => controlNamespaceFlag(undefined)).toThrow(new UsageError('--control-namespace: "" is not a namespace name'));
  });
});

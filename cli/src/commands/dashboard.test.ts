import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../command.js';
import { writeDemoState } from '../dashboard/demo-state.js';
import { DEFAULT_LISTEN, parseDashboardFlags } from './dashboard.js';

describe('tsmesh dashboard flags', () => {
  test('binds loopback by default and names each --sidecar', () => {
    const flags = parseDashboardFlags(['--sidecar', 'client=10.0.0.1:15020', '--sidecar', 'unix:/tmp/s.sock']);
    expect(DEFAULT_LISTEN.startsWith('127.0.0.1:')).toBe(true);
    expect(flags.listen.host).toBe('127.0.0.1');
    expect(flags.targets).toEqual([
      { name: 'client', address: '10.0.0.1:15020' },
      { name: 'unix:/tmp/s.sock', address: 'unix:/tmp/s.sock' },
    ]);
    expect(flags.intervalMs).toBe(1000);
  });

  test('--from-demo reads the sidecars and the span file the demo wrote', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dash-')), 'demo.json');
    writeDemoState(file, { sidecars: [{ name: 'client', namespace: 'demo', metrics: 'unix:/x.sock' }], spansFile: '/x/spans.jsonl' });
    const flags = parseDashboardFlags(['--from-demo', file, '--listen', '127.0.0.1:0']);
    expect(flags.targets).toEqual([{ name: 'client.demo', address: 'unix:/x.sock' }]);
    expect(flags.spansFile).toBe('/x/spans.jsonl');
    expect(flags.listen.port).toBe(0);
  });

  test.each([
    [[], 'nothing to watch'],
    [['--sidecar', 'nowhere'], '"nowhere" is not HOST:PORT'],
    [['--sidecar', 'a:1', '--listen', 'x'], '--listen: "x"'],
    [['--sidecar', 'a:1', '--interval', '10ms'], '--interval: "10ms"'],
    [['--sidecar', 'a:1', '--zipkin', 'javascript:alert(1)'], 'is not an http(s) URL'],
    [['--sidecar', 'a:1', '--spans-file', 'f', '--zipkin', 'http://z:9411'], 'exclude each other'],
    [['--from-demo', '/nonexistent/demo.json'], 'no such file'],
    [['--bogus'], 'unexpected argument "--bogus"'],
  ])('refuses %j with a usage error naming what is wrong', (argv, message) => {
    expect(() => parseDashboardFlags(argv)).toThrow(UsageError);
    expect(() => parseDashboardFlags(argv)).toThrow(message);
  });

  test('refuses a state file that is not one', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dash-')), 'demo.json');
    writeFileSync(file, JSON.stringify({ version: 1, sidecars: [{ name: 'x' }] }));
    expect(() => parseDashboardFlags(['--from-demo', file])).toThrow('"sidecars" must be a non-empty list');
  });
});

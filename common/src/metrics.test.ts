import { describe, expect, it } from '@jest/globals';
import { Counter } from 'prom-client';
import { componentRegistry, packageVersion, renderMetrics } from './metrics.js';

describe('componentRegistry', () => {
  it('carries tsmesh_build_info for the component and renders in Prometheus text format', async () => {
    const registry = componentRegistry({ component: 'ca', version: '1.2.3', defaultMetrics: false });
    new Counter({ name: 'tsmesh_test_total', help: 'a test counter', registers: [registry] }).inc(2);
    const { contentType, body } = await renderMetrics(registry);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(body).toContain(`tsmesh_build_info{component="ca",version="1.2.3",node_version="${process.version}"} 1`);
    expect(body).toContain('tsmesh_test_total 2');
    expect(body).not.toContain('process_cpu_user_seconds_total');
  });

  it('adds the process metrics by default, in a registry of its own each time', async () => {
    const first = componentRegistry({ component: 'control', version: '0' });
    const second = componentRegistry({ component: 'injector', version: '0' });
    expect((await renderMetrics(first)).body).toContain('process_cpu_user_seconds_total');
    expect((await renderMetrics(second)).body).toContain('component="injector"');
    expect((await renderMetrics(second)).body).not.toContain('component="control"');
  });
});

describe('packageVersion', () => {
  it('reads the version of a package.json, and says unknown without one', () => {
    expect(packageVersion(new URL('../package.json', import.meta.url))).toMatch(/^\d+\.\d+\.\d+/);
    expect(packageVersion(new URL('./no-such-package.json', import.meta.url))).toBe('unknown');
  });
});

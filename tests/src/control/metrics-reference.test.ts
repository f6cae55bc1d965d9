// docs/reference.md's table of the control plane's, the CA's and the injector's metrics against
// what each registers: every tsmesh_* family with its type and labels, and nothing they lack.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { CaMetrics } from '@tsmesh/ca';
import { ControlMetrics } from '@tsmesh/control';
import { InjectorMetrics } from '@tsmesh/injector';

type Registry = ControlMetrics['registry'];

const doc = readFileSync(new URL('../../../docs/reference.md', import.meta.url), 'utf8');

interface Family {
  readonly name: string;
  readonly type: string;
  readonly labels: readonly string[];
}

function documented(): Family[] {
  const start = doc.indexOf('\n## Control-plane, CA and injector metrics\n');
  expect(start).toBeGreaterThan(0);
  const end = doc.indexOf('\n## ', start + 1);
  const rows = doc.slice(start, end < 0 ? undefined : end).split('\n').filter((line) => line.startsWith('| `tsmesh_'));
  return rows.map((row) => {
    const [name, type, labels] = row.slice(1, -1).split('|').map((cell) => cell.trim());
    return { name: (name ?? '').replaceAll('`', ''), type: type ?? '', labels: [...(labels ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '') };
  });
}

async function registered(registry: Registry): Promise<Family[]> {
  return (await registry.getMetricsAsJSON())
    .filter((m) => m.name !== 'tsmesh_build_info')
    .map((m) => ({ name: m.name, type: String(m.type), labels: (registry.getSingleMetric(m.name) as unknown as { labelNames: string[] }).labelNames }));
}

describe('docs/reference.md: control-plane, CA and injector metrics', () => {
  it('lists exactly the families the three register, with their types and labels', async () => {
    const families = [
      ...(await registered(new ControlMetrics({ defaultMetrics: false }).registry)),
      ...(await registered(new CaMetrics({ defaultMetrics: false }).registry)),
      ...(await registered(new InjectorMetrics({ defaultMetrics: false }).registry)),
    ];
    const byName = (list: Family[]): Family[] => [...list].sort((a, b) => a.name.localeCompare(b.name)).map((f) => ({ ...f, labels: [...f.labels].sort() }));
    expect(byName(documented())).toEqual(byName(families));
  });
});

// docs/reference.md against the code: the commands part is what the CLI prints, and the
// annotations, ports, environment variables and custom resources are those the programs use.
// (The metrics table is checked in the proxy package, against the sidecar's own registry.)
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { LOAD_BALANCER_ANNOTATION, LOCALITY_ANNOTATION, STATUS_ANNOTATION } from '@tsmesh/common';
import { ANNOTATIONS, INJECTION_NAMESPACE_LABEL, PROXY_PORTS } from '@tsmesh/injector';
import YAML from 'yaml';
import { findCommand } from '../registry.js';
import { commandsSection, replaceSection } from './commands.js';
import { codeSpans, readReference, section, tableRows } from './markdown.js';

const ROOT = new URL('../../../', import.meta.url);
const doc = readReference();

describe('docs/reference.md', () => {
  it("has every command's usage exactly as the CLI prints it (else: npm run reference)", async () => {
    const generated = replaceSection(doc, await commandsSection());
    // One comparison of the whole file: a difference shows where the reference is behind.
    expect(doc).toBe(generated);
  }, 60_000);

  it('lists the labels and annotations the injector and the mesh read, and no other', () => {
    const names = tableRows(section(doc, 'Labels and annotations')).map((cells) => codeSpans(cells[0] ?? '')[0]);
    expect(new Set(names)).toEqual(new Set([INJECTION_NAMESPACE_LABEL, ...Object.values(ANNOTATIONS), STATUS_ANNOTATION, LOAD_BALANCER_ANNOTATION, LOCALITY_ANNOTATION]));
    expect(names.length).toBe(new Set(names).size);
  });

  it("lists the sidecar's ports as the injector declares them, and each other port where its command's usage says", async () => {
    const rows = tableRows(section(doc, 'Ports and endpoints')).filter((cells) => /^\d+$/.test(cells[0] ?? ''));
    const sidecar = rows.filter((cells) => cells[1] === 'sidecar').map((cells) => Number(cells[0]));
    // The ports the injector declares on the container, and the admin port (loopback, undeclared).
    const admin = /--admin-port N .*\(default (\d+)\)/.exec((await findCommand('proxy')!.load()).help)?.[1];
    expect(sidecar.sort()).toEqual([...PROXY_PORTS.map((port) => port.containerPort), Number(admin)].sort());
    const owner: Record<string, string> = { 'control plane': 'control', CA: 'ca', injector: 'injector' };
    const others = rows.filter((cells) => cells[1] !== 'sidecar');
    expect(new Set(others.map((cells) => cells[1]))).toEqual(new Set(Object.keys(owner)));
    for (const [port, component] of others) {
      const help = (await findCommand(owner[component ?? '']!)!.load()).help;
      expect({ port, component, inUsage: help.includes(`:${port}`) }).toEqual({ port, component, inUsage: true });
    }
  });

  it('lists, per program, exactly the environment variables its config.ts reads', () => {
    const programs: Record<string, string[]> = {
      '`tsmesh proxy` (the sidecar; set by the injector, or by hand outside Kubernetes)': ['proxy/src/config.ts', 'proxy/src/telemetry/config.ts'],
      '`tsmesh control`': ['control/src/config.ts'],
      '`tsmesh ca`': ['ca/src/config.ts'],
      '`tsmesh injector`': ['injector/src/config.ts'],
    };
    for (const [title, files] of Object.entries(programs)) {
      const read = new Set<string>();
      for (const file of files) {
        for (const m of readFileSync(new URL(file, ROOT), 'utf8').matchAll(/'(TSMESH_[A-Z0-9_]*[A-Z0-9])'/g)) {
          if (!m[1]!.startsWith('TSMESH_ERR_')) read.add(m[1]!);
        }
      }
      const documented = tableRows(section(section(doc, 'Environment variables'), title)).map((cells) => codeSpans(cells[0] ?? '')[0]);
      expect({ title, variables: [...new Set(documented)].sort() }).toEqual({ title, variables: [...read].sort() });
    }
  });

  it("lists the chart's custom resources with their group, version, short name and spec fields", () => {
    const dir = new URL('charts/tsmesh/templates/', ROOT);
    const crds = readdirSync(dir)
      .filter((file) => file.startsWith('crd-'))
      .map((file) => {
        // The templates are YAML once Helm's comments and directives are taken out.
        const text = readFileSync(new URL(file, dir), 'utf8')
          .replace(/\{\{-? *\/\*[\s\S]*?\*\/ *-?\}\}/g, '')
          .split('\n')
          .filter((line) => !line.includes('{{'))
          .join('\n');
        const crd = YAML.parse(text) as {
          spec: { group: string; names: { kind: string; shortNames?: string[] }; versions: Array<{ name: string; schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } } }> };
        };
        return crd.spec.versions.map((version) => ({
          kind: crd.spec.names.kind,
          apiVersion: `${crd.spec.group}/${version.name}`,
          shortNames: crd.spec.names.shortNames ?? [],
          fields: Object.keys(version.schema.openAPIV3Schema.properties.spec.properties).sort(),
          schema: `charts/tsmesh/templates/${file}`,
        }));
      })
      .flat();
    expect(crds.length).toBeGreaterThanOrEqual(3);
    const table = tableRows(section(doc, 'Custom resources and the kinds tsmesh reads')).filter((cells) => cells.length === 5);
    const documented = table.map(([kind, apiVersion, shortNames, fields, schema]) => ({
      kind: codeSpans(kind!)[0],
      apiVersion: codeSpans(apiVersion!)[0],
      shortNames: codeSpans(shortNames!),
      fields: codeSpans(fields!).sort(),
      schema: codeSpans(schema!)[0],
    }));
    const byKind = (a: { kind?: string }, b: { kind?: string }): number => (a.kind ?? '').localeCompare(b.kind ?? '');
    expect(documented.sort(byKind)).toEqual(crds.sort(byKind));
    for (const { schema } of documented) expect(existsSync(new URL(schema!, ROOT))).toBe(true);
  });
});

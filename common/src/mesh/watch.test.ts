import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MESH_ERRORS } from '../errors.js';
import type { MeshLimits, ParseBudget } from './limits.js';
import type { MeshSnapshot } from './types.js';
import { MeshFileSource } from './watch.js';

const sampleText = await readFile(new URL('./testdata/sample-mesh.yaml', import.meta.url), 'utf8');

const serviceDoc = (name: string, ip: string): string =>
  `---\napiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: demo}\nspec:\n  clusterIP: ${ip}\n  ports: [{name: http, port: 80}]\n`;

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `work` and answers the longest the event loop held the main thread without running a 2 ms
 * timer meanwhile, in milliseconds of the main thread's own CPU time: time the thread spent
 * descheduled on a busy machine is not a stall the code caused, so it does not count.
 */
async function longestStall(work: () => Promise<void>): Promise<number> {
  const cpuMs = (): number => {
    const { user, system } = process.threadCpuUsage();
    return (user + system) / 1000;
  };
  let last = cpuMs();
  let longest = 0;
  const tick = setInterval(() => {
    const now = cpuMs();
    longest = Math.max(longest, now - last);
    last = now;
  }, 2);
  try {
    await work();
  } finally {
    clearInterval(tick);
  }
  return Math.max(longest, cpuMs() - last);
}

const MiB = 1024 * 1024;

/** About `bytes` of valid YAML: Services with cluster IPs from 10.96.0.0/16 on. */
function largeYaml(bytes: number): string {
  const count = Math.ceil(bytes / 150);
  return Array.from({ length: count }, (_, i) => serviceDoc(`svc-${i}`, `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`)).join('');
}

describe('MeshFileSource', () => {
  let dir: string;
  let file: string;
  let logLines: string[];
  let sources: MeshFileSource[];

  const source = (debounceMs = 30, limits?: Partial<MeshLimits>, budget?: Partial<ParseBudget>): MeshFileSource => {
    const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    const created = new MeshFileSource(file, { debounceMs, log, limits, budget });
    sources.push(created);
    return created;
  };

  async function started(s: MeshFileSource): Promise<MeshSnapshot> {
    const first = await s.start();
    if (!first.ok) throw first.error;
    return first.value;
  }

  /** Collects the snapshots a source publishes. */
  function collect(s: MeshFileSource): MeshSnapshot[] {
    const seen: MeshSnapshot[] = [];
    s.subscribe((snapshot) => seen.push(snapshot));
    return seen;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-mesh-'));
    file = join(dir, 'mesh.yaml');
    logLines = [];
    sources = [];
    await writeFile(file, sampleText);
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('starts with the snapshot of the file', async () => {
    const s = source();
    const first = await started(s);
    expect(first.services.map((svc) => svc.name)).toEqual(['greeter', 'web']);
    expect(s.current()).toBe(first);
    expect(s.lastError()).toBeUndefined();
  });

  it('fails to start on an invalid file, with the reason', async () => {
    await writeFile(file, 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n');
    const first = await source().start();
    expect(first.ok).toBe(false);
    if (first.ok) return;
    expect(first.error.code).toBe(MESH_ERRORS.MESH_UNKNOWN_KIND);
    expect(first.error.message).toContain(`${file}:1: document 1 (Deployment default/web): kind: unknown kind "Deployment"`);
  });

  it('fails to start on a missing file, naming it', async () => {
    await rm(file);
    const first = await source().start();
    expect(!first.ok && first.error.message).toMatch(new RegExp(`^${file}: cannot read the file: ENOENT`));
  });

  it('publishes a new snapshot when the file is rewritten in place', async () => {
    const s = source();
    const first = await started(s);
    const seen = collect(s);
    await writeFile(file, sampleText + serviceDoc('extra', '10.96.0.99'));
    await waitFor(() => seen.length === 1, 'a new snapshot');
    expect(seen[0]?.version).not.toBe(first.version);
    expect(seen[0]?.resolve('10.96.0.99', 80).kind).toBe('service');
    expect(s.current()).toBe(seen[0]);
  });

  it('follows an atomic rename-replace, more than once', async () => {
    const s = source();
    await started(s);
    const seen = collect(s);
    for (const [i, ip] of ['10.96.0.91', '10.96.0.92'].entries()) {
      const temporary = join(dir, `.mesh.yaml.${i}.tmp`);
      await writeFile(temporary, sampleText + serviceDoc('extra', ip));
      await rename(temporary, file);
      await waitFor(() => seen.length === i + 1, `snapshot ${i + 1}`);
      expect(s.current()?.resolve(ip, 80).kind).toBe('service');
    }
  });

  it('keeps the last good snapshot when a change is invalid, logs why, and recovers', async () => {
    const s = source();
    const good = await started(s);
    const seen = collect(s);
    await writeFile(file, sampleText + '---\napiVersion: v1\nkind: Service\nmetadata: {name: broken}\nspec:\n  ports: [{port: 0}]\n');
    await waitFor(() => s.lastError() !== undefined, 'the refusal');
    expect(s.current()).toBe(good);
    expect(seen).toEqual([]);
    expect(s.lastError()?.message).toContain('(Service default/broken): spec.ports[0].port: must be an integer from 1 to 65535, got 0');
    const logged = logLines.map((line) => JSON.parse(line) as { level: number; msg: string; reason?: string });
    expect(logged).toContainEqual(
      expect.objectContaining({ level: 50, msg: 'mesh file refused; the last good mesh stays in force', reason: s.lastError()?.message }),
    );
    // The snapshot in force still answers.
    expect(s.current()?.resolve('10.96.0.20', 50051).kind).toBe('service');

    await writeFile(file, sampleText + serviceDoc('fixed', '10.96.0.93'));
    await waitFor(() => seen.length === 1, 'the recovered snapshot');
    expect(s.lastError()).toBeUndefined();
    expect(seen[0]?.resolve('10.96.0.93', 80).kind).toBe('service');
  });

  it('keeps the last good snapshot on a YAML syntax error and when the file disappears', async () => {
    const s = source();
    const good = await started(s);
    await writeFile(file, 'kind: [unclosed\n');
    await waitFor(() => s.lastError()?.code === MESH_ERRORS.MESH_PARSE, 'the syntax error');
    expect(s.lastError()?.message).toContain('YAML syntax error');
    await rm(file);
    await waitFor(() => s.lastError()?.message.includes('ENOENT') === true, 'the missing file');
    expect(s.current()).toBe(good);
  });

  it('refuses a file truncated to zero bytes rather than emptying the mesh', async () => {
    const s = source();
    const good = await started(s);
    await writeFile(file, '');
    await waitFor(() => s.lastError() !== undefined, 'the refusal');
    expect(s.lastError()?.reason).toContain('the file is empty');
    expect(s.current()).toBe(good);
  });

  it('empties the mesh when the file deliberately holds no objects', async () => {
    const s = source();
    await started(s);
    const seen = collect(s);
    await writeFile(file, '# no workloads for now\n');
    await waitFor(() => seen.length === 1, 'the empty snapshot');
    expect(seen[0]?.services).toEqual([]);
  });

  it('publishes one snapshot for a burst of writes, with the last content', async () => {
    const s = source(100);
    await started(s);
    const seen = collect(s);
    for (const ip of ['10.96.0.81', '10.96.0.82', '10.96.0.83']) await writeFile(file, sampleText + serviceDoc('extra', ip));
    await waitFor(() => seen.length === 1, 'the snapshot');
    await pause(250);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.resolve('10.96.0.83', 80).kind).toBe('service');
  });

  it('publishes nothing when only comments change', async () => {
    const s = source();
    const first = await started(s);
    const seen = collect(s);
    await writeFile(file, `# edited\n${sampleText}`);
    await pause(150);
    expect(seen).toEqual([]);
    expect(s.current()).toBe(first);
    expect(s.lastError()).toBeUndefined();
  });

  it('publishes nothing after close', async () => {
    const s = source();
    await started(s);
    const seen = collect(s);
    await s.close();
    await writeFile(file, sampleText + serviceDoc('late', '10.96.0.94'));
    await pause(150);
    expect(seen).toEqual([]);
  });

  it('stops calling a listener once it unsubscribes, and survives a listener that throws', async () => {
    const s = source();
    await started(s);
    const calls: string[] = [];
    const unsubscribe = s.subscribe(() => calls.push('first'));
    s.subscribe(() => {
      throw new Error('listener bug');
    });
    s.subscribe((snapshot) => calls.push(snapshot.version));
    await writeFile(file, sampleText + serviceDoc('a', '10.96.0.95'));
    await waitFor(() => calls.length === 2, 'both listeners');
    unsubscribe();
    await writeFile(file, sampleText + serviceDoc('b', '10.96.0.96'));
    await waitFor(() => calls.length === 3, 'the remaining listener');
    expect(calls[0]).toBe('first');
    expect(calls[2]).toBe(s.current()?.version);
  });

  describe('limits', () => {
    it('refuses a file over the size limit without reading it, and keeps the last good mesh', async () => {
      const s = source(30, { maxBytes: 64 * 1024 });
      const good = await started(s);
      await writeFile(file, `# ${'x'.repeat(100 * 1024)}\n`);
      await waitFor(() => s.lastError() !== undefined, 'the refusal');
      expect(s.lastError()?.code).toBe(MESH_ERRORS.MESH_TOO_LARGE);
      expect(s.lastError()?.message).toBe(`${file}: the file is 100.0 KiB (102403 bytes), over the size limit of 64 KiB`);
      expect(s.current()).toBe(good);
    });

    it.each([
      ['[ x 1 MiB', () => '['.repeat(MiB)],
      ['{ x 1 MiB', () => '{'.repeat(MiB)],
      ['a: [[[...]]]', () => `a: ${'['.repeat(MiB / 2)}${']'.repeat(MiB / 2)}\n`],
      ['{"a":{"a":...}}', () => `${'{"a":'.repeat(MiB / 10)}1${'}'.repeat(MiB / 10)}`],
    ])('refuses %s by its nesting without stalling the event loop, and keeps the last good mesh', async (_what, content) => {
      const s = source();
      const good = await started(s);
      const stall = await longestStall(async () => {
        await writeFile(file, content());
        await waitFor(() => s.lastError() !== undefined, 'the refusal', 20_000);
      });
      expect(s.lastError()?.code).toBe(MESH_ERRORS.MESH_TOO_DEEP);
      expect(s.lastError()?.message).toMatch(new RegExp(`^${file}:1:\\d+: nesting deeper than 64 levels \\(the depth limit\\), refused before parsing$`));
      expect(s.current()).toBe(good);
      expect(stall).toBeLessThan(100);
    });

    it('refuses hostile nesting in the first lines before any parse worker starts', async () => {
      // A 1 ms worker time limit: a file that reached a worker would be refused as too large (time).
      // The good mesh is a small JSON document, which is read in place (no worker either).
      const json = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ok', namespace: 'demo' }, spec: { clusterIP: '10.96.9.9', ports: [{ name: 'http', port: 80 }] } };
      await writeFile(file, JSON.stringify(json));
      const s = source(30, undefined, { timeoutMs: 1 });
      const good = await started(s);
      await writeFile(file, `${serviceDoc('ok', '10.96.9.9')}deep: ${'['.repeat(MiB)}\n`);
      await waitFor(() => s.lastError() !== undefined, 'the refusal', 20_000);
      expect(s.lastError()?.code).toBe(MESH_ERRORS.MESH_TOO_DEEP);
      expect(s.current()).toBe(good);
    });

    it('reads a large YAML file off the event loop, taking its objects in a batch per turn', async () => {
      const s = source();
      await started(s);
      const seen = collect(s);
      const text = largeYaml(600 * 1024);
      const stall = await longestStall(async () => {
        await writeFile(file, text);
        await waitFor(() => seen.length === 1, 'the large snapshot', 20_000);
      });
      expect(seen[0]?.services.length).toBe(Math.ceil((600 * 1024) / 150));
      expect(seen[0]?.resolve('10.96.0.7', 80).kind).toBe('service');
      // Parsed on the loop, this file held it for about 2.5 s (under Jest); now the objects come in
      // batches and the indexes are built in slices (about 25 ms).
      expect(stall).toBeLessThan(100);
    });

    it('refuses a file whose parse needs more memory than the budget', async () => {
      const s = source(30, undefined, { workerMemoryMb: 16 });
      const good = await started(s);
      await writeFile(file, largeYaml(2 * MiB));
      await waitFor(() => s.lastError() !== undefined, 'the refusal', 30_000);
      expect(s.lastError()?.code).toBe(MESH_ERRORS.MESH_TOO_LARGE);
      expect(s.lastError()?.message).toMatch(new RegExp(`^${file}: parsing needed more than 16 MiB of memory, the parse limit`));
      expect(s.current()).toBe(good);
    }, 40_000);

    it('refuses a file whose parse takes longer than the time limit', async () => {
      // Small JSON documents are read on the loop: the start is not subject to the time limit.
      await writeFile(file, JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } }));
      const s = source(30, undefined, { timeoutMs: 50 });
      const good = await started(s);
      await writeFile(file, largeYaml(MiB));
      await waitFor(() => s.lastError() !== undefined, 'the refusal', 10_000);
      expect(s.lastError()?.message).toBe(`${file}: parsing took longer than 0.05 s, the time limit`);
      expect(s.current()).toBe(good);
    });

    it('cancels a parse under way on close', async () => {
      await writeFile(file, largeYaml(MiB));
      const s = source();
      const starting = s.start();
      await pause(50);
      const closedAt = performance.now();
      await s.close();
      const first = await starting;
      expect(performance.now() - closedAt).toBeLessThan(500);
      expect(first.ok).toBe(false);
    });
  });
});

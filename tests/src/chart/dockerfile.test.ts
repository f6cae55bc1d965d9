// The image recipe, checked by reading it (no Docker engine here): its stages and base, that it
// builds with npm ci and tsc -b, ships production dependencies only, runs as a non-root user
// with iptables and iproute2 and a `tsmesh` command at hand, and that everything it copies exists
// and reaches the build context past .dockerignore.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from '@jest/globals';
import { REPO_ROOT } from './helm.js';

const run = promisify(execFile);

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Instructions of a Dockerfile, grouped by stage; comments dropped, continuation lines joined. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const [keyword = '', ...rest] = full.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      stages.push({ from: match?.[1] ?? '', name: match?.[2], instructions: [] });
    } else {
      stages[stages.length - 1]?.instructions.push(instruction);
    }
  }
  return stages;
}

/** A .dockerignore pattern as a regular expression over context-relative paths. */
function patternToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
      if (pattern[i + 1] === '/') i++;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}(/.*)?$`);
}

/** Whether .dockerignore keeps a path out of the build context (last matching pattern wins). */
function ignored(path: string, patterns: readonly string[]): boolean {
  let out = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    if (patternToRegExp(negated ? pattern.slice(1) : pattern).test(path)) out = !negated;
  }
  return out;
}

const dockerfile = parseDockerfile(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const dockerignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const rootPackage = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
const build = dockerfile[0] as Stage;
const runtime = dockerfile[dockerfile.length - 1] as Stage;

const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
const copies = (stage: Stage) =>
  stage.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      return { from, sources: paths.slice(0, -1), destination: paths[paths.length - 1] as string };
    });

/** The @tsmesh workspaces the CLI needs at run time, itself included, as directories. */
function runtimeWorkspaces(): string[] {
  const byName = new Map(
    rootPackage.workspaces.map((dir) => [(JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { name: string }).name, dir]),
  );
  const needed = new Set<string>();
  const visit = (dir: string): void => {
    if (needed.has(dir)) return;
    needed.add(dir);
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      const workspace = byName.get(name);
      if (workspace !== undefined) visit(workspace);
    }
  };
  visit('cli');
  return [...needed].sort();
}

describe('the Dockerfile', () => {
  test('has a build stage and a runtime stage, both on node:24-slim', () => {
    expect(dockerfile.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile.map((s) => s.from)).toEqual(dockerfile.map(() => 'node:24-slim'));
    expect(build.name).toBe('build');
  });

  test('builds with npm ci and tsc -b in the build stage', () => {
    expect(runs(build).some((r) => /(^|&&\s*)npm ci\b/.test(r) && !r.includes('--omit=dev'))).toBe(true);
    expect(runs(build).some((r) => /npx tsc -b\b/.test(r))).toBe(true);
  });

  test('installs production dependencies only in the runtime stage, and copies only build output from the build stage', () => {
    expect(runs(runtime).some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(true);
    expect(runs(runtime).some((r) => /\btsc\b/.test(r))).toBe(false);
    for (const copy of copies(runtime).filter((c) => c.from !== undefined)) {
      expect(copy.from).toBe('build');
      for (const source of copy.sources) expect(source).toMatch(/^\/src\/[a-z]+\/dist$/);
    }
  });

  test('installs iptables and iproute2 for the init container', () => {
    const apt = runs(runtime).find((r) => r.includes('apt-get install')) ?? '';
    expect(apt).toMatch(/\biptables\b/);
    expect(apt).toMatch(/\biproute2\b/);
    expect(apt).toContain('rm -rf /var/lib/apt/lists/*');
  });

  test('puts a `tsmesh` command on the PATH that runs the CLI, as the injected containers call it', async () => {
    const install = runs(runtime).find((r) => r.includes('/usr/local/bin/tsmesh')) ?? '';
    expect(install).toMatch(/chmod 0?755 \/usr\/local\/bin\/tsmesh/);
    expect(runtime.instructions.findIndex((i) => i.keyword === 'RUN' && i.args === install)).toBeLessThan(runtime.instructions.findIndex((i) => i.keyword === 'USER'));
    // Run the instruction's printf as the image's /bin/sh would, then the script it writes, with this checkout's CLI in place of /app.
    const printf = /^(printf '[^']*'(?: "[^"]*")?) > \/usr\/local\/bin\/tsmesh/.exec(install)?.[1];
    expect(printf).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'tsmesh-bin-'));
    try {
      const script = join(dir, 'tsmesh');
      await run('sh', ['-c', `${printf ?? ''} > ${script}`]);
      const text = readFileSync(script, 'utf8');
      expect(text).toBe('#!/bin/sh\nexec node /app/cli/dist/main.js "$@"\n');
      writeFileSync(script, text.replace('/app/cli/dist/main.js', join(REPO_ROOT, 'cli', 'dist', 'main.js')));
      const { stdout } = await run('sh', [script, 'proxy', '--help'], { env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` } });
      expect(stdout).toContain('tsmesh proxy: run the sidecar proxy');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('runs as a non-root numeric user and starts the tsmesh CLI', () => {
    const user = runtime.instructions.filter((i) => i.keyword === 'USER').map((i) => i.args);
    expect(user.length).toBeGreaterThan(0);
    expect(['65532', '65532:65532', '1337', '1337:1337']).toContain(user[user.length - 1]);
    const entrypoint = runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT');
    expect(entrypoint).toHaveLength(1);
    expect(JSON.parse(entrypoint[0]?.args ?? '')).toEqual(['node', '/app/cli/dist/main.js']);
    expect(runtime.instructions.findIndex((i) => i.keyword === 'USER')).toBeLessThan(runtime.instructions.findIndex((i) => i.keyword === 'ENTRYPOINT'));
  });

  test('starts the file the CLI package names as its main, which its tsmesh bin runs too', async () => {
    const cli = JSON.parse(readFileSync(join(REPO_ROOT, 'cli', 'package.json'), 'utf8')) as { main: string; bin: Record<string, string> };
    expect(`/app/cli/${cli.main}`).toBe('/app/cli/dist/main.js');
    // The bin is a committed script (npm links it at `npm ci`, before dist/ exists) that runs the main.
    const bin = join(REPO_ROOT, 'cli', cli.bin['tsmesh'] ?? '');
    const viaBin = await run(process.execPath, [bin, 'proxy', '--help']);
    const viaMain = await run(process.execPath, [join(REPO_ROOT, 'cli', cli.main), 'proxy', '--help']);
    expect(viaBin.stdout).toContain('tsmesh proxy: run the sidecar proxy');
    expect(viaBin.stdout).toBe(viaMain.stdout);
    expect(readFileSync(join(REPO_ROOT, 'cli', 'tsconfig.json'), 'utf8')).toMatch(/"outDir":\s*"dist"/);
  });

  test.each([
    ['build', build],
    ['runtime', runtime],
  ])('copies, in the %s stage, only files that exist and reach the build context', (_name, stage) => {
    for (const copy of copies(stage).filter((c) => c.from === undefined)) {
      for (const source of copy.sources) {
        const path = source.replace(/\/$/, '');
        expect([source, existsSync(join(REPO_ROOT, path))]).toEqual([source, true]);
        expect([source, ignored(path, dockerignore)]).toEqual([source, false]);
      }
    }
  });

  test.each([
    ['build', build],
    ['runtime', runtime],
  ])('gives npm ci, in the %s stage, the manifest of every workspace', (_name, stage) => {
    const copied = copies(stage).flatMap((c) => (c.from === undefined ? c.sources : []));
    for (const workspace of rootPackage.workspaces) expect(copied).toContain(`${workspace}/package.json`);
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', '.npmrc']));
  });

  test('builds the sources of every workspace the CLI needs and ships their dist directories', () => {
    const needed = runtimeWorkspaces();
    expect(needed).toEqual(['ca', 'cli', 'common', 'control', 'injector', 'proxy']);
    const sources = copies(build).flatMap((c) => c.sources);
    const shipped = copies(runtime).flatMap((c) => (c.from === 'build' ? c.sources : []));
    for (const workspace of needed) {
      expect(sources).toContain(`${workspace}/`);
      expect(shipped).toContain(`/src/${workspace}/dist`);
    }
    expect(sources).toEqual(expect.arrayContaining(['tsconfig.base.json', 'tsconfig.json']));
  });

  test('keeps dependencies and build output out of the build context', () => {
    for (const path of ['node_modules', 'cli/node_modules', 'cli/dist', 'proxy/dist/main.js', '.git', 'tests/src/chart/helm.ts']) {
      expect([path, ignored(path, dockerignore)]).toEqual([path, true]);
    }
    for (const path of ['cli/src/main.ts', 'cli/package.json', 'package-lock.json', 'tests/package.json']) {
      expect([path, ignored(path, dockerignore)]).toEqual([path, false]);
    }
  });
});

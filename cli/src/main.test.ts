// `tsmesh` itself: the top-level usage from the static command table (no command module loaded),
// each command's usage by `tsmesh help CMD` and `tsmesh CMD --help`, the exit codes, and the
// committed bin entry npm links at install time.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { COMMANDS, usage } from './registry.js';
import { runCli } from './testing/run-cli.js';

const CLI_ROOT = new URL('../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', CLI_ROOT), 'utf8')) as { version: string; bin: Record<string, string> };

describe('tsmesh --help', () => {
  it('lists every command with its summary and exits 0, loading no command module and no tsmesh package', async () => {
    const run = await runCli(['--help'], { recordModules: true });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(usage());
    const width = Math.max(...COMMANDS.map((c) => c.name.length));
    for (const { name, summary } of COMMANDS) expect(run.stdout).toContain(`  ${name.padEnd(width)}  ${summary}\n`);
    // It points to the reference, which every clone has.
    expect(run.stdout).toContain('Reference (commands, flags, annotations, ports,\nenvironment variables, CRDs, metrics): docs/reference.md in the tsmesh repository\n');
    expect(existsSync(new URL('../docs/reference.md', CLI_ROOT))).toBe(true);
    // The hook works: the CLI's own entry was seen.
    expect(run.modules.some((url) => url.endsWith('/cli/dist/main.js'))).toBe(true);
    expect(run.modules.filter((url) => /\/cli\/dist\/(commands|demo)\/|\/(common|proxy|ca|control|injector)\/dist\/|\/node_modules\//.test(url))).toEqual([]);
  });

  it('-h and `tsmesh help` print the same; no command at all prints it on stderr and exits 2', async () => {
    expect(await runCli(['-h'])).toMatchObject({ code: 0, stdout: usage() });
    expect(await runCli(['help'])).toMatchObject({ code: 0, stdout: usage() });
    expect(await runCli(['help', 'help'])).toMatchObject({ code: 0, stdout: usage() });
    expect(await runCli([])).toMatchObject({ code: 2, stdout: '', stderr: usage() });
  });

  it('the table says what each command module says of itself', async () => {
    for (const entry of COMMANDS) {
      const command = await entry.load();
      expect({ name: command.name, summary: command.summary }).toEqual({ name: entry.name, summary: entry.summary });
    }
  }, 60_000);
});

describe("a command's usage", () => {
  it('`tsmesh help proxy` and `tsmesh proxy --help` print the proxy\'s usage, not the list of commands', async () => {
    const proxy = await COMMANDS.find((c) => c.name === 'proxy')!.load();
    expect(proxy.help).toMatch(/^tsmesh proxy: /);
    expect(await runCli(['help', 'proxy'])).toMatchObject({ code: 0, stdout: proxy.help, stderr: '' });
    expect(await runCli(['proxy', '--help'])).toMatchObject({ code: 0, stdout: proxy.help, stderr: '' });
    expect(await runCli(['--help', 'proxy'])).toMatchObject({ code: 0, stdout: proxy.help });
  }, 30_000);

  it('`tsmesh help CMD` works for every command', async () => {
    for (const entry of COMMANDS) {
      const run = await runCli(['help', entry.name]);
      expect({ name: entry.name, code: run.code, first: run.stdout.split('\n')[0] }).toEqual({ name: entry.name, code: 0, first: expect.stringMatching(new RegExp(`^(Usage: )?tsmesh ${entry.name}[: ]`)) });
    }
  }, 60_000);

  it('an unknown command, for help or to run, is one line on stderr naming it, exit 2', async () => {
    for (const args of [['help', 'proxi'], ['proxi'], ['proxi', '--help']]) {
      const run = await runCli(args);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/^tsmesh: unknown command "proxi"; the commands are proxy, iptables, .*\n$/);
    }
    const two = await runCli(['help', 'proxy', 'ca']);
    expect(two).toMatchObject({ code: 2, stderr: 'tsmesh help: one command at a time, not "proxy ca"\n' });
  });
});

describe('tsmesh version', () => {
  const line = `tsmesh ${pkg.version} (Node.js ${process.version}, ${process.platform}/${process.arch})\n`;

  it('prints the client version from the CLI package.json, for `version` and `--version`', async () => {
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(await runCli(['version'])).toMatchObject({ code: 0, stdout: line, stderr: '' });
    expect(await runCli(['--version'])).toMatchObject({ code: 0, stdout: line, stderr: '' });
  });

  it('loads no tsmesh package and no dependency to say the client version', async () => {
    const run = await runCli(['--version'], { recordModules: true });
    expect(run.modules.some((url) => url.endsWith('/cli/dist/commands/version.js'))).toBe(true);
    expect(run.modules.filter((url) => /\/(common|proxy|ca|control|injector)\/dist\/|\/node_modules\//.test(url))).toEqual([]);
  });

  it('prints JSON with -o json, and refuses an unknown format or flag with exit 2', async () => {
    const json = await runCli(['version', '-o', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ client: { component: 'client', version: pkg.version, node: process.version, platform: `${process.platform}/${process.arch}` } });
    expect(await runCli(['version', '-o', 'xml'])).toMatchObject({ code: 2, stdout: '', stderr: 'tsmesh version: -o: "xml" is not an output format (text or json)\n' });
    expect(await runCli(['version', '--short'])).toMatchObject({ code: 2, stderr: 'tsmesh version: unknown flag "--short" (see tsmesh version --help)\n' });
    expect(await runCli(['version', '--proxy', 'nowhere'])).toMatchObject({ code: 2, stderr: 'tsmesh version: --proxy: "nowhere" is not HOST:PORT or PORT (1-65535)\n' });
  });

  it('says in one line, exit 1, when the sidecar cannot be reached', async () => {
    // Port 1 on loopback: nothing listens there.
    const run = await runCli(['version', '--proxy', '127.0.0.1:1']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^tsmesh version: cannot reach the sidecar's admin server at 127\.0\.0\.1:1\/server_info: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
  });
});

describe('the bin entry', () => {
  it('package.json names a committed, executable script that exists before the build and runs the CLI', async () => {
    expect(pkg.bin).toEqual({ tsmesh: 'bin/tsmesh.js' });
    // `npm ci` links what the lock file says, not what package.json says.
    const lock = JSON.parse(readFileSync(new URL('../package-lock.json', CLI_ROOT), 'utf8')) as { packages: Record<string, { bin?: unknown }> };
    expect(lock.packages.cli?.bin).toEqual(pkg.bin);
    const bin = fileURLToPath(new URL(pkg.bin.tsmesh!, CLI_ROOT));
    accessSync(bin, constants.X_OK);
    const text = readFileSync(bin, 'utf8');
    expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true);
    // Plain JavaScript outside src/ and dist/: nothing to build for npm to link it.
    expect(bin).not.toMatch(/\/(src|dist)\//);
    expect(await runCli(['--version'], { script: bin })).toMatchObject({ code: 0, stdout: `tsmesh ${pkg.version} (Node.js ${process.version}, ${process.platform}/${process.arch})\n` });
  });
});

// The dashboard end to end in a real headless Chromium (Debian's, driven by playwright-core):
// against `tsmesh demo --keep`, the page shows the greeter topology with non-zero rates within
// 10 s; a workload whose name is markup renders as text. Screenshots are kept under
// .test-artifacts/dashboard/ at the repository's root.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { MAIN } from '../testing/run-cli.js';
import { CONTENT_SECURITY_POLICY } from './server.js';

/** What the functions run in the page see (this package compiles without the DOM's types). */
interface PageNode {
  readonly textContent: string | null;
  querySelectorAll(selector: string): ArrayLike<PageNode>;
}
interface PageGlobal {
  readonly document: PageNode & { readonly body: { readonly dataset: Record<string, string | undefined> } };
  readonly tsmeshDashboard: { readonly cy: { nodes(): { map<T>(f: (n: { id(): string }) => T): T[] }; edges(): { map<T>(f: (e: { data(key: string): unknown }) => T): T[] } } };
  readonly __xss?: unknown;
}

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../.test-artifacts/dashboard/', import.meta.url));
const suite = existsSync(CHROMIUM) ? describe : describe.skip;
if (!existsSync(CHROMIUM)) console.warn(`dashboard Chromium tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

/** Starts the built CLI and resolves the first stdout line matching `pattern` (its first group). */
function startCli(args: readonly string[], pattern: RegExp, timeoutMs: number): Promise<{ child: ChildProcess; match: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TSMESH_LOG_LEVEL: 'warn' } });
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tsmesh ${args.join(' ')}: no line matching ${pattern} within ${timeoutMs} ms; stdout: ${out.slice(-2000)} stderr: ${err.slice(-2000)}`)), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m[1] ?? '' });
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tsmesh ${args.join(' ')} exited (${code}) early; stdout: ${out.slice(-2000)} stderr: ${err.slice(-2000)}`));
    });
  });
}

/** Stops a child with SIGINT (the demo tears its namespaces down) and waits for it. */
function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGINT');
  });
}

async function openPage(browser: Browser, url: string): Promise<{ page: Page; problems: string[]; csp: string | undefined }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  const response = await page.goto(url);
  return { page, problems, csp: response?.headers()['content-security-policy'] };
}

/** The rows of the edges table as text, cell by cell. */
function edgeRows(page: Page): Promise<string[][]> {
  return page.$$eval('#edges tbody tr', (rows) => rows.map((row) => [...row.querySelectorAll('td')].map((td) => td.textContent ?? '')));
}

suite('tsmesh dashboard in headless Chromium', () => {
  let browser: Browser | undefined;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    // The dashboards first, then the demo (whose SIGINT removes its network namespaces).
    for (const child of children.reverse()) await stop(child);
    console.log(`dashboard screenshots: ${ARTIFACTS}`);
  }, 40_000);

  test('against tsmesh demo --keep, the page shows the greeter topology with non-zero rates within 10 s', async () => {
    const demo = await startCli(['demo', '--keep', '--calls', '30'], /^Dashboard: tsmesh dashboard --from-demo (\S+)$/m, 45_000);
    children.push(demo.child);
    const dashboard = await startCli(['dashboard', '--from-demo', demo.match, '--listen', '127.0.0.1:0'], /^tsmesh dashboard: (http:\/\/\S+)/m, 10_000);
    children.push(dashboard.child);

    const started = Date.now();
    const { page, problems, csp } = await openPage(browser as Browser, dashboard.match);
    expect(csp).toBe(CONTENT_SECURITY_POLICY);
    await page.waitForFunction(
      () =>
        Array.from((globalThis as unknown as PageGlobal).document.querySelectorAll('#edges tbody tr')).some((row) => {
          const cells = Array.from(row.querySelectorAll('td')).map((td) => td.textContent ?? '');
          return /^greeter/.test(cells[1] ?? '') && Number(cells[2]) > 0;
        }),
      undefined,
      { timeout: 10_000, polling: 200 },
    );
    const elapsed = Date.now() - started;
    // The traces and the charts fill on the next polls: one more update, then the pictures.
    const updates = await page.evaluate(() => Number((globalThis as unknown as PageGlobal).document.body.dataset.updates));
    await page.waitForFunction((n) => Number((globalThis as unknown as PageGlobal).document.body.dataset.updates) > n, updates, { timeout: 5000 });
    await page.screenshot({ path: `${ARTIFACTS}demo-page.png`, fullPage: true });
    await page.locator('#graph').screenshot({ path: `${ARTIFACTS}demo-topology.png` });

    const rows = await edgeRows(page);
    const greeterRows = rows.filter((cells) => /^greeter/.test(cells[1] ?? ''));
    expect(greeterRows.length).toBeGreaterThan(0);
    for (const cells of greeterRows) expect(cells[0]).toMatch(/^client|^unknown$/);
    const graph = await page.evaluate(() => {
      const cy = (globalThis as unknown as PageGlobal).tsmeshDashboard.cy;
      return { nodes: cy.nodes().map((n) => n.id()), edgeRates: cy.edges().map((e) => Number(e.data('rps'))) };
    });
    expect(graph.nodes.some((id) => id.startsWith('greeter'))).toBe(true);
    expect(graph.edgeRates.some((rps) => rps > 0)).toBe(true);
    // One golden-signals card per workload, with its three charts drawn.
    expect(await page.locator('.workload').count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('.workload canvas').count()).toBeGreaterThanOrEqual(6);
    expect(problems).toEqual([]);
    console.log(`dashboard: greeter edges with non-zero rates ${elapsed} ms after the page was opened`);
  }, 90_000);

  test('a workload named with markup renders as text: no element, no script runs', async () => {
    const hostile = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
    const label = hostile.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    let calls = 0;
    const fake = http.createServer((_req, res) => {
      calls += 10;
      const peers = `reporter="source",source_workload="${label}",source_namespace="evil",destination_service="greeter.demo",destination_workload="greeter",destination_namespace="demo",connection_security_policy="none"`;
      res.end(`tsmesh_requests_total{${peers},response_code="200",grpc_status=""} ${calls}\n`);
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      const port = (fake.address() as AddressInfo).port;
      const dashboard = await startCli(['dashboard', '--sidecar', `evil=127.0.0.1:${port}`, '--listen', '127.0.0.1:0', '--interval', '250ms'], /^tsmesh dashboard: (http:\/\/\S+)/m, 10_000);
      children.push(dashboard.child);
      const { page, problems } = await openPage(browser as Browser, dashboard.match);
      await page.waitForFunction(() => (globalThis as unknown as PageGlobal).document.querySelectorAll('#edges tbody tr').length > 0, undefined, { timeout: 10_000 });
      await page.waitForFunction(() => (globalThis as unknown as PageGlobal).document.querySelectorAll('.workload canvas').length >= 6, undefined, { timeout: 5000 });
      await page.screenshot({ path: `${ARTIFACTS}xss-page.png`, fullPage: true });
      const rows = await edgeRows(page);
      expect(rows[0]?.[0]).toBe(`${hostile}.evil`);
      expect(await page.locator('main img').count()).toBe(0);
      expect(await page.locator('main script').count()).toBe(0);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobal).__xss)).toBeUndefined();
      const titles = await page.$$eval('.workload h3', (hs) => hs.map((h) => h.textContent));
      expect(titles).toContain(`${hostile}.evil`);
      expect(problems).toEqual([]);
      await stop(dashboard.child);
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
  }, 40_000);
});

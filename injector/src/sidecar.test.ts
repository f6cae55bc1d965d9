import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_PROXY_CONCURRENCY, MAX_PROXY_CONCURRENCY, proxyConcurrency, WAIT_READY_COMMAND, WAIT_READY_SECONDS } from './sidecar.js';

/** Runs the postStart hook's script against `port`, waiting at most `waitMs` instead of WAIT_READY_SECONDS. */
function runHook(port: number, waitMs: number): Promise<{ code: number; stderr: string }> {
  const [command, flag, script] = WAIT_READY_COMMAND;
  const adapted = (script ?? '').replace('127.0.0.1:15020', `127.0.0.1:${port}`).replace(String(WAIT_READY_SECONDS * 1000), String(waitMs));
  return new Promise((resolve) => {
    execFile(command === 'node' ? process.execPath : (command ?? ''), [flag ?? '', adapted], { timeout: 20_000 }, (error, _stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code ?? 1), stderr });
    });
  });
}

describe('the postStart hook of a regular-container sidecar', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  function serve(handler: (path: string) => number): Promise<number> {
    server = createServer((request, response) => {
      response.statusCode = handler(request.url ?? '');
      response.end();
    });
    return new Promise((resolve) => server?.listen(0, '127.0.0.1', () => resolve((server?.address() as AddressInfo).port)));
  }

  it('is plain node polling the health port', () => {
    expect(WAIT_READY_COMMAND.slice(0, 2)).toEqual(['node', '-e']);
    expect(WAIT_READY_COMMAND[2]).toContain("'http://127.0.0.1:15020/healthz/ready'");
  });

  it('returns once /healthz/ready answers 200, polling until then', async () => {
    let asked = 0;
    const port = await serve((path) => (path === '/healthz/ready' && ++asked >= 3 ? 200 : 503));
    expect(await runHook(port, 10_000)).toEqual({ code: 0, stderr: '' });
    expect(asked).toBe(3);
  });

  it('fails, saying why, when the sidecar is never ready in time', async () => {
    const port = await serve(() => 503);
    const result = await runHook(port, 600);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`tsmesh-proxy not ready after ${WAIT_READY_SECONDS} s`);
  });

  it('keeps trying while nothing listens yet', async () => {
    const port = await serve(() => 200);
    server?.close();
    const result = await runHook(port, 600);
    expect(result.code).toBe(1);
  });
});

describe('proxyConcurrency (the sidecar\'s --concurrency from its CPU limit)', () => {
  it('gives one event loop per core the limit starts, rounded up', () => {
    expect(proxyConcurrency('250m')).toBe(1);
    expect(proxyConcurrency('1000m')).toBe(1);
    expect(proxyConcurrency('1001m')).toBe(2);
    expect(proxyConcurrency('3000m')).toBe(3);
    expect(proxyConcurrency('2.5')).toBe(3);
  });

  it('stays between 1 and MAX_PROXY_CONCURRENCY', () => {
    expect(proxyConcurrency('1m')).toBe(1);
    expect(proxyConcurrency('64')).toBe(MAX_PROXY_CONCURRENCY);
  });

  it('is the sidecar default without a limit (or a zero one)', () => {
    expect(proxyConcurrency(undefined)).toBe(DEFAULT_PROXY_CONCURRENCY);
    expect(proxyConcurrency('0')).toBe(DEFAULT_PROXY_CONCURRENCY);
  });
});

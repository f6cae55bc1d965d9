// `tsmesh demo` as a user runs it: the whole local mesh, in namespaces (root) and on loopback.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, test } from '@jest/globals';
import { CLI_MAIN } from 'tsmesh/demo';
import { requireNetns } from './netns.js';

const run = promisify(execFile);
const enabled = await requireNetns();

describe('tsmesh demo', () => {
  (enabled ? test : test.skip)(
    'in network namespaces it balances one gRPC channel over every replica, over verified mTLS, and exports the traces',
    async () => {
      const { stdout } = await run(process.execPath, [CLI_MAIN, 'demo', '--calls', '30'], { timeout: 120_000 });
      expect(stdout).toMatch(/greeter-1\s+10 /);
      expect(stdout).toMatch(/greeter-2\s+10 /);
      expect(stdout).toMatch(/greeter-3\s+10 /);
      expect(stdout).toMatch(/failed\s+0/);
      expect(stdout).toContain('x-forwarded-client-cert: By=spiffe://cluster.local/ns/demo/sa/greeter;URI=spiffe://cluster.local/ns/demo/sa/client');
      expect(stdout).toMatch(/Traces: [1-9]\d* spans in [1-9]\d* traces reached the Zipkin collector/);
    },
    150_000,
  );

  test('on loopback it says why it falls back and still balances per call', async () => {
    const { stdout } = await run(process.execPath, [CLI_MAIN, 'demo', '--loopback', '--calls', '30'], { timeout: 60_000 });
    expect(stdout).toContain('falling back to explicit loopback ports');
    expect(stdout).toMatch(/greeter-1\s+10 /);
    expect(stdout).toMatch(/greeter-3\s+10 /);
  }, 90_000);

  test('a bad flag exits 2 naming the flag and the value', async () => {
    await expect(run(process.execPath, [CLI_MAIN, 'demo', '--replicas', '99'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--replicas: "99" must be a whole number from 1 to 8'),
    });
  });
});

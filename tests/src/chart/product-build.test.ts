// The product build (tsconfig.build.json, what the image compiles) holds no tests and no test fakes,
// and the product code type-checks on its own: without the tests, the fakes or Jest's globals.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from '@jest/globals';
import { REPO_ROOT } from './helm.js';

const run = promisify(execFile);
const PRODUCT = ['common', 'ca', 'proxy', 'control', 'injector', 'cli'];
const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

describe('the product build', () => {
  test("installs, for the image, no package that only tests or the demo use", () => {
    const manifest = (dir: string): { dependencies?: Record<string, string> } => JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    // The tests workspace is in the lock file, so `npm ci --omit=dev` would install its dependencies.
    expect(manifest('tests').dependencies ?? {}).toEqual({});
    expect(Object.keys(manifest('cli').dependencies ?? {})).not.toContain('@grpc/grpc-js');
  });

  test('is what the image compiles', () => {
    expect(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8')).toMatch(/^RUN npx tsc -b cli\/tsconfig\.build\.json$/m);
  });

  test.each(PRODUCT)('of %s lists none of its tests or test fakes, and type-checks without them', async (pkg) => {
    const config = join(REPO_ROOT, pkg, 'tsconfig.build.json');
    const { stdout } = await run(process.execPath, [tsc, '-p', config, '--listFilesOnly'], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
    const own = stdout.split('\n').filter((f) => f.startsWith(join(REPO_ROOT, pkg, 'src')));
    expect(own.length).toBeGreaterThan(3);
    expect(own.filter((f) => f.endsWith('.test.ts') || f.includes('/testing/'))).toEqual([]);
    // The demo runs from a clone: neither it nor what only it needs is in the image.
    if (pkg === 'cli') expect(own.filter((f) => f.includes('/src/demo/') || f.endsWith('/commands/demo.ts'))).toEqual([]);
    // A type error here means product code depends on a test, a fake or Jest.
    await expect(run(process.execPath, [tsc, '-p', config, '--noEmit'], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 })).resolves.toBeDefined();
  }, 120_000);
});

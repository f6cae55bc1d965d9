#!/usr/bin/env node
// `npm test`: builds every workspace, runs each one's jest suite (one at a time: the
// end-to-end suites create network namespaces and the machine may have only 2 cores), then
// prints one summary line over all of them and exits non-zero if anything failed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const results = join(root, '.jest-results');
rmSync(results, { recursive: true, force: true });
mkdirSync(results, { recursive: true });

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' };
const turbo = (args) => spawnSync('npx', ['--no-install', 'turbo', ...args], { cwd: root, stdio: 'inherit', env }).status ?? 1;

if (turbo(['run', 'build', '--output-logs=errors-only']) !== 0) {
  console.error('build failed');
  process.exit(1);
}
const testStatus = turbo(['run', 'test', '--concurrency=1', '--continue']);

let passed = 0;
let failed = 0;
let skipped = 0;
const suites = [];
for (const file of readdirSync(results).filter((f) => f.endsWith('.json')).sort()) {
  const r = JSON.parse(readFileSync(join(results, file), 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  suites.push(`${file.replace('.json', '')}: ${r.numPassedTests}/${r.numTotalTests}`);
}
console.log(`\nper package: ${suites.join(', ')}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(testStatus !== 0 || failed > 0 || passed === 0 ? 1 : 0);

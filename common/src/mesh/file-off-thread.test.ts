// Needs a build first: the worker runs common/dist/mesh/parse-worker.js.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { MESH_ERRORS } from '../errors.js';
import { parseMeshObjects } from './file.js';
import { parseMeshOffThread } from './file-off-thread.js';
import { DEFAULT_MESH_LIMITS, DEFAULT_PARSE_BUDGET } from './limits.js';
import { contentVersion } from './version.js';

const sample = readFileSync(new URL('./testdata/sample-mesh.yaml', import.meta.url));

describe('parseMeshOffThread', () => {
  it('gives the objects and version a parse on this thread gives', async () => {
    const inline = parseMeshObjects(sample.toString('utf8'), 'sample-mesh.yaml');
    if (!inline.ok) throw inline.error;
    const result = await parseMeshOffThread(sample, 'sample-mesh.yaml', DEFAULT_MESH_LIMITS, DEFAULT_PARSE_BUDGET);
    if (!result.ok) throw result.error;
    expect(result.value.objects).toEqual(inline.value);
    expect(result.value.version).toBe(contentVersion(inline.value));
  });

  it('refuses as a parse on this thread refuses, with the line', async () => {
    const text = Buffer.from(`${sample.toString('utf8')}---\napiVersion: v1\nkind: Service\nmetadata: {name: broken}\nspec:\n  ports: [{port: 0}]\n`);
    const inline = parseMeshObjects(text.toString('utf8'), 'mesh.yaml');
    const result = await parseMeshOffThread(text, 'mesh.yaml', DEFAULT_MESH_LIMITS, DEFAULT_PARSE_BUDGET);
    expect(!result.ok && !inline.ok && [result.error.code, result.error.message, result.error.location]).toEqual(!inline.ok && [inline.error.code, inline.error.message, inline.error.location]);
  });

  it('refuses a parse that needs more memory than the budget, and one cancelled', async () => {
    const big = Buffer.from(Array.from({ length: 12_000 }, (_, i) => `---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n${i}, labels: {a: b, c: d}}\n`).join(''));
    const starved = await parseMeshOffThread(big, 'big.yaml', DEFAULT_MESH_LIMITS, { ...DEFAULT_PARSE_BUDGET, workerMemoryMb: 8 });
    expect(!starved.ok && starved.error.code).toBe(MESH_ERRORS.MESH_TOO_LARGE);
    const cancel = new AbortController();
    const cancelled = parseMeshOffThread(big, 'big.yaml', DEFAULT_MESH_LIMITS, DEFAULT_PARSE_BUDGET, cancel.signal);
    cancel.abort();
    const answer = await cancelled;
    expect(!answer.ok && answer.error.message).toBe('big.yaml: the parse was cancelled');
  });
});

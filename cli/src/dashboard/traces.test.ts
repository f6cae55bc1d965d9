import { describe, expect, test } from '@jest/globals';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarize, tracesFromFile } from './traces.js';

const T1 = 'a'.repeat(32);
const T2 = 'b'.repeat(32);

describe('recent traces', () => {
  test('one summary per trace, newest first, named by its root span, without any tag value', () => {
    const spans = [
      { traceId: T1, id: '1'.repeat(16), kind: 'CLIENT', name: 'greeter/SayHello', service: 'client', timestampUs: 1_000_000, durationUs: 4000, tags: { authorization: 'Bearer secret' } },
      { traceId: T1, id: '2'.repeat(16), parentId: '1'.repeat(16), name: 'greeter/SayHello', service: 'greeter-1', timestampUs: 1_001_000, durationUs: 2000, tags: {} },
      { traceId: T2, id: '3'.repeat(16), name: 'later', localEndpoint: { serviceName: 'client' }, timestamp: 2_000_000, duration: 1000, tags: { error: 'boom' } },
      { traceId: 'not-hex', id: 'x', name: 'ignored' },
    ];
    const list = summarize(spans, 10);
    expect(list).toEqual([
      { traceId: T2, name: 'later', services: ['client'], spans: 1, startMs: 2000, durationMs: 1, error: true },
      { traceId: T1, name: 'greeter/SayHello', services: ['client', 'greeter-1'], spans: 2, startMs: 1000, durationMs: 4, error: false },
    ]);
    expect(JSON.stringify(list)).not.toContain('secret');
  });

  test('reads the end of a span file and passes over a line being written', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'spans-')), 'spans.jsonl');
    writeFileSync(file, `${JSON.stringify({ traceId: T1, id: '1'.repeat(16), name: 'a', service: 's', timestampUs: 1, durationUs: 1 })}\n`);
    appendFileSync(file, '{"traceId": "half');
    expect(tracesFromFile(file, 5).map((t) => t.name)).toEqual(['a']);
  });
});

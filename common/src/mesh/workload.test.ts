import { describe, expect, it } from '@jest/globals';
import { workloadFromPodName } from './workload.js';

describe('workloadFromPodName', () => {
  it.each([
    ['reviews-v1-7d9f8c6b5-x2kqz', 'reviews-v1'],
    ['web-0', 'web'],
    ['node-agent-x2kqz', 'node-agent'],
    ['standalone', 'standalone'],
  ])('maps %s to %s', (pod, workload) => {
    expect(workloadFromPodName(pod)).toBe(workload);
  });
});

// A command whose module is absent from a build (the demo, which the image leaves out) says so
// and where to run it instead; any other failure to load is not hidden.
import { describe, expect, it } from '@jest/globals';
import { loadOrExplain } from './registry.js';

describe('loadOrExplain', () => {
  const missing = (): Promise<never> => Promise.reject(Object.assign(new Error("Cannot find package '@grpc/grpc-js'"), { code: 'ERR_MODULE_NOT_FOUND' }));

  it('stands in for a module that cannot be found with a command that explains, in its help and when run', async () => {
    const command = await loadOrExplain('demo', 'the demo', 'not in this build: run it from a clone', missing);
    expect(command.name).toBe('demo');
    expect(command.help).toBe('not in this build: run it from a clone\n');
    await expect(command.run([])).rejects.toThrow('not in this build: run it from a clone');
  });

  it('passes any other error on', async () => {
    await expect(loadOrExplain('demo', 'the demo', 'absent', () => Promise.reject(new SyntaxError('broken')))).rejects.toThrow('broken');
  });
});

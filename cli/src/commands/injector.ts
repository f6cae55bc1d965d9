// `tsmesh injector`: runs the sidecar-injector admission webhook over HTTPS until SIGINT/SIGTERM
// (SPEC: Injection). Flags and environment are parsed by @tsmesh/injector's config.ts.
import { TsmeshError } from '@tsmesh/common';
import { INJECTOR_ERRORS, INJECTOR_HELP, injectorConfig, startInjector, type InjectorConfig } from '@tsmesh/injector';
import { UsageError, type Command } from '../command.js';

function config(argv: readonly string[]): InjectorConfig {
  try {
    return injectorConfig(argv);
  } catch (error) {
    if (error instanceof TsmeshError && error.code === INJECTOR_ERRORS.BAD_FLAG) throw new UsageError(error.message);
    throw error;
  }
}

export const injectorCommand: Command = {
  name: 'injector',
  summary: 'run the sidecar-injector admission webhook',
  help: INJECTOR_HELP,
  async run(argv) {
    const running = await startInjector(config(argv));
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await running.close();
    return 0;
  },
};

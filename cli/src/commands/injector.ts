// `tsmesh injector`: runs the sidecar-injector admission webhook over HTTPS until SIGINT/SIGTERM
// (SPEC: Injection). Flags and environment are parsed by @tsmesh/injector's config.ts.
import { INJECTOR_ERRORS, INJECTOR_HELP, injectorConfig, startInjector, type InjectorConfig } from '@tsmesh/injector';
import { parseFlags, untilSignal, type Command } from '../command.js';

function config(argv: readonly string[]): InjectorConfig {
  return parseFlags(() => injectorConfig(argv), INJECTOR_ERRORS.BAD_FLAG);
}

export const injectorCommand: Command = {
  name: 'injector',
  summary: 'run the sidecar-injector admission webhook',
  help: INJECTOR_HELP,
  async run(argv) {
    const running = await startInjector(config(argv));
    await untilSignal();
    await running.close();
    return 0;
  },
};

import { ConfigError, parseProxyConfig, PROXY_HELP, startProxy } from '@tsmesh/proxy';
import { UsageError, type Command } from '../command.js';

export const proxyCommand: Command = {
  name: 'proxy',
  summary: 'run the sidecar proxy',
  help: PROXY_HELP,
  async run(argv) {
    let config;
    try {
      config = parseProxyConfig(argv, process.env);
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw error;
    }
    const proxy = await startProxy(config);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        resolve();
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    await proxy.close();
    return 0;
  },
};

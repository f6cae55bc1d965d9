import { PROXY_CONFIG_ERROR, parseProxyConfig, PROXY_HELP, startProxy } from '@tsmesh/proxy';
import { parseFlags, untilSignal, type Command } from '../command.js';

export const proxyCommand: Command = {
  name: 'proxy',
  summary: 'run the sidecar proxy',
  help: PROXY_HELP,
  async run(argv) {
    const config = parseFlags(() => parseProxyConfig(argv, process.env), PROXY_CONFIG_ERROR);
    const proxy = await startProxy(config);
    await untilSignal();
    await proxy.close();
    return 0;
  },
};

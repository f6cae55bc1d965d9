import { PROXY_CONFIG_ERROR, parseProxyConfig, PROXY_HELP, startProxy } from '@tsmesh/proxy';
import { parseFlags, untilSignal, type Command } from '../command.js';

export const proxyCommand: Command = {
  name: 'proxy',
  summary: 'run the sidecar proxy',
  help: PROXY_HELP,
  async run(argv) {
    const config = parseFlags(() => parseProxyConfig(argv, process.env), PROXY_CONFIG_ERROR);
    const proxy = await startProxy(config);
    const signal = await untilSignal();
    // SIGTERM (Kubernetes stopping the pod) drains; SIGINT (a person at a terminal) stops now, as
    // does a second signal during the drain.
    if (signal === 'SIGTERM' && config.drainDurationMs > 0) await Promise.race([proxy.drain(config.drainDurationMs), untilSignal()]);
    await proxy.close();
    return 0;
  },
};

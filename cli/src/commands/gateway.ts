import { GATEWAY_HELP, parseGatewayConfig, PROXY_CONFIG_ERROR, startGateway } from '@tsmesh/proxy';
import { parseFlags, untilSignal, type Command } from '../command.js';

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'run the Gateway API gateway (the mesh front door) from a mesh file',
  help: GATEWAY_HELP,
  async run(argv) {
    const config = parseFlags(() => parseGatewayConfig(argv, process.env), PROXY_CONFIG_ERROR);
    const gateway = await startGateway(config);
    const signal = await untilSignal();
    // SIGTERM drains (in-flight requests finish); SIGINT, or a second signal, stops now.
    if (signal === 'SIGTERM' && config.proxy.drainDurationMs > 0) await Promise.race([gateway.drain(config.proxy.drainDurationMs), untilSignal()]);
    await gateway.close();
    return 0;
  },
};

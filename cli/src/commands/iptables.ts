import { notAvailable } from '../command.js';

export const iptablesCommand = notAvailable('iptables', "program the pod's traffic redirection (init container)");

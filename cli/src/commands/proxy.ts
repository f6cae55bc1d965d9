import { notAvailable } from '../command.js';

export const proxyCommand = notAvailable('proxy', "run the sidecar proxy");

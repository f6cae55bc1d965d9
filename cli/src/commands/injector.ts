import { notAvailable } from '../command.js';

export const injectorCommand = notAvailable('injector', "run the sidecar-injector admission webhook");

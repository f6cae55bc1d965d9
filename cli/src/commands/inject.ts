import { notAvailable } from '../command.js';

export const injectCommand = notAvailable('inject', "print manifests with the sidecar injected");

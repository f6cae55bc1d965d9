import { notAvailable } from '../command.js';

export const controlCommand = notAvailable('control', "run the control plane (discovery and policy)");

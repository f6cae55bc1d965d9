import { notAvailable } from '../command.js';

export const demoCommand = notAvailable('demo', "run a whole mesh on this machine");

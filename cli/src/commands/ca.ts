import { notAvailable } from '../command.js';

export const caCommand = notAvailable('ca', "run the certificate authority");

// The mesh distribution protocol shared by the control plane (server) and the sidecar (client).
export * from './protocol.js';
export { LineDecoder, encodeMessage, parseClientMessage, parseServerMessage } from './codec.js';

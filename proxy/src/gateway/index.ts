// `tsmesh gateway`: the Gateway API gateway built from the sidecar's outbound data path.
export { GATEWAY_HELP, parseGatewayConfig, type GatewayConfig } from './config.js';
export { startGateway, type RunningGateway } from './gateway.js';
export { pickCertificate } from './sni.js';

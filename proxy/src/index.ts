export * from './balance/index.js';
export * from './iptables/index.js';
export { startProxy, type RunningProxy } from './proxy.js';
export { parseProxyConfig, PROXY_HELP, ConfigError, PROXY_CONFIG_ERROR, type ProxyConfig } from './config.js';
export { classify, parseClientHello, type Detection, type DetectedProtocol } from './detect/classify.js';
export { originalDst, parseSockaddr, type OriginalDst } from './capture/original-dst.js';
export * from './control-client/index.js';
export * from './gateway/index.js';

export * from './balance/index.js';
export * from './iptables/index.js';

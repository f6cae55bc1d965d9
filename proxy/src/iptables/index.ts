// `tsmesh iptables`: the init container's traffic redirection (see ruleset.ts for the chain layout).
export * from './config.js';
export * from './errors.js';
export * from './flags.js';
export * from './nat-table.js';
export * from './ruleset.js';
export * from './executor.js';
export * from './ipv6.js';
export * from './apply.js';

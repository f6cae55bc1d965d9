export * from './topology.js';
export * from './mesh.js';
export * from './sidecar.js';
export * from './workloads.js';
export * from './ca.js';
export * from './collector.js';

export * from './errors.js';
export * from './logger.js';
export * from './mesh/types.js';

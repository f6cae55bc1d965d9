export * from './balance/index.js';

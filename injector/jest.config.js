import preset from '../jest.preset.js';

export default {
  ...preset,
  // See test-shims/cookie.cjs: fastify's inject() under Jest needs a CommonJS `cookie`.
  moduleNameMapper: { ...preset.moduleNameMapper, '^cookie$': '<rootDir>/test-shims/cookie.cjs' },
};

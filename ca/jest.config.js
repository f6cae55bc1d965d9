import preset from '../jest.preset.js';

export default {
  ...preset,
  // test-shims/cookie.cjs explains why app.inject() needs a CommonJS `cookie` under Jest.
  moduleNameMapper: { ...preset.moduleNameMapper, '^cookie$': '<rootDir>/test-shims/cookie.cjs' },
};

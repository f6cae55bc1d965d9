// Only for Jest: fastify's inject() goes through light-my-request, which require()s the ESM-only
// `cookie` package, and Jest 29's module loader cannot require ESM. The CA's tests send no
// cookies, so the single function light-my-request uses is enough. Real runs load the real package.
'use strict';

module.exports = {
  stringifySetCookie: ({ name, value }) => `${name}=${encodeURIComponent(value)}`,
};

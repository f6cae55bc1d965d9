// Jest 29 cannot require() an ES module, and light-my-request (behind fastify's app.inject) requires the
// ESM-only `cookie` package. Outside Jest, Node 24 loads the real one. This stand-in covers the one
// function light-my-request calls, for the request cookies our tests never send.
'use strict';

function stringifySetCookie(cookie) {
  return `${cookie.name}=${encodeURIComponent(cookie.value)}`;
}

module.exports = { stringifySetCookie };

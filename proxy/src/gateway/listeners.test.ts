// ALPN on HTTPS listeners: h2 only where the routes are gRPC's, since the forwarders speak to a
// backend the protocol the client spoke.
import { alpnFor } from './listeners.js';

describe('ALPN on HTTPS listeners', () => {
  it.each([
    [['h2', 'http/1.1'], false, 'http/1.1'],
    [['h2', 'http/1.1'], true, 'h2'],
    [['http/1.1'], true, 'http/1.1'],
    [['h2'], false, 'h2'],
    [['spdy/3'], false, undefined],
  ] as [string[], boolean, string | undefined][])('offered %j, routes want h2: %s, agrees on %s', (offered, wantH2, expected) => {
    expect(alpnFor(offered, wantH2)).toBe(expected);
  });
});

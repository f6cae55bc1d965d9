// The admin client on addresses that misbehave: a silent server, an endless answer, one that is
// not JSON; each a one-line error naming the address. And the ADDR forms it accepts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminJson, adminRequest, parseAdminAddress } from './admin-client.js';

describe('parseAdminAddress', () => {
  it('reads HOST:PORT, [IPv6]:PORT and a bare PORT', () => {
    expect(parseAdminAddress('ADDR', '10.0.0.1:15000')).toEqual({ host: '10.0.0.1', port: 15000 });
    expect(parseAdminAddress('ADDR', 'localhost:15000')).toEqual({ host: 'localhost', port: 15000 });
    expect(parseAdminAddress('ADDR', '[::1]:15000')).toEqual({ host: '::1', port: 15000 });
    expect(parseAdminAddress('ADDR', '15000')).toEqual({ host: '127.0.0.1', port: 15000 });
  });

  it('refuses anything else, naming the flag and the value', () => {
    for (const bad of ['', '0', '65536', 'host', '::1:15000', 'a b:1', 'host:', ':15000', 'host:12x', '[::1]', 'http://h:1']) {
      expect(() => parseAdminAddress('--proxy', bad)).toThrow(bad === '' ? '--proxy needs an address, HOST:PORT or PORT' : `--proxy: "${bad}" is not HOST:PORT or PORT (1-65535)`);
    }
  });
});

describe('adminRequest against a misbehaving server', () => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/silent') return; // never answers
      if (req.url === '/endless') {
        res.writeHead(200);
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const pump = (): void => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        return pump();
      }
      if (req.url === '/html') return res.end('<html>\n<body>not\tJSON</body>\n</html>');
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('gives up on a silent server after the timeout', async () => {
    await expect(adminRequest({ host: '127.0.0.1', port }, 'GET', '/silent', { timeoutMs: 200 })).rejects.toThrow(`cannot reach the sidecar's admin server at 127.0.0.1:${port}/silent: no answer in 200 ms`);
  });

  it('refuses an answer over the size limit instead of holding it all', async () => {
    await expect(adminRequest({ host: '127.0.0.1', port }, 'GET', '/endless', { maxBytes: 1024 * 1024 })).rejects.toThrow(`127.0.0.1:${port}/endless: the answer is larger than 1048576 bytes, refused`);
  });

  it('says when the answer is not JSON, on one line', async () => {
    await expect(adminJson({ host: '127.0.0.1', port }, 'GET', '/html')).rejects.toThrow(new Error(`127.0.0.1:${port}/html answered something that is not JSON: <html> <body>not JSON</body> </html>`));
    await expect(adminJson({ host: '127.0.0.1', port }, 'GET', '/')).resolves.toEqual({ ok: true });
  });
});

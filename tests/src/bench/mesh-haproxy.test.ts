import { describe, expect, it } from '@jest/globals';
import { clientHaproxyConfig, serverHaproxyConfig } from './mesh-haproxy.js';

const certs = { caFile: '/b/ca.crt', serverPem: '/b/server.pem', clientPem: '/b/client.pem' };

describe('the HAProxy pair', () => {
  it('has the client side on loopback send over mutual TLS 1.3 to the server pod, one thread', () => {
    const config = clientHaproxyConfig('10.236.0.11', certs);
    expect(config).toContain('nbthread 1');
    expect(config).toContain('bind 127.0.0.1:10080\n');
    expect(config).toContain('bind 127.0.0.1:10051 proto h2');
    expect(config).toContain('server peer 10.236.0.11:9443 ssl verify required ca-file /b/ca.crt crt /b/client.pem ssl-min-ver TLSv1.3 alpn http/1.1');
    expect(config).toContain('server peer 10.236.0.11:9444 ssl verify required ca-file /b/ca.crt crt /b/client.pem ssl-min-ver TLSv1.3 alpn h2');
  });

  it('has the server side require a client certificate and forward to the app on its plain ports', () => {
    const config = serverHaproxyConfig(certs);
    expect(config).toContain('bind 0.0.0.0:9443 ssl crt /b/server.pem ca-file /b/ca.crt verify required ssl-min-ver TLSv1.3 alpn http/1.1');
    expect(config).toContain('server app 127.0.0.1:8081\n');
    expect(config).toContain('server app 127.0.0.1:50052 proto h2');
  });
});

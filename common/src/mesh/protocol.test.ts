import { declaredProtocol } from './protocol.js';

describe('declaredProtocol', () => {
  it.each([
    // appProtocol wins over the name
    ['http', 'tcp-x', 'http'],
    ['http2', '', 'http2'],
    ['kubernetes.io/h2c', 'grpc', 'http2'],
    ['grpc', 'http', 'grpc'],
    ['tcp', 'http', 'tcp'],
    ['tls', '', 'tls'],
    ['https', '', 'tls'],
    ['kubernetes.io/ws', 'tcp', 'http'],
    ['kubernetes.io/wss', '', 'tls'],
    ['GRPC', '', 'grpc'],
    // an unrecognised appProtocol falls back to the name
    ['example.com/custom', 'grpc-api', 'grpc'],
    ['example.com/custom', 'metrics', undefined],
  ])('maps appProtocol %j with port name %j to %j', (appProtocol, name, expected) => {
    expect(declaredProtocol(appProtocol, name)).toBe(expected);
  });

  it.each([
    ['http', 'http'],
    ['http-web', 'http'],
    ['http2', 'http2'],
    ['http2-api', 'http2'],
    ['grpc', 'grpc'],
    ['grpc-greeter', 'grpc'],
    ['grpc-web', 'http'],
    ['grpc-web-ui', 'http'],
    ['tcp', 'tcp'],
    ['tcp-db', 'tcp'],
    ['tls', 'tls'],
    ['tls-api', 'tls'],
    ['https', 'tls'],
    ['https-admin', 'tls'],
    ['web', undefined],
    ['httpx', undefined],
    ['metrics-http', undefined],
    ['', undefined],
  ])('maps port name %j without appProtocol to %j', (name, expected) => {
    expect(declaredProtocol(undefined, name)).toBe(expected);
  });
});

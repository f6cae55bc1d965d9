// The server application of the mesh benchmarks (dist/bench/mesh-app.js, run in the server pod):
// a 100-byte HTTP/1.1 answer and a unary gRPC echo, on every port given. Prints `ready` once listening.
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { ECHO_SERVICE, HTTP_BODY } from './mesh-wire.js';

const ports = (list: string | undefined): number[] => (list ?? '').split(',').filter(Boolean).map(Number);

function listenHttp(port: number): Promise<void> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': HTTP_BODY.length });
      res.end(HTTP_BODY);
    });
  });
  server.keepAliveTimeout = 600_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, resolve);
  });
}

function listenGrpc(ports: readonly number[]): Promise<void> {
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, {
    call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
  });
  return Promise.all(
    ports.map(
      (port) =>
        new Promise<void>((resolve, reject) =>
          server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
        ),
    ),
  ).then(() => undefined);
}

const { values } = parseArgs({ options: { 'http-ports': { type: 'string' }, 'grpc-ports': { type: 'string' } } });
try {
  await Promise.all([...ports(values['http-ports']).map(listenHttp), listenGrpc(ports(values['grpc-ports']))]);
  console.log('ready');
} catch (error) {
  console.error(`mesh-app: ${(error as Error).message}`);
  process.exit(1);
}

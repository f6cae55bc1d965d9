// What crosses the mesh in the mesh benchmarks: the small HTTP/1.1 answer and the unary gRPC echo
// (raw bytes, no .proto), the pods' ports and the Services the sidecars route to.
import type * as Grpc from '@grpc/grpc-js';
import { GRPC_PATH } from './cases.js';

export const PROTOCOLS = ['http', 'grpc'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const VARIANTS = ['direct', 'tsmesh', 'haproxy'] as const;
export type Variant = (typeof VARIANTS)[number];

/** The server app's ports: the meshed ones (captured by the server sidecar) and the plain ones (excluded from capture). */
export const APP_PORTS = Object.freeze({ http: { meshed: 8080, plain: 8081 }, grpc: { meshed: 50051, plain: 50052 } });
/** HAProxy pair: the client-side frontends on the client pod's loopback, the server-side TLS frontends. */
export const HAPROXY_PORTS = Object.freeze({ http: { local: 10080, tls: 9443 }, grpc: { local: 10051, tls: 9444 } });
/** The Services' cluster IPs (the app dials them; only the client sidecar knows where they lead). */
export const CLUSTER_IPS = Object.freeze({ http: '10.96.0.20', grpc: '10.96.0.21' });

/** The HTTP answer's body: 100 bytes. */
export const HTTP_BODY = Buffer.alloc(100, 'x');
/** The gRPC request and answer message: 100 bytes. */
export const GRPC_MESSAGE = Buffer.alloc(100, 'y');

const identity = (b: Buffer): Buffer => b;

/** The echo service at `/bench.Echo/Call`, the path the h2load gRPC-shaped case also sends. */
export const ECHO_SERVICE = {
  call: {
    path: GRPC_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies Grpc.ServiceDefinition;

/** Where the app in the client pod sends each protocol's requests for each variant. */
export function targetOf(variant: Variant, protocol: Protocol, serverIp: string): { url: string; grpcTarget: string } {
  const hostPort =
    variant === 'direct' ? `${serverIp}:${APP_PORTS[protocol].plain}` : variant === 'tsmesh' ? `${CLUSTER_IPS[protocol]}:${APP_PORTS[protocol].meshed}` : `127.0.0.1:${HAPROXY_PORTS[protocol].local}`;
  return { url: `http://${hostPort}${protocol === 'grpc' ? GRPC_PATH : '/'}`, grpcTarget: hostPort };
}

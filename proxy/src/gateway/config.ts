// `tsmesh gateway`'s configuration: its own flags (the Gateway to serve) and the sidecar's settings
// it shares (identity, timeouts, admin and health ports), read once by parseProxyConfig.
import { readFlags, type FlagSpec } from '@tsmesh/common';
import { ConfigError, parseProxyConfig, type ProxyConfig } from '../config.js';

export const GATEWAY_HELP = `tsmesh gateway: run the Gateway API gateway (the mesh's front door)

Usage: tsmesh gateway --config FILE [--gateway NAMESPACE/NAME] [flags]

Serves every Gateway whose GatewayClass has controllerName tsmesh.io/gateway-controller, or only
the one --gateway names: each listener on its own port (HTTP; HTTPS with the certificates of
its kubernetes.io/tls Secrets chosen by SNI; TLS in Passthrough mode, relayed by the ClientHello's
server name; TCP), routing by the HTTPRoutes, GRPCRoutes, TLSRoutes and TCPRoutes attached to
it, exactly as the sidecar routes mesh traffic. With TSMESH_CA_ADDR it holds a mesh identity and
reaches meshed backends over mTLS; without it, plaintext.

  --config FILE            the mesh file (GatewayClass, Gateway, HTTPRoute, GRPCRoute, TLSRoute,
                           TCPRoute, ReferenceGrant, Secret, Service, EndpointSlice...), watched: a bad edit keeps the last good
  --gateway NS/NAME        serve only this Gateway
  --admin-port N           admin port on 127.0.0.1: /config_dump (Secret data redacted), /clusters,
                           /certs, /logging (default 15000)
  --health-port N          /healthz/ready and /metrics (default 15020)
  --bind ADDRESS           address of the listeners and the health port (default 0.0.0.0)
  --connect-timeout DUR    upstream connect timeout (default 1s)
  --http-idle-timeout DUR  idle client connections are closed after this long (default 5m)
  --drain-duration DUR     on SIGTERM: not ready, listeners closed, in-flight requests get this long
                           (default 5s; 0: none)
  --mesh-max-bytes SIZE    a larger mesh file is refused unread (default 16Mi)
  --mesh-max-depth N       objects nested deeper are refused (default 64)

Listener ports are bound as the Gateway gives them (ports under 1024 need CAP_NET_BIND_SERVICE).
Environment: as tsmesh proxy (TSMESH_POD_NAMESPACE, TSMESH_SERVICE_ACCOUNT, TSMESH_CA_ADDR,
TSMESH_CA_TOKEN_FILE, TSMESH_TRUST_BUNDLE_FILE, TSMESH_LOG_LEVEL, TSMESH_ACCESS_LOG, TSMESH_TRACING...).
`;

export interface GatewayConfig {
  /** The shared settings; `meshFile` is always set. */
  readonly proxy: ProxyConfig & { readonly meshFile: string };
  /** `namespace/name` of the one Gateway to serve; undefined: every Gateway of the class. */
  readonly gateway: string | undefined;
}

const SHARED = ['config', 'admin-port', 'health-port', 'bind', 'connect-timeout', 'http-idle-timeout', 'drain-duration', 'mesh-max-bytes', 'mesh-max-depth'];
const FLAGS: FlagSpec = { values: [...SHARED, 'gateway'] };
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function parseGatewayConfig(argv: readonly string[], env: Record<string, string | undefined>): GatewayConfig {
  const read = readFlags(argv, FLAGS);
  if (!read.ok) throw new ConfigError(`${read.error} (see tsmesh gateway --help)`);
  const gateway = read.value.get('gateway')?.[0];
  if (gateway !== undefined && !NAME.test(gateway)) throw new ConfigError(`--gateway: expected NAMESPACE/NAME, got "${gateway}"`);
  if (read.value.get('config') === undefined) throw new ConfigError('--config FILE is required: tsmesh gateway reads its Gateways from a mesh file (see tsmesh gateway --help)');
  const shared = SHARED.flatMap((name) => (read.value.get(name) ?? []).map((v) => `--${name}=${v}`));
  // One event loop: the gateway's listeners live in the main thread.
  const proxy = parseProxyConfig([...shared, '--concurrency=1'], env);
  return Object.freeze({ proxy: proxy as GatewayConfig['proxy'], gateway });
}

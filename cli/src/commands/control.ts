// `tsmesh control`: runs the control plane until SIGINT/SIGTERM (SPEC: Command line). Discovery from
// Kubernetes or a mesh file; sidecars stream the mesh over mTLS. Flags are parsed by @tsmesh/control.
import { CONTROL_ERRORS, controlPlaneConfig, startControlPlane, type ControlPlaneConfig } from '@tsmesh/control';
import { setLogLevel } from '@tsmesh/common';
import { parseFlags, untilSignal, type Command } from '../command.js';

const HELP = `tsmesh control: run the control plane (discovery and distribution to sidecars)

Usage:
  tsmesh control --tls-cert FILE --tls-key FILE --trust-bundle FILE [--kubeconfig FILE] [flags]
  tsmesh control --tls-cert FILE --tls-key FILE --trust-bundle FILE --config MESHFILE [flags]

Reads the mesh from Kubernetes (--kubeconfig, else KUBECONFIG, ~/.kube/config or in-cluster) or from a
mesh file (--config), and streams it to sidecars: POST /v1/mesh/stream over HTTP/2 and mutual TLS
(TLS 1.3). Each sidecar is known by the SPIFFE ID of its workload certificate and is sent the mesh
as its workload sees it; a client without a certificate the trust bundle verifies is refused.

Flags:
  --listen HOST:PORT        address sidecars connect to (default 0.0.0.0:15010)
  --tls-cert FILE           PEM serving certificate, then its intermediates (re-read every minute)
  --tls-key FILE            its PEM private key
  --trust-bundle FILE       PEM roots that workload certificates chain to (the CA's root-cert.pem)
  --debug-listen HOST:PORT  local admin server: GET /debug/connections (tsmesh proxy-status),
                            GET /healthz/ready, GET /metrics
                            (default 127.0.0.1:15011; "off" for none)
  --kubeconfig FILE         read the mesh from this cluster
  --config FILE             read the mesh from a mesh file instead (watched for changes)
  --mesh-max-bytes SIZE     a larger mesh file is refused unread, e.g. 512Ki (default 16Mi)
  --mesh-max-depth N        a mesh file nesting deeper is refused before parsing (default 64)
  --trust-domain D          SPIFFE trust domain of workload certificates (default cluster.local)
  --root-namespace NS       namespace of mesh-wide policies (default tsmesh-system)
  --debounce DURATION       quiet time before a change is sent to sidecars, e.g. 50ms (default 100ms)
  --trust-bundle-configmap NAME
                            with Kubernetes: publish the trust bundle as this ConfigMap
                            (key root-cert.pem) in every namespace but kube-system,
                            kube-public and kube-node-lease, where injected sidecars
                            mount it (default tsmesh-ca-root-cert; "off" for none)
  --log-level LEVEL         pino level (default info)

Environment: TSMESH_CONTROL_LISTEN, TSMESH_CONTROL_TLS_CERT, TSMESH_CONTROL_TLS_KEY,
TSMESH_CONTROL_TRUST_BUNDLE, TSMESH_CONTROL_DEBUG_LISTEN, TSMESH_CONTROL_KUBECONFIG,
TSMESH_CONTROL_CONFIG, TSMESH_CONTROL_MESH_MAX_BYTES, TSMESH_CONTROL_MESH_MAX_DEPTH, TSMESH_TRUST_DOMAIN, TSMESH_CONTROL_ROOT_NAMESPACE, TSMESH_CONTROL_DEBOUNCE,
TSMESH_CONTROL_TRUST_BUNDLE_CONFIGMAP, TSMESH_CONTROL_LOG_LEVEL (a flag wins over its variable).
`;

function config(argv: readonly string[]): ControlPlaneConfig {
  return parseFlags(() => controlPlaneConfig(argv), CONTROL_ERRORS.BAD_FLAG);
}

export const controlCommand: Command = {
  name: 'control',
  summary: 'run the control plane (discovery and distribution to sidecars)',
  help: HELP,
  async run(argv) {
    const settings = config(argv);
    setLogLevel(settings.discovery.logLevel);
    const running = await startControlPlane(settings);
    await untilSignal();
    await running.close();
    return 0;
  },
};

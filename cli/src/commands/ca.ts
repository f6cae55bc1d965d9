// `tsmesh ca`: runs the certificate authority until SIGINT/SIGTERM (SPEC: Local-mode CA,
// Certificate authority API). Flags are parsed by @tsmesh/ca's config.ts.
import { CA_SETUP_ERRORS, parseCaConfig, startCa, type CaConfig } from '@tsmesh/ca';
import { setLogLevel } from '@tsmesh/common';
import { parseFlags, untilSignal, type Command } from '../command.js';

const HELP = `tsmesh ca: run the certificate authority

Usage:
  tsmesh ca --state-dir DIR --token-file FILE [flags]   local mode
  tsmesh ca --state-dir DIR [--kubeconfig FILE] [flags]  Kubernetes (TokenReview)

Serves POST /v1/certificates, GET /v1/trust-bundle and GET /healthz over HTTPS.

Flags:
  --listen HOST:PORT        address to serve on (default 0.0.0.0:15012)
  --state-dir DIR           keeps the root and intermediate (created on first start, reused
                            after); the trust bundle is written to DIR/root-cert.pem
  --token-file FILE         YAML list of {token, namespace, serviceAccount[, expiresAt]};
                            without it tokens are checked with the Kubernetes TokenReview API
                            (audience tsmesh-ca)
  --kubeconfig FILE         kubeconfig for TokenReview (default: in-cluster, KUBECONFIG, ~/.kube/config)
  --trust-domain D          SPIFFE trust domain (default cluster.local)
  --default-ttl DURATION    workload certificate lifetime when none is asked (default 24h)
  --max-ttl DURATION        longest lifetime granted; longer requests are clamped (default 48h)
  --root-cert FILE          operator root certificate (its own root first, more roots may follow)
  --root-key FILE           its key: the CA then makes its own intermediate under it
  --intermediate-cert FILE  operator signing certificate (optionally followed by its chain)
  --intermediate-key FILE   its key
  --extra-roots FILE        PEM roots appended to the trust bundle (root rotation)
  --material-poll DURATION  how often the files above are looked at for a change; a changed
                            root, key or bundle is taken without a restart (default 30s)
  --serving-san NAME        extra DNS name or IP for the CA's serving certificate (repeatable)

Durations: 90s, 30m, 24h, 7d, 1h30m. Environment: TSMESH_LOG_LEVEL.
`;

function config(argv: readonly string[]): CaConfig {
  return parseFlags(() => parseCaConfig(argv), CA_SETUP_ERRORS.BAD_FLAG);
}

export const caCommand: Command = {
  name: 'ca',
  summary: 'run the certificate authority',
  help: HELP,
  async run(argv) {
    const settings = config(argv);
    setLogLevel(settings.logLevel);
    const running = await startCa(settings);
    await untilSignal();
    await running.close();
    return 0;
  },
};

// `tsmesh check [--pre]`: whether tsmesh can be installed in the cluster (--pre), or whether the
// installation is healthy: one ✔/✖ line per check, each ✖ with its fix; exit 0 when all pass.
import { UsageError, type Command } from '../command.js';
import { argumentsOf, controlNamespaceFlag, kubeconfigFlag } from '../flags.js';

const HELP = `tsmesh check: check the cluster before installing tsmesh (--pre), or the installation

Usage: tsmesh check [--pre] [--kubeconfig FILE] [--control-namespace NS]

Prerequisites (--pre):
  Kubernetes API   the API server answers, and runs Kubernetes 1.25 or newer
  Gateway API      the HTTPRoute and GRPCRoute CRDs are installed
  permissions      this user may create what the chart creates (SelfSubjectAccessReview)

The installation (without --pre):
  Kubernetes API, Gateway API as above
  tsmesh CRDs      PeerAuthentication, AuthorizationPolicy, HTTPLocalRateLimitPolicy, TrafficPolicy
  injection webhook  MutatingWebhookConfiguration tsmesh-sidecar-injector-NS exists and its
                   caBundle holds the injector's CA (Secret tsmesh-injector-ca or tsmesh-injector-tls)
  control plane    Deployments tsmesh-control, tsmesh-ca and tsmesh-injector are ready
  trust bundle     ConfigMap tsmesh-ca-root-cert is in every namespace labelled tsmesh-injection=enabled

Each check prints one line: ✔ and what it found, or ✖, what is wrong, and the fix.

Flags:
  --pre                    check the prerequisites only
  --kubeconfig FILE        the cluster (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --control-namespace NS   where tsmesh runs (default tsmesh-system)

Exit codes: 0 every check passed; 1 a check failed (or the cluster cannot be reached); 2 bad arguments.
`;

interface Flags {
  readonly pre: boolean;
  readonly kubeconfig: string | undefined;
  readonly namespace: string;
}

function parse(argv: readonly string[]): Flags {
  let pre = false;
  let kubeconfig: string | undefined;
  let namespace = 'tsmesh-system';
  for (const { arg, flag, inline, value } of argumentsOf(argv)) {
    if (flag === '--pre' && !inline) pre = true;
    else if (flag === '--kubeconfig') kubeconfig = kubeconfigFlag(value());
    else if (flag === '--control-namespace') namespace = controlNamespaceFlag(value());
    else throw new UsageError(`unexpected argument "${arg}" (see tsmesh check --help)`);
  }
  return { pre, kubeconfig, namespace };
}

export const checkCommand: Command = {
  name: 'check',
  summary: 'check the cluster before installing tsmesh (--pre), or the installation: one ✔/✖ line per check with its fix',
  help: HELP,
  async run(argv) {
    const flags = parse(argv);
    const { loadKubeConfig } = await import('../kube.js');
    const { INSTALL_CHECKS, PRE_CHECKS, apiServerCheck } = await import('./check-checks.js');
    const kube = loadKubeConfig(flags.kubeconfig);
    const context = { kube, namespace: flags.namespace };
    let failed = 0;
    for (const check of flags.pre ? PRE_CHECKS : INSTALL_CHECKS) {
      const verdicts = await check.run(context);
      for (const verdict of verdicts) {
        process.stdout.write(verdict.ok ? `✔ ${check.title}: ${verdict.detail}\n` : `✖ ${check.title}: ${verdict.detail} — fix: ${verdict.fix}\n`);
        if (!verdict.ok) failed++;
      }
      // Nothing else can be checked without the API server.
      if (check === apiServerCheck && verdicts[0]?.ok !== true) break;
    }
    process.stdout.write(failed === 0 ? `${flags.pre ? 'Ready to install tsmesh' : 'tsmesh is healthy'}: every check passed.\n` : `${failed} check${failed > 1 ? 's' : ''} failed.\n`);
    return failed === 0 ? 0 : 1;
  },
};

// `tsmesh analyze`: the mistakes people make in a mesh's configuration — routes to nothing,
// competing PeerAuthentications, STRICT mTLS without sidecars, unknown annotations, policies that
// select nothing — read from mesh files or from a cluster, each finding with a stable TSM code.
import { UsageError, type Command } from '../command.js';
import type { Severity } from '../analyze/messages.js';
import type { OutputFormat } from '../analyze/output.js';

const SUMMARY = 'find mistakes in mesh files or a cluster: routes to nothing, competing or unenforced mTLS policies, unknown annotations';

const HELP = `tsmesh analyze: ${SUMMARY}

Usage: tsmesh analyze -f FILE... [-o table|json|yaml] [--fail-on error|warning|info]
       tsmesh analyze [-n NS | -A] [--kubeconfig FILE] [-o table|json|yaml] [--fail-on ...]

With -f, analyzes the files (YAML or JSON streams of Kubernetes objects, read by the mesh-file
parser of tsmesh proxy --config; a directory stands for its *.yaml, *.yml and *.json files; - is
standard input) as the whole mesh: a route naming a Service the files do not hold is reported.
Pod- and Namespace-based checks run only when the files hold Pods or Namespaces.
Without -f, reads the cluster through the Kubernetes API (every namespace, since a route may name a
Service of another) and reports on the namespace of the current context, -n NS, or all (-A).

Each finding: a code (TSM0xxx), a severity (Error, Warning, Info), the object and one line.
The codes and the fix for each are in docs/operations.md.
  TSM0001 Error    an object the mesh refuses (invalid): the control plane leaves it out
  TSM0101 Error    a route's backendRef names a Service that does not exist
  TSM0102 Error    a route's backendRef names a port the Service does not expose (or none)
  TSM0103 Error    a route's parentRef names a Service or Gateway that does not exist
  TSM0104 Error    a route on a Gateway names a backend in another namespace without a ReferenceGrant
  TSM0105 Info     a mesh route names a backend in another namespace without a ReferenceGrant
  TSM0201 Error    two namespace-wide (or mesh-wide) PeerAuthentications in one namespace
  TSM0202 Warning  two PeerAuthentications select the same workloads
  TSM0301 Warning  pods without a sidecar call workloads that are STRICT
  TSM0302 Warning  a STRICT PeerAuthentication over workloads without a sidecar
  TSM0401 Warning  a tsmesh.io/ annotation tsmesh does not read (typo, or on the wrong kind)
  TSM0402 Warning  a tsmesh-injection namespace label that is neither enabled nor disabled
  TSM0501 Warning  an AuthorizationPolicy whose selector matches no pod
  TSM0502 Warning  an HTTPLocalRateLimitPolicy whose selector matches no pod

Flags:
  -f, --filename FILE...     analyze these files instead of a cluster (repeatable)
  -n, --namespace NS         report on this namespace (default: the current context's)
  -A, --all-namespaces       report on every namespace
  --kubeconfig FILE          the cluster (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --control-namespace NS     the mesh's root namespace: selector-less policies there are
                             mesh-wide (default tsmesh-system)
  -o, --output FMT           table (default), json or yaml
  --fail-on SEVERITY         exit 1 when a finding is this severe or more (default error)

Exit codes: 0 no finding at or above --fail-on; 1 some (or the files or the cluster could not be
read: a one-line reason on standard error); 2 bad arguments or a file that cannot be opened.
`;

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

interface Flags {
  readonly files: readonly string[];
  readonly namespace: string | undefined;
  readonly allNamespaces: boolean;
  readonly kubeconfig: string | undefined;
  readonly rootNamespace: string;
  readonly output: OutputFormat;
  readonly failOn: Severity;
}

const SEVERITY_FLAG: Readonly<Record<string, Severity>> = { error: 'Error', warning: 'Warning', info: 'Info' };

export function parseAnalyzeFlags(argv: readonly string[]): Flags {
  const files: string[] = [];
  let filesFlag = false;
  let namespace: string | undefined;
  let allNamespaces = false;
  let kubeconfig: string | undefined;
  let rootNamespace = 'tsmesh-system';
  let output: OutputFormat = 'table';
  let failOn: Severity = 'Error';
  const namespaceValue = (flag: string, v: string | undefined): string => {
    if (v === undefined || !NAME.test(v)) throw new UsageError(`${flag}: "${v ?? ''}" is not a namespace name`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    if (flag === '-f' || flag === '--filename') {
      const v = value();
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a file`);
      filesFlag = true;
      files.push(v);
    } else if (flag === '-n' || flag === '--namespace') namespace = namespaceValue(flag, value());
    else if ((flag === '-A' || flag === '--all-namespaces') && eq < 0) allNamespaces = true;
    else if (flag === '--kubeconfig') {
      kubeconfig = value();
      if (kubeconfig === undefined || kubeconfig === '') throw new UsageError('--kubeconfig needs a file');
    } else if (flag === '--control-namespace') rootNamespace = namespaceValue(flag, value());
    else if (flag === '-o' || flag === '--output') {
      const v = value();
      if (v !== 'table' && v !== 'json' && v !== 'yaml') throw new UsageError(`${flag}: "${v ?? ''}" is not an output format (table, json or yaml)`);
      output = v;
    } else if (flag === '--fail-on') {
      const v = value();
      const severity = SEVERITY_FLAG[v ?? ''];
      if (severity === undefined) throw new UsageError(`--fail-on: "${v ?? ''}" is not a severity (error, warning or info)`);
      failOn = severity;
    } else if (filesFlag && !arg.startsWith('-')) files.push(arg);
    else if (!arg.startsWith('-')) throw new UsageError(`unexpected argument "${arg}": files to analyze follow -f (see tsmesh analyze --help)`);
    else throw new UsageError(`unknown flag "${arg}" (see tsmesh analyze --help)`);
  }
  if (namespace !== undefined && allNamespaces) throw new UsageError('-n and --all-namespaces exclude each other: one namespace, or all');
  if (filesFlag && (namespace !== undefined || allNamespaces || kubeconfig !== undefined)) {
    throw new UsageError('-f analyzes the files as the whole mesh: -n, --all-namespaces and --kubeconfig are for a cluster');
  }
  return { files, namespace, allNamespaces, kubeconfig, rootNamespace, output, failOn };
}

export const analyzeCommand: Command = {
  name: 'analyze',
  summary: SUMMARY,
  help: HELP,
  async run(argv) {
    const flags = parseAnalyzeFlags(argv);
    const { analyze, fails } = await import('../analyze/analyze.js');
    const { formatMessages } = await import('../analyze/output.js');
    let messages;
    if (flags.files.length > 0) {
      const { UnreadableFileError, inputFromFiles } = await import('../analyze/files.js');
      let input;
      try {
        input = inputFromFiles(flags.files, flags.rootNamespace);
      } catch (error) {
        if (error instanceof UnreadableFileError) throw new UsageError(error.message);
        throw error;
      }
      messages = analyze(input);
    } else {
      const { loadKubeConfig } = await import('../kube.js');
      const { contextNamespace, inputFromCluster } = await import('../analyze/cluster.js');
      const config = loadKubeConfig(flags.kubeconfig);
      const namespace = flags.allNamespaces ? undefined : (flags.namespace ?? contextNamespace(config));
      messages = analyze(await inputFromCluster(config, flags.rootNamespace), { namespace });
    }
    process.stdout.write(formatMessages(messages, flags.output));
    return fails(messages, flags.failOn) ? 1 : 0;
  },
};

// `tsmesh dashboard`: a read-only page in the browser showing the mesh live — the topology of
// workloads with rate, success and p99 on every edge, each workload's golden signals over time,
// and recent traces — from the sidecars' /metrics (scraped here) and the trace collector.
import { isIP } from 'node:net';
import { UsageError, untilSignal, type Command } from '../command.js';
import { readDemoState } from '../dashboard/demo-state.js';
import { Scraper, type Target } from '../dashboard/scraper.js';
import { createDashboardServer, type DashboardState } from '../dashboard/server.js';
import { tracesFromFile, tracesFromZipkin, type TraceSummary } from '../dashboard/traces.js';

export const DEFAULT_LISTEN = '127.0.0.1:15500';
const TRACE_REFRESH_MS = 2000;
const TRACE_LIMIT = 20;

const HELP = `tsmesh dashboard: a live, read-only dashboard of the mesh in the browser

Usage: tsmesh dashboard --from-demo FILE [--listen HOST:PORT]
       tsmesh dashboard --sidecar [NAME=]ADDR ... [--spans-file FILE | --zipkin URL] [--listen HOST:PORT]

Scrapes each sidecar's /metrics (its health port, ${'15020'} in a pod) every interval and serves a
page with: the topology of workloads, with requests per second, success rate and p99 latency on
every edge (over the last interval, from counter and histogram-bucket deltas); each workload's
rate, success rate, p50 and p99 over the last minutes; and the most recent traces.

  --from-demo FILE       the state file that tsmesh demo --keep prints (its sidecars and traces)
  --sidecar [NAME=]ADDR  a sidecar to watch (repeatable): HOST:PORT of its health port, or
                         unix:PATH; NAME labels it in the page (default: ADDR)
  --spans-file FILE      recent traces from a collector's span file (JSON lines, as the demo's)
  --zipkin URL           recent traces from a Zipkin-compatible query API (GET URL/api/v2/traces)
  --listen HOST:PORT     where the page is served (default ${DEFAULT_LISTEN}; PORT 0 picks one).
                         Off loopback, anyone who reaches the port can read the mesh's traffic.
  --interval DUR         time between scrapes, 250ms to 60s (default 1s)

The page is read-only (GET only), sends a strict Content-Security-Policy, answers only requests
addressed to it by a loopback name or the --listen host, and shows no span tags or headers.
Stops on Ctrl-C. Exit codes: 0 stopped; 1 could not start; 2 bad arguments.
`;

export interface DashboardFlags {
  readonly listen: { readonly host: string; readonly port: number };
  readonly targets: readonly Target[];
  readonly spansFile: string | undefined;
  readonly zipkin: string | undefined;
  readonly intervalMs: number;
}

function parseListen(value: string | undefined): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value ?? '');
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port <= 65535)) throw new UsageError(`--listen: "${value ?? ''}" is not HOST:PORT (PORT 0-65535)`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

function parseTarget(value: string | undefined): Target {
  if (value === undefined || value === '') throw new UsageError('--sidecar needs an address: HOST:PORT or unix:PATH, optionally NAME=ADDR');
  const eq = value.indexOf('=');
  const name = eq > 0 ? value.slice(0, eq) : value;
  const address = eq > 0 ? value.slice(eq + 1) : value;
  const ok = address.startsWith('unix:') ? address.length > 5 : /^(?:\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+):(\d{1,5})$/.test(address) && Number(address.split(':').pop()) >= 1 && Number(address.split(':').pop()) <= 65535;
  if (!ok) throw new UsageError(`--sidecar: "${address}" is not HOST:PORT or unix:PATH`);
  return { name, address };
}

function parseInterval(value: string | undefined): number {
  const m = /^(\d{1,6})(ms|s)$/.exec(value ?? '');
  const ms = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : NaN;
  if (!(ms >= 250 && ms <= 60_000)) throw new UsageError(`--interval: "${value ?? ''}" is not a duration from 250ms to 60s (e.g. 1s, 500ms)`);
  return ms;
}

export function parseDashboardFlags(argv: readonly string[]): DashboardFlags {
  let listen = parseListen(DEFAULT_LISTEN);
  const targets: Target[] = [];
  let spansFile: string | undefined;
  let zipkin: string | undefined;
  let intervalMs = 1000;
  let fromDemo: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    if (flag === '--listen') listen = parseListen(value());
    else if (flag === '--sidecar') targets.push(parseTarget(value()));
    else if (flag === '--spans-file') spansFile = value() || undefined;
    else if (flag === '--zipkin') {
      const v = value() ?? '';
      if (!/^https?:\/\/[^\s]+$/.test(v) || !URL.canParse(v)) throw new UsageError(`--zipkin: "${v}" is not an http(s) URL`);
      zipkin = v;
    } else if (flag === '--interval') intervalMs = parseInterval(value());
    else if (flag === '--from-demo') {
      fromDemo = value();
      if (!fromDemo) throw new UsageError('--from-demo needs the state file tsmesh demo --keep printed');
    } else throw new UsageError(`unexpected argument "${arg}" (see tsmesh dashboard --help)`);
  }
  if (fromDemo !== undefined) {
    let state;
    try {
      state = readDemoState(fromDemo);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    targets.push(...state.sidecars.map((s) => ({ name: `${s.name}.${s.namespace}`, address: s.metrics })));
    spansFile ??= state.spansFile;
  }
  if (targets.length === 0) throw new UsageError('nothing to watch: give --from-demo FILE or at least one --sidecar ADDR');
  if (spansFile !== undefined && zipkin !== undefined) throw new UsageError('--spans-file and --zipkin exclude each other: give one source of traces');
  return { listen, targets, spansFile, zipkin, intervalMs };
}

/** Keeps the latest trace summaries, refreshed in the background so a page load never waits on the collector. */
class TraceSource {
  list: readonly TraceSummary[] = [];
  error: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly flags: DashboardFlags) {}

  get source(): string | undefined {
    return this.flags.spansFile ?? this.flags.zipkin;
  }

  start(): void {
    if (this.source === undefined) return;
    const refresh = async (): Promise<void> => {
      try {
        this.list = this.flags.spansFile !== undefined ? tracesFromFile(this.flags.spansFile, TRACE_LIMIT) : await tracesFromZipkin(this.flags.zipkin ?? '', TRACE_LIMIT, TRACE_REFRESH_MS);
        this.error = undefined;
      } catch (error) {
        this.error = (error as Error).message;
      }
      this.timer = setTimeout(() => void refresh(), TRACE_REFRESH_MS);
    };
    void refresh();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

export const dashboardCommand: Command = {
  name: 'dashboard',
  summary: 'serve a live, read-only dashboard of the mesh: topology with rate/success/p99, golden signals, traces',
  help: HELP,
  async run(argv) {
    const flags = parseDashboardFlags(argv);
    const scraper = new Scraper({ targets: flags.targets, intervalMs: flags.intervalMs });
    const traces = new TraceSource(flags);
    const state = (): DashboardState => ({
      ...scraper.current(),
      traces: { source: traces.source, ...(traces.error === undefined ? {} : { error: traces.error }), list: traces.list },
    });
    const server = createDashboardServer({ state }, { hosts: [flags.listen.host] });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${flags.listen.host}:${flags.listen.port}: ${error.code ?? error.message}`, { cause: error })));
      server.listen(flags.listen.port, flags.listen.host, resolve);
    });
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : flags.listen.port;
    const host = isIP(flags.listen.host) === 6 ? `[${flags.listen.host}]` : flags.listen.host;
    const loopback = /^(127\.|localhost$|::1$)/.test(flags.listen.host);
    if (!loopback) process.stderr.write(`tsmesh dashboard: listening on ${flags.listen.host}, off loopback: anyone who reaches it can read the mesh's traffic\n`);
    scraper.start();
    traces.start();
    process.stdout.write(`tsmesh dashboard: http://${host}:${port}/ (watching ${flags.targets.length} sidecar${flags.targets.length === 1 ? '' : 's'}; Ctrl-C to stop)\n`);
    await untilSignal();
    traces.stop();
    await scraper.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    return 0;
  },
};

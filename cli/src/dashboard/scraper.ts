// Scrapes every watched sidecar's /metrics on a fixed interval and keeps what the page shows: the
// traffic of each edge and workload over the last interval, and each workload's signals over the
// last minutes. Figures come from the deltas between two scrapes of the same sidecar.
import http from 'node:http';
import { counterDeltas, indexScrape, intervalStats, type EdgeStats, type WorkloadStats } from './golden.js';
import { parsePrometheusText, type Sample } from './prom-text.js';

/** A sidecar to scrape: `HOST:PORT` of its health port, or `unix:PATH`. */
export interface Target {
  readonly name: string;
  readonly address: string;
}

export interface TargetStatus {
  readonly name: string;
  readonly address: string;
  readonly up: boolean;
  /** Why the last scrape failed. */
  readonly error?: string;
}

/** One workload's signals over time, oldest first; null where there was no traffic to measure. */
export interface WorkloadHistory {
  readonly rps: (number | null)[];
  readonly successRate: (number | null)[];
  readonly p50: (number | null)[];
  readonly p99: (number | null)[];
}

export interface ScrapeView {
  /** When the last interval ended (ms since the epoch); 0 before two scrapes. */
  readonly at: number;
  readonly intervalMs: number;
  readonly targets: readonly TargetStatus[];
  readonly edges: readonly EdgeStats[];
  readonly workloads: readonly WorkloadStats[];
  /** Seconds since the epoch of each point of the histories. */
  readonly times: readonly number[];
  readonly history: Readonly<Record<string, WorkloadHistory>>;
}

/** The largest /metrics body read. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** GETs /metrics from a target; rejects with a one-line reason. */
export function fetchMetrics(address: string, timeoutMs: number): Promise<string> {
  const where: http.RequestOptions = address.startsWith('unix:') ? { socketPath: address.slice(5) } : hostPort(address);
  return new Promise((resolve, reject) => {
    const req = http.get({ ...where, path: '/metrics', timeout: timeoutMs, headers: { accept: 'text/plain' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`GET /metrics answered ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) return req.destroy(new Error(`/metrics is larger than ${MAX_BODY_BYTES} bytes`));
        chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

function hostPort(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  return { host: m?.[1] ?? '127.0.0.1', port: Number(m?.[2]) };
}

export interface ScraperOptions {
  readonly targets: readonly Target[];
  readonly intervalMs: number;
  /** Points of history kept per workload. */
  readonly historyPoints?: number;
  /** How a body is fetched (tests pass a fake). */
  readonly fetch?: (address: string, timeoutMs: number) => Promise<string>;
  readonly now?: () => number;
}

export class Scraper {
  private readonly previous = new Map<string, { at: number; index: Map<string, Sample> }>();
  private readonly status = new Map<string, TargetStatus>();
  private view: ScrapeView;
  private readonly times: number[] = [];
  private readonly history = new Map<string, WorkloadHistory>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: ScraperOptions) {
    for (const t of options.targets) this.status.set(t.name, { name: t.name, address: t.address, up: false, error: 'not scraped yet' });
    this.view = { at: 0, intervalMs: options.intervalMs, targets: [...this.status.values()], edges: [], workloads: [], times: [], history: {} };
  }

  /** What the page shows now. */
  current(): ScrapeView {
    return this.view;
  }

  /** Scrapes every target once and folds the interval since the previous scrape into the view. */
  async tick(): Promise<void> {
    const fetch = this.options.fetch ?? fetchMetrics;
    const now = this.options.now ?? Date.now;
    const deltas: Sample[] = [];
    let seconds = 0;
    await Promise.all(
      this.options.targets.map(async (target) => {
        try {
          const body = await fetch(target.address, Math.max(500, this.options.intervalMs));
          const at = now();
          const index = indexScrape(parsePrometheusText(body).samples);
          const before = this.previous.get(target.name);
          this.previous.set(target.name, { at, index });
          if (before !== undefined) {
            deltas.push(...counterDeltas(before.index, index));
            seconds = Math.max(seconds, (at - before.at) / 1000);
          }
          this.status.set(target.name, { name: target.name, address: target.address, up: true });
        } catch (error) {
          this.status.set(target.name, { name: target.name, address: target.address, up: false, error: (error as Error).message });
        }
      }),
    );
    const targets = [...this.status.values()];
    if (seconds <= 0) {
      this.view = { ...this.view, targets };
      return;
    }
    const { edges, workloads } = intervalStats(deltas, seconds);
    this.record(now(), workloads);
    const history: Record<string, WorkloadHistory> = {};
    for (const [id, h] of this.history) history[id] = h;
    this.view = { at: now(), intervalMs: this.options.intervalMs, targets, edges, workloads, times: [...this.times], history };
  }

  private record(at: number, workloads: readonly WorkloadStats[]): void {
    const limit = this.options.historyPoints ?? 300;
    this.times.push(at / 1000);
    const seen = new Set<string>();
    for (const w of workloads) {
      seen.add(w.id);
      let h = this.history.get(w.id);
      if (!h) {
        const empty = (): (number | null)[] => this.times.slice(0, -1).map(() => null);
        this.history.set(w.id, (h = { rps: empty(), successRate: empty(), p50: empty(), p99: empty() }));
      }
      h.rps.push(w.rps);
      h.successRate.push(w.successRate);
      h.p50.push(w.p50);
      h.p99.push(w.p99);
    }
    for (const [id, h] of this.history) {
      if (!seen.has(id)) for (const series of Object.values(h) as (number | null)[][]) series.push(null);
    }
    if (this.times.length > limit) {
      const drop = this.times.length - limit;
      this.times.splice(0, drop);
      for (const h of this.history.values()) for (const series of Object.values(h) as (number | null)[][]) series.splice(0, drop);
    }
  }

  /** Scrapes now and then every interval until stop(). */
  start(): void {
    const loop = (): void => {
      this.running = this.tick().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.options.intervalMs);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}

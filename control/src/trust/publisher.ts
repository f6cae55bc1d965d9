// Publishes the mesh's trust bundle as the ConfigMap `tsmesh-ca-root-cert` in every namespace, so a
// pod injected anywhere finds the roots its sidecar needs to reach the CA, with nothing copied by
// hand. It watches only ConfigMaps of that one name (a field selector, so RBAC can name it), creates
// what is missing, puts back what someone edited or deleted, and rewrites them all when the bundle
// changes (a root rotation). Writes go one namespace at a time through a small pool; a failure is
// retried with backoff and never stops discovery or distribution.
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, logger, type KubeObject, type Logger, type MeshProvider, type MeshSnapshot } from '@tsmesh/common';
import { describeError } from '../errors.js';
import { DebouncedPass } from '../debounced-pass.js';
import { Backoff, type BackoffOptions } from '../kube/backoff.js';
import { ResourceInformer } from '../kube/informer.js';
import { KubeHttp, statusCodeOf } from '../kube/kube-http.js';
import type { InformedResource } from '../kube/resources.js';

/** Namespaces the injector never injects into (SPEC.md, *Injection*): nothing there needs the bundle. */
export const DEFAULT_EXCLUDED_NAMESPACES: readonly string[] = Object.freeze(['kube-system', 'kube-public', 'kube-node-lease']);
export const DEFAULT_PUBLISH_DEBOUNCE_MS = 100;
/** How often everything is compared again even when no event came (a safety net, not the mechanism). */
export const DEFAULT_RESYNC_MS = 5 * 60_000;
const DEFAULT_CONCURRENCY = 8;

/** Labels on the ConfigMaps this publisher creates. */
export const TRUST_BUNDLE_LABELS: Readonly<Record<string, string>> = Object.freeze({
  'app.kubernetes.io/part-of': 'tsmesh',
  'app.kubernetes.io/managed-by': 'tsmesh-control',
});

export interface TrustBundlePublisherOptions {
  /** The ConfigMap's name (default `tsmesh-ca-root-cert`, what the injector mounts). */
  readonly name?: string;
  /** Namespaces left alone (default kube-system, kube-public, kube-node-lease). */
  readonly excludeNamespaces?: readonly string[];
  /** How long changes are collected before a pass (default 100 ms). */
  readonly debounceMs?: number;
  /** A full pass this often even without events (default 5 min; 0: never). */
  readonly resyncMs?: number;
  /** Writes in flight at most (default 8). */
  readonly concurrency?: number;
  /** Retries of failed writes and of the ConfigMap watch. */
  readonly backoff?: Partial<BackoffOptions>;
  readonly log?: Logger;
}

export interface TrustBundlePublisherStatus {
  /** Namespaces that should hold the bundle. */
  readonly namespaces: number;
  /** Of those, how many hold the current bundle, as last seen by the watch. */
  readonly current: number;
  /** Whether the ConfigMap watch has listed once (nothing is written before). */
  readonly watching: boolean;
  readonly lastError: string | undefined;
}

/** What a pass decided for one namespace. */
type Write = { readonly namespace: string; readonly existing: KubeObject | undefined };

const isTerminating = (namespace: KubeObject): boolean =>
  namespace.metadata['deletionTimestamp'] !== undefined || (namespace['status'] as { phase?: unknown } | undefined)?.phase === 'Terminating';

const dataOf = (configMap: KubeObject | undefined): Readonly<Record<string, unknown>> => {
  const data = configMap?.['data'];
  return typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
};

export class TrustBundlePublisher {
  private readonly http: KubeHttp;
  private readonly name: string;
  private readonly excluded: ReadonlySet<string>;
  private readonly resyncMs: number;
  private readonly concurrency: number;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly informer: ResourceInformer<InformedResource>;
  private bundle: string;
  private readonly passes: DebouncedPass;
  private unsubscribe: (() => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastError: string | undefined;

  constructor(
    private readonly provider: MeshProvider,
    kube: KubeConfig | KubeHttp,
    bundle: string,
    options: TrustBundlePublisherOptions = {},
  ) {
    this.http = kube instanceof KubeConfig ? new KubeHttp(kube) : kube;
    this.bundle = bundle;
    this.name = options.name ?? TRUST_BUNDLE_CONFIGMAP;
    this.excluded = new Set(options.excludeNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES);
    this.passes = new DebouncedPass(() => this.pass(), options.debounceMs ?? DEFAULT_PUBLISH_DEBOUNCE_MS);
    this.resyncMs = options.resyncMs ?? DEFAULT_RESYNC_MS;
    this.concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    this.log = options.log ?? logger('control.trust-bundle');
    this.backoff = new Backoff(options.backoff);
    this.informer = new ResourceInformer(
      { kind: 'ConfigMap', apiVersion: 'v1', path: '/api/v1/configmaps', fieldSelector: `metadata.name=${this.name}`, optional: false },
      {
        http: this.http,
        pageSize: 500,
        backoff: options.backoff ?? {},
        absentRetryMs: 0,
        log: this.log,
        onChange: () => this.schedule(),
        onSynced: () => this.schedule(),
      },
    );
  }

  /**
   * Starts watching and publishing. Never fails: when the ConfigMaps cannot be listed (RBAC), it says
   * so and keeps trying; discovery and distribution go on meanwhile.
   */
  start(): void {
    if (this.unsubscribe !== undefined || this.closed) return;
    this.unsubscribe = this.provider.subscribe(() => this.schedule());
    void this.informer.start().then((result) => {
      if (!result.ok) {
        this.lastError = result.error.message;
        this.log.error(
          { err: result.error.message, configMap: this.name },
          `cannot watch the trust bundle ConfigMaps; grant list, watch and update on configmaps named ${this.name}, and create on configmaps`,
        );
      }
      this.schedule();
    });
    if (this.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.schedule(), this.resyncMs);
      this.resyncTimer.unref();
    }
  }

  /** A new bundle (the control plane's trust bundle file changed): every ConfigMap gets it. */
  setBundle(bundle: string): void {
    if (bundle === this.bundle) return;
    this.bundle = bundle;
    this.log.info('the trust bundle changed; publishing it to every namespace');
    this.schedule();
  }

  status(): TrustBundlePublisherStatus {
    const wanted = this.namespaces();
    const held = this.byNamespace();
    const current = wanted.filter((ns) => dataOf(held.get(ns))[TRUST_BUNDLE_KEY] === this.bundle).length;
    return { namespaces: wanted.length, current, watching: this.informer.status().state === 'synced', lastError: this.lastError };
  }

  /** Resolves once no pass is running or due (tests, shutdown). */
  settled(): Promise<void> {
    return this.passes.idle();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
    await this.passes.close();
    await this.informer.stop();
  }

  private schedule(delayMs?: number): void {
    this.passes.schedule(delayMs);
  }

  /** The namespaces that should hold the bundle: all but the excluded and the terminating. */
  private namespaces(): string[] {
    const snapshot: MeshSnapshot | undefined = this.provider.current();
    if (snapshot === undefined) return [];
    return snapshot.others
      .filter((o) => o.kind === 'Namespace' && typeof o.metadata.name === 'string' && !this.excluded.has(o.metadata.name) && !isTerminating(o))
      .map((o) => o.metadata.name as string)
      .sort();
  }

  private byNamespace(): Map<string, KubeObject> {
    return new Map(this.informer.objects().map((cm) => [cm.metadata.namespace ?? '', cm]));
  }

  /** One comparison of what should be with what the watch shows, and the writes that follow. */
  private async pass(): Promise<void> {
    if (this.informer.status().state !== 'synced') return;
    const held = this.byNamespace();
    const writes: Write[] = [];
    for (const namespace of this.namespaces()) {
      const existing = held.get(namespace);
      if (dataOf(existing)[TRUST_BUNDLE_KEY] !== this.bundle) writes.push({ namespace, existing });
    }
    if (writes.length === 0) {
      this.backoff.reset();
      return;
    }
    let failed = 0;
    const queue = [...writes];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined && !this.closed; next = queue.shift()) {
        if (!(await this.write(next))) failed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, writes.length) }, worker));
    if (failed > 0 && !this.closed) {
      const delay = this.backoff.next();
      this.log.warn({ failed, of: writes.length, retryInMs: delay }, 'some trust bundle ConfigMaps could not be written; retrying');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.schedule(0), delay);
    } else if (failed === 0) {
      this.backoff.reset();
    }
  }

  /** Creates or updates one namespace's ConfigMap; false when it should be tried again. */
  private async write({ namespace, existing }: Write): Promise<boolean> {
    const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
    try {
      if (existing === undefined) {
        await this.http.request(HttpMethod.POST, collection, {
          body: {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: this.name, namespace, labels: { ...TRUST_BUNDLE_LABELS } },
            data: { [TRUST_BUNDLE_KEY]: this.bundle },
          },
        });
        this.log.info({ namespace, configMap: this.name }, 'trust bundle published');
      } else {
        // Other keys and all metadata are kept; the resourceVersion makes a concurrent edit a 409.
        await this.http.request(HttpMethod.PUT, `${collection}/${encodeURIComponent(this.name)}`, {
          body: { ...existing, data: { ...dataOf(existing), [TRUST_BUNDLE_KEY]: this.bundle } },
        });
        this.log.info({ namespace, configMap: this.name }, 'trust bundle updated');
      }
      return true;
    } catch (error) {
      const status = statusCodeOf(error);
      // The namespace went away, or is being deleted: it needs nothing any more.
      if (status === 404 || (status === 403 && /being terminated/.test(describeError(error)))) {
        this.log.debug({ namespace, status }, 'namespace gone or terminating; trust bundle not written');
        return true;
      }
      // It changed since the watch showed it (someone else's write, or our own not seen yet): that
      // change's watch event starts another pass, which compares again.
      if (status === 409) {
        this.log.debug({ namespace }, 'trust bundle ConfigMap changed meanwhile; comparing again');
        return true;
      }
      this.lastError = describeError(error);
      const hint = status === 403 ? `; grant create on configmaps and update on configmaps named ${this.name}` : '';
      this.log.warn({ namespace, status, err: this.lastError }, `cannot write the trust bundle ConfigMap${hint}`);
      return false;
    }
  }
}

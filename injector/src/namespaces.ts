// Where the webhook learns a namespace's labels: the interface, a fixed table (tests, `tsmesh inject`)
// and a short-lived cache in front of a slow source (the API server, see kube.ts).
import { err, ok, type Result } from '@tsmesh/common';
import { INJECTOR_ERRORS, injectorError } from './errors.js';

export type Labels = Readonly<Record<string, string>>;

export interface NamespaceLabels {
  /**
   * Resolves to the labels of the namespace, `{}` when it has none. Never rejects: a namespace that
   * does not exist or cannot be read is an error value (code TSMESH_ERR_INJECT_NAMESPACE_LOOKUP).
   */
  labels(namespace: string): Promise<Result<Labels>>;
}

/** A fixed table; a namespace not in it gets `fallback`, or an error when there is none. */
export function staticNamespaceLabels(table: Readonly<Record<string, Labels>>, fallback?: Labels): NamespaceLabels {
  return {
    async labels(namespace) {
      const labels = table[namespace] ?? fallback;
      if (labels !== undefined) return ok(labels);
      return err(injectorError(INJECTOR_ERRORS.NAMESPACE_LOOKUP, `namespace ${namespace} is not known`));
    },
  };
}

/**
 * Remembers answers of `source` for `ttlMs`; errors are not remembered. Pods of one rollout arrive
 * in a burst, and a namespace's labels rarely change, so one lookup serves the whole burst.
 */
export function cachedNamespaceLabels(
  source: NamespaceLabels,
  ttlMs: number,
  now: () => number = Date.now,
): NamespaceLabels {
  const cache = new Map<string, { labels: Labels; expires: number }>();
  return {
    async labels(namespace) {
      const hit = cache.get(namespace);
      if (hit && hit.expires > now()) return ok(hit.labels);
      const answer = await source.labels(namespace);
      if (answer.ok) cache.set(namespace, { labels: answer.value, expires: now() + ttlMs });
      else cache.delete(namespace);
      return answer;
    },
  };
}

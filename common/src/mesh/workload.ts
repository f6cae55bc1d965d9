// The workload a pod belongs to, as telemetry and policy name it when nothing better (an `app`
// label, the owner reference) is known: guessed from the pod name the controllers generate.

const K8S_SUFFIX = '[bcdfghjklmnpqrstvwxz2456789]';
const DEPLOYMENT_POD = new RegExp(`^(.+)-${K8S_SUFFIX}{5,10}-${K8S_SUFFIX}{5}$`);
const GENERATED_POD = new RegExp(`^(.+)-${K8S_SUFFIX}{5}$`);
const STATEFUL_POD = /^(.+)-\d+$/;

/**
 * `reviews-v1-7d9f8c6b5-x2kqz` → `reviews-v1` (Deployment), `web-0` → `web` (StatefulSet),
 * `agent-x2kqz` → `agent` (DaemonSet, Job). Other names are returned unchanged.
 */
export function workloadFromPodName(podName: string): string {
  for (const pattern of [DEPLOYMENT_POD, GENERATED_POD, STATEFUL_POD]) {
    const match = pattern.exec(podName);
    if (match?.[1] !== undefined) return match[1];
  }
  return podName;
}

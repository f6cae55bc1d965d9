// Test fixtures: AdmissionReviews as the API server sends them, and helpers to vary their pod.
import { readFileSync } from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';

type Review = { apiVersion: string; kind: string; request: { uid: string; namespace?: string; object: V1Pod } & Record<string, unknown> };

/** A fresh copy of testdata/<name>.json. */
export function loadReview(name: 'review-bare-pod' | 'review-deployment-pod'): Review {
  return JSON.parse(readFileSync(new URL(`./${name}.json`, import.meta.url), 'utf8')) as Review;
}

/** A fresh copy of the pod inside a fixture review. */
export function loadPod(name: 'review-bare-pod' | 'review-deployment-pod'): V1Pod {
  return loadReview(name).request.object;
}

/** The bare pod with extra annotations (and labels). */
export function podWith(annotations: Record<string, string>, labels: Record<string, string> = {}): V1Pod {
  const pod = loadPod('review-bare-pod');
  pod.metadata = {
    ...pod.metadata,
    annotations: { ...pod.metadata?.annotations, ...annotations },
    labels: { ...pod.metadata?.labels, ...labels },
  };
  return pod;
}

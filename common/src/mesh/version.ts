// The content version of a set of mesh objects: a short hash, equal for equal content across
// processes and restarts (the control plane sends it, the sidecar ACKs it, a parse worker computes it).
import { createHash } from 'node:crypto';
import type { MeshObject } from './objects.js';

/** The version; `sizes`, when given, receives each object's length as JSON (what it costs to send). */
export function contentVersion(objects: readonly MeshObject[], sizes?: number[]): string {
  const hash = createHash('sha256');
  for (const object of objects) {
    const json = JSON.stringify(object.object);
    sizes?.push(json.length);
    hash.update(json).update('\n');
  }
  return hash.digest('hex').slice(0, 16);
}

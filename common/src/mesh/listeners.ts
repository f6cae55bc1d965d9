// The subscribers of a MeshProvider: every provider (mesh file, Kubernetes, the control plane)
// hands each new snapshot to them the same way, and one that throws does not stop the others.
import type { Logger } from '../logger.js';
import type { MeshSnapshot } from './types.js';

export class SnapshotListeners {
  private readonly listeners = new Set<(snapshot: MeshSnapshot) => void>();

  /** Adds a listener (a MeshProvider's `subscribe`); returns the unsubscribe function. */
  add(listener: (snapshot: MeshSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls every listener with `snapshot`; a listener that throws is logged on `log` and the rest still called. */
  deliver(snapshot: MeshSnapshot, log: Logger): void {
    for (const listener of this.listeners) {
      try {
        listener(snapshot);
      } catch (cause) {
        log.error({ err: cause }, 'a mesh snapshot listener threw');
      }
    }
  }
}

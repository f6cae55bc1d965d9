// One analyzer per family of mistakes: it reads the indexed mesh and returns its findings. A new
// check is one new file under rules/ plus one line in ANALYZERS (analyze.ts).
import type { MeshIndex } from './mesh.js';
import type { Message, MessageTypeKey } from './messages.js';

export interface Analyzer {
  readonly name: string;
  /** The message types it may report (docs and tests list them per analyzer). */
  readonly reports: readonly MessageTypeKey[];
  /** Every finding in `mesh`; never throws for a mesh it cannot judge (it stays silent instead). */
  analyze(mesh: MeshIndex): Message[];
}

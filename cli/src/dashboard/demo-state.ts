// What `tsmesh demo --keep` leaves for `tsmesh dashboard --from-demo FILE`: where each sidecar's
// /metrics can be scraped from this machine and where the demo's traces are. A small JSON file,
// written by the demo and read (and checked) by the dashboard.
import { readFileSync, writeFileSync } from 'node:fs';

export const DEMO_STATE_VERSION = 1;

export interface DemoSidecar {
  /** The pod's name (the workload's, for the client). */
  readonly name: string;
  readonly namespace: string;
  /** Where its /metrics answers from this machine: `HOST:PORT`, or `unix:PATH` (a relay into the pod's namespace). */
  readonly metrics: string;
}

export interface DemoState {
  readonly version: typeof DEMO_STATE_VERSION;
  readonly sidecars: readonly DemoSidecar[];
  /** The collector's span file (one JSON span per line), when the demo runs one. */
  readonly spansFile?: string;
}

export function writeDemoState(file: string, state: Omit<DemoState, 'version'>): void {
  writeFileSync(file, `${JSON.stringify({ version: DEMO_STATE_VERSION, ...state }, null, 2)}\n`, { mode: 0o644 });
}

/** Reads a state file; throws an error naming the file and what is wrong with it. */
export function readDemoState(file: string): DemoState {
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`--from-demo ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (is tsmesh demo --keep running?)' : `not a demo state file: ${(error as Error).message}`}`, { cause: error });
  }
  const state = body as Partial<DemoState> | null;
  if (state?.version !== DEMO_STATE_VERSION) throw new Error(`--from-demo ${file}: not a version ${DEMO_STATE_VERSION} demo state file`);
  const sidecars = Array.isArray(state.sidecars) ? state.sidecars : [];
  const valid = sidecars.filter((s: Partial<DemoSidecar>) => typeof s.name === 'string' && typeof s.namespace === 'string' && typeof s.metrics === 'string');
  if (valid.length === 0 || valid.length !== sidecars.length) throw new Error(`--from-demo ${file}: "sidecars" must be a non-empty list of {name, namespace, metrics}`);
  return { version: DEMO_STATE_VERSION, sidecars: valid, ...(typeof state.spansFile === 'string' ? { spansFile: state.spansFile } : {}) };
}

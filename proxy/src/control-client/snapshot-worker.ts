// The snapshot parse worker (see parseOffThread in @tsmesh/common): one large snapshot line checked
// for nesting, parsed and validated off the sidecar's event loop, under the heap limit set for it.
import { err, ok, serveParseJob } from '@tsmesh/common';
import { snapshotFromLine } from './apply.js';

/** What decodeSnapshotLine passes along. */
export interface SnapshotJob {
  readonly maxDepth: number;
  /** The version the line's first bytes name, for a refusal before parsing. */
  readonly version: string | undefined;
}

serveParseJob<SnapshotJob>((bytes, { maxDepth, version }) => {
  const checked = snapshotFromLine(bytes, maxDepth, version);
  if (checked.ok) return ok(checked.value);
  const refusal = checked.error;
  return err({ code: refusal.error.code, reason: refusal.error.message, ...(refusal.kind === 'rejected' ? { version: refusal.version } : {}) });
});

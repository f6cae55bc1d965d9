// Decoding one snapshot line into validated objects: a small line on the event loop (a few
// milliseconds), a large one in a parse worker (snapshot-worker.ts) with its own heap and time limit,
// its objects taken in a batch per turn of the loop, so a large snapshot never stalls the data path.
import { MESH_ERRORS, err, ok, parseOffThread, type ParseBudget, type Result } from '@tsmesh/common';
import { snapshotFromLine, type CheckedSnapshot, type LineRefusal } from './apply.js';
import { DISCOVERY_ERRORS, DiscoveryError, type DiscoveryErrorCode } from '../errors.js';
import { versionOf } from './lines.js';
import type { SnapshotJob } from './snapshot-worker.js';

/** The compiled worker; the same path from src (under Jest, after a build) and from dist. */
const SNAPSHOT_WORKER = new URL('../../dist/control-client/snapshot-worker.js', import.meta.url);

export interface SnapshotDecodeLimits extends Pick<ParseBudget, 'workerMemoryMb' | 'timeoutMs'> {
  /** Deepest nesting inside an object (the message and its list add two). */
  readonly maxDepth: number;
  /** Lines up to this size are decoded on the loop; longer ones in a worker. */
  readonly inlineBytes: number;
}

export async function decodeSnapshotLine(line: Buffer, limits: SnapshotDecodeLimits, signal?: AbortSignal): Promise<Result<CheckedSnapshot, LineRefusal>> {
  const version = versionOf(line);
  if (line.length <= limits.inlineBytes) return snapshotFromLine(line, limits.maxDepth, version);
  const parsed = await parseOffThread<SnapshotJob>(SNAPSHOT_WORKER, line, { maxDepth: limits.maxDepth, version }, limits, signal);
  if (parsed.ok) return ok({ version: parsed.value.version, objects: parsed.value.objects });
  const { code, reason } = parsed.error;
  const named = parsed.error.version ?? version;
  const known = Object.values(DISCOVERY_ERRORS) as string[];
  if (code === DISCOVERY_ERRORS.CONTROL_PROTOCOL || named === undefined) {
    return err({ kind: 'malformed', error: new DiscoveryError(DISCOVERY_ERRORS.CONTROL_PROTOCOL, reason) });
  }
  if (known.includes(code)) return err({ kind: 'rejected', version: named, error: new DiscoveryError(code as DiscoveryErrorCode, reason) });
  // The worker's own limits (memory, time), or it could not run: this snapshot is refused, not the stream.
  const discoveryCode = code === MESH_ERRORS.MESH_TOO_LARGE ? DISCOVERY_ERRORS.SNAPSHOT_TOO_LARGE : DISCOVERY_ERRORS.SNAPSHOT_REJECTED;
  return err({ kind: 'rejected', version: named, error: new DiscoveryError(discoveryCode, `snapshot ${named}: ${reason}`) });
}

// A mesh file parsed in a worker thread (parse-worker.ts), refused with the same errors as inline.
import { err, ok, type Result } from '../errors.js';
import { MeshFileError } from './file.js';
import type { MeshLimits, ParseBudget } from './limits.js';
import { parseOffThread, type ParsedObjects } from './off-thread.js';
import type { MeshFileJob } from './parse-worker.js';

/** The compiled worker; the same path from src (under Jest, after a build) and from dist. */
const MESH_FILE_WORKER = new URL('../../dist/mesh/parse-worker.js', import.meta.url);

/** As parseMeshObjects, on `bytes`, in a worker within `budget`; `version` is the content version. */
export async function parseMeshOffThread(
  bytes: Uint8Array,
  fileName: string,
  limits: MeshLimits,
  budget: ParseBudget,
  signal?: AbortSignal,
): Promise<Result<ParsedObjects, MeshFileError>> {
  const parsed = await parseOffThread<MeshFileJob>(MESH_FILE_WORKER, bytes, { fileName, limits }, budget, signal);
  if (parsed.ok) return ok(parsed.value);
  const { code, reason, location, cause } = parsed.error;
  return err(new MeshFileError(code, location ?? { file: fileName }, reason, cause === undefined ? undefined : { cause }));
}

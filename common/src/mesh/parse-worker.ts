// The mesh-file parse worker (see off-thread.ts): limits first, then JSON.parse or the YAML parser,
// then validation, on a thread of its own under the heap limit its parent set.
import { err, ok } from '../errors.js';
import { parseMeshObjects } from './file.js';
import type { MeshLimits } from './limits.js';
import { serveParseJob } from './off-thread.js';

/** What parseMeshOffThread passes along. */
export interface MeshFileJob {
  readonly fileName: string;
  readonly limits: MeshLimits;
}

serveParseJob<MeshFileJob>((bytes, { fileName, limits }) => {
  const parsed = parseMeshObjects(bytes.toString('utf8'), fileName, limits);
  return parsed.ok ? ok({ objects: parsed.value }) : err({ code: parsed.error.code, reason: parsed.error.reason, location: parsed.error.location });
});

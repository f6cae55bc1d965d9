// Turning a snapshot message into a MeshSnapshot, all or nothing: every object must validate (with
// the same common code as a mesh file), else the whole snapshot is refused with every reason.
import { buildSnapshotFrom, err, ok, validateObject, type MeshObject, type MeshSnapshot, type Result, type SnapshotMessage } from '@tsmesh/common';
import { DISCOVERY_ERRORS, DiscoveryError } from './errors.js';

/** Reasons listed in a refusal; the rest are counted. */
const MAX_REASONS = 5;

export function snapshotFromMessage(message: SnapshotMessage): Result<MeshSnapshot, DiscoveryError> {
  const valid: MeshObject[] = [];
  const reasons: string[] = [];
  let refused = 0;
  for (const object of message.objects) {
    const result = validateObject(object);
    if (result.ok) {
      valid.push(result.value);
      continue;
    }
    refused++;
    if (reasons.length < MAX_REASONS) reasons.push(result.error.message);
  }
  if (refused > 0) {
    const more = refused > reasons.length ? `; and ${refused - reasons.length} more` : '';
    const noun = refused === 1 ? 'object' : 'objects';
    return err(new DiscoveryError(DISCOVERY_ERRORS.SNAPSHOT_REJECTED, `snapshot ${message.version}: ${refused} invalid ${noun}: ${reasons.join('; ')}${more}`));
  }
  return ok(buildSnapshotFrom(valid, message.version));
}

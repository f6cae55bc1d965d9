// Turning a snapshot line into mesh objects, all or nothing: its objects' nesting is checked before
// it is parsed, then every object must validate (with the same common code as a mesh file), else the
// whole snapshot is refused with every reason. Pure: the same on the loop and in a parse worker.
import {
  buildSnapshotFrom,
  err,
  findExcessJsonNesting,
  ok,
  parseServerMessage,
  validateObject,
  type MeshObject,
  type MeshSnapshot,
  type Result,
  type SnapshotMessage,
} from '@tsmesh/common';
import { DISCOVERY_ERRORS, DiscoveryError } from '../errors.js';

/** Reasons listed in a refusal; the rest are counted. */
const MAX_REASONS = 5;

/** A snapshot's objects, validated. */
export interface CheckedSnapshot {
  readonly version: string;
  readonly objects: MeshObject[];
}

/** Why a line was not applied: a snapshot refused (answered with a NACK), or not the protocol at all. */
export type LineRefusal =
  | { readonly kind: 'rejected'; readonly version: string; readonly error: DiscoveryError }
  | { readonly kind: 'malformed'; readonly error: DiscoveryError };

export function snapshotFromMessage(message: SnapshotMessage): Result<MeshSnapshot, DiscoveryError> {
  const checked = checkSnapshot(message);
  return checked.ok ? ok(buildSnapshotFrom(checked.value.objects, checked.value.version)) : checked;
}

/** Every object of the message validated, or the refusal naming the first five bad ones. */
export function checkSnapshot(message: SnapshotMessage): Result<CheckedSnapshot, DiscoveryError> {
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
  return ok({ version: message.version, objects: valid });
}

/**
 * One line from the control plane: nesting first (an object deeper than maxDepth is refused before
 * JSON.parse runs; the objects sit two levels down the message), then the message, then its objects.
 * `version` is the one the line's first bytes name, for a refusal before parsing.
 */
export function snapshotFromLine(line: Buffer, maxDepth: number, version: string | undefined): Result<CheckedSnapshot, LineRefusal> {
  if (findExcessJsonNesting(line, maxDepth + 2) !== -1) {
    const error = new DiscoveryError(DISCOVERY_ERRORS.SNAPSHOT_TOO_DEEP, `snapshot ${version ?? '(no version)'}: objects nest deeper than ${maxDepth} levels (the depth limit), refused before parsing`);
    return err(version === undefined ? { kind: 'malformed', error } : { kind: 'rejected', version, error });
  }
  const message = parseServerMessage(line.toString('utf8'));
  if (!message.ok) {
    const error = new DiscoveryError(DISCOVERY_ERRORS.CONTROL_PROTOCOL, `the control plane sent a malformed message: ${message.error.message}`, { cause: message.error });
    return err({ kind: 'malformed', error });
  }
  const checked = checkSnapshot(message.value);
  return checked.ok ? checked : err({ kind: 'rejected', version: message.value.version, error: checked.error });
}

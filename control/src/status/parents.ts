// The `status.parents` a route should carry: the entries of other controllers as they are, ours as
// compiled. Pure; lastTransitionTime moves only when a condition's status does.
import type { RouteCondition, RouteParentStatus, RouteStatus, ServiceParentRef } from '@tsmesh/common';

/** The controllerName tsmesh writes in `status.parents[]` (a domain-prefixed path, as the Gateway API asks). */
export const MESH_CONTROLLER_NAME = 'tsmesh.io/mesh-controller';

/** The Gateway API caps a condition message at 32768 characters. */
const MAX_MESSAGE = 32_768;

/** One `status.parents[]` entry as JSON. */
export interface ParentStatusJson {
  parentRef: Record<string, unknown>;
  controllerName: string;
  conditions: ConditionJson[];
  [key: string]: unknown;
}

export interface ConditionJson {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
  [key: string]: unknown;
}

export interface DesiredParents {
  /** The whole `status.parents` to write: other controllers' entries first, in their order, then ours. */
  readonly parents: ParentStatusJson[];
  /** False when our entries are already what they should be: nothing to write. */
  readonly changed: boolean;
}

/** `status.parents` of a stored route (an empty list when it has none or it is malformed). */
export function existingParents(object: { readonly [key: string]: unknown }): ParentStatusJson[] {
  const status = object['status'];
  if (typeof status !== 'object' || status === null) return [];
  const parents = (status as { parents?: unknown }).parents;
  return Array.isArray(parents) ? parents.filter((p): p is ParentStatusJson => typeof p === 'object' && p !== null) : [];
}

/**
 * The parents to write for a route whose compiled status is `computed`, given what is stored now.
 * `now` stamps conditions that are new or changed status; `generation` is metadata.generation.
 */
export function desiredParents(
  stored: readonly ParentStatusJson[],
  computed: RouteStatus,
  options: { readonly controllerName: string; readonly generation: number | undefined; readonly now: string },
): DesiredParents {
  const others = stored.filter((p) => p.controllerName !== options.controllerName);
  const ours = stored.filter((p) => p.controllerName === options.controllerName);
  const next = computed.parents.map((parent) => parentJson(parent, ours, options));
  return { parents: [...others, ...next], changed: !sameJson(ours, next) };
}

function parentJson(
  parent: RouteParentStatus,
  ours: readonly ParentStatusJson[],
  options: { readonly controllerName: string; readonly generation: number | undefined; readonly now: string },
): ParentStatusJson {
  const parentRef = parentRefJson(parent.parentRef);
  const before = ours.find((p) => sameJson(p.parentRef, parentRef));
  return {
    parentRef,
    controllerName: options.controllerName,
    conditions: parent.conditions.map((c) => conditionJson(c, before?.conditions, options)),
  };
}

/** The parentRef as the Gateway API spells one to a Service (core group, explicit namespace). */
export function parentRefJson(ref: ServiceParentRef): Record<string, unknown> {
  return {
    group: '',
    kind: 'Service',
    namespace: ref.namespace,
    name: ref.name,
    ...(ref.sectionName === undefined ? {} : { sectionName: ref.sectionName }),
    ...(ref.port === undefined ? {} : { port: ref.port }),
  };
}

function conditionJson(
  condition: RouteCondition,
  before: readonly ConditionJson[] | undefined,
  options: { readonly generation: number | undefined; readonly now: string },
): ConditionJson {
  const previous = Array.isArray(before) ? before.find((c) => c.type === condition.type) : undefined;
  const keepTime = previous !== undefined && previous.status === condition.status && typeof previous.lastTransitionTime === 'string';
  const message = condition.message.length > MAX_MESSAGE ? `${condition.message.slice(0, MAX_MESSAGE - 3)}...` : condition.message;
  return {
    type: condition.type,
    status: condition.status,
    reason: condition.reason,
    message,
    lastTransitionTime: keepTime ? previous.lastTransitionTime : options.now,
    ...(options.generation === undefined ? {} : { observedGeneration: options.generation }),
  };
}

/** Deep equality of JSON values, whatever the order of object keys. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  const ak = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const bk = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

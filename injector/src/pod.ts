// Checks that an object from a review or a manifest has the pod fields the injector reads, with the
// right JSON types, before anything is built from it.
import type { V1Pod } from '@kubernetes/client-node';
import { err, ok, type Result } from '@tsmesh/common';
import { INJECTOR_ERRORS, injectorError } from './errors.js';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMapProblem(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) return `${where} is not an object`;
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') return `${where}["${key}"] is not a string`;
  }
  return undefined;
}

function containersProblem(value: unknown, where: string, required: boolean): string | undefined {
  if (value === undefined || value === null) return required ? `${where} is missing` : undefined;
  if (!Array.isArray(value)) return `${where} is not a list`;
  if (required && value.length === 0) return `${where} is empty`;
  for (const [index, container] of value.entries()) {
    if (!isObject(container)) return `${where}[${index}] is not an object`;
    if (typeof container.name !== 'string' || container.name === '') return `${where}[${index}].name is missing`;
    for (const field of ['ports', 'env', 'volumeMounts'] as const) {
      if (container[field] !== undefined && container[field] !== null && !Array.isArray(container[field])) {
        return `${where}[${index}].${field} is not a list`;
      }
    }
    for (const field of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
      if (container[field] !== undefined && container[field] !== null && !isObject(container[field])) {
        return `${where}[${index}].${field} is not an object`;
      }
    }
    if (Array.isArray(container.ports) && !container.ports.every(isObject)) {
      return `${where}[${index}].ports has an entry that is not an object`;
    }
  }
  return undefined;
}

/** The value as a V1Pod when it has the shape of one (metadata optional, spec.containers required). */
export function readPod(value: unknown, what = 'pod'): Result<V1Pod> {
  const problem = podProblem(value);
  if (problem === undefined) return ok(value as V1Pod);
  return err(injectorError(INJECTOR_ERRORS.INVALID_POD, `${what} cannot be injected: ${problem}`));
}

function podProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'it is not an object';
  const { metadata, spec } = value;
  if (metadata !== undefined && metadata !== null) {
    if (!isObject(metadata)) return 'metadata is not an object';
    const problem =
      stringMapProblem(metadata.labels, 'metadata.labels') ?? stringMapProblem(metadata.annotations, 'metadata.annotations');
    if (problem !== undefined) return problem;
  }
  if (!isObject(spec)) return 'spec is missing';
  if (spec.volumes !== undefined && spec.volumes !== null) {
    if (!Array.isArray(spec.volumes)) return 'spec.volumes is not a list';
    if (!spec.volumes.every((volume) => isObject(volume) && typeof volume.name === 'string')) {
      return 'spec.volumes has an entry without a name';
    }
  }
  return (
    containersProblem(spec.containers, 'spec.containers', true) ??
    containersProblem(spec.initContainers, 'spec.initContainers', false)
  );
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return isObject(value);
}

// `tsmesh analyze -f`: the mesh from files, read by the sidecar's own mesh-file parser. The files
// are the whole mesh for Services, routes, Gateways and policies (as for `tsmesh proxy --config`);
// Pods and Namespaces are judged only when the files hold some.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SUPPORTED_KINDS, parseMeshObjects, type MeshKind, type MeshObject } from '@tsmesh/common';
import type { AnalysisInput } from './mesh.js';

/** A file that cannot be read: a bad argument (exit 2), unlike a file that is read and refused. */
export class UnreadableFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnreadableFileError';
  }
}

const MESH_FILE = /\.(ya?ml|json)$/i;

/** The files named: a directory stands for its *.yaml, *.yml and *.json files (not recursive). */
export function expandPaths(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    if (path === '-') {
      files.push(path);
      continue;
    }
    let directory: boolean;
    try {
      directory = statSync(path).isDirectory();
    } catch (cause) {
      throw new UnreadableFileError(`cannot read ${path}: ${(cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (cause as Error).message}`, { cause });
    }
    if (!directory) files.push(path);
    else files.push(...readdirSync(path).filter((name) => MESH_FILE.test(name)).sort().map((name) => join(path, name)));
  }
  return files;
}

function readText(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (cause) {
    throw new UnreadableFileError(`cannot read ${path === '-' ? 'standard input' : path}: ${(cause as Error).message}`, { cause });
  }
}

/** Reads and parses every file; a file the parser refuses throws its one-line reason (file:line: object: why). */
export function inputFromFiles(paths: readonly string[], rootNamespace: string): AnalysisInput {
  const objects: MeshObject[] = [];
  for (const path of expandPaths(paths)) {
    const parsed = parseMeshObjects(readText(path), path === '-' ? '<stdin>' : path);
    if (!parsed.ok) throw parsed.error;
    objects.push(...parsed.value);
  }
  return inputFromObjects(objects, rootNamespace);
}

/** The analysis input of objects read from files: Pods and Namespaces count only when some are there. */
export function inputFromObjects(objects: readonly MeshObject[], rootNamespace: string): AnalysisInput {
  const complete = new Set<MeshKind>(SUPPORTED_KINDS.filter((kind) => kind !== 'Pod' && kind !== 'Namespace'));
  for (const kind of ['Pod', 'Namespace'] as const) if (objects.some((o) => o.kind === kind)) complete.add(kind);
  return { objects, invalid: [], complete, rootNamespace };
}

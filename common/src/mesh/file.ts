// The mesh file: a YAML stream of Kubernetes-format objects (documents, or `kind: List` items).
// A file is taken whole or refused whole, with the file, the object and the reason in one line.
// Its size and nesting limits (limits.ts) are checked before any parser runs.
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { Document } from 'yaml';
import { MESH_ERRORS, TsmeshError, err, ok, type Result } from '../errors.js';
import { describeValue, isRecord, messageOf } from './fields.js';
import { DEFAULT_MESH_LIMITS, formatBytes, type MeshLimits } from './limits.js';
import { findExcessJsonNesting, findExcessNesting, type NestingExcess } from './nesting.js';
import { describeObject, identify, validateObject, type MeshObject } from './objects.js';
import type { KubeObject } from './types.js';

/** Where in a mesh file something is, as far as known. */
export interface MeshFileLocation {
  readonly file: string;
  /** 1-based line of the object (or of the syntax error). */
  readonly line?: number;
  readonly column?: number;
  /** 1-based position of the YAML document in the stream, counting empty ones. */
  readonly document?: number;
  /** 1-based position inside a `kind: List` document's items. */
  readonly item?: number;
  /** `Service default/web`. */
  readonly object?: string;
}

/** A mesh file refused: `file:line: document N (Kind ns/name): reason`. */
export class MeshFileError extends TsmeshError {
  readonly location: MeshFileLocation;
  readonly reason: string;

  constructor(code: string, location: MeshFileLocation, reason: string, options?: { cause?: unknown }) {
    super(code, `${formatLocation(location)}: ${reason}`, options);
    this.name = 'MeshFileError';
    this.location = location;
    this.reason = reason;
  }
}


function formatLocation(location: MeshFileLocation): string {
  let where = location.file;
  if (location.line !== undefined) where += `:${location.line}`;
  if (location.column !== undefined) where += `:${location.column}`;
  const parts: string[] = [];
  if (location.document !== undefined) parts.push(`document ${location.document}`);
  if (location.item !== undefined) parts.push(`item ${location.item}`);
  let what = parts.join(', ');
  if (location.object !== undefined) what = what === '' ? location.object : `${what} (${location.object})`;
  return what === '' ? where : `${where}: ${what}`;
}

/**
 * Parses and validates a mesh file; the objects come back with their namespace defaulted. It runs
 * on the calling thread: a file of unknown origin is read by MeshFileSource, which parses in a worker.
 */
export function parseMeshFile(text: string, fileName: string, limits: MeshLimits = DEFAULT_MESH_LIMITS): Result<KubeObject[], MeshFileError> {
  const parsed = parseMeshObjects(text, fileName, limits);
  return parsed.ok ? ok(parsed.value.map((o) => o.object)) : parsed;
}

/**
 * As parseMeshFile, keeping each object's normalised model value (what buildSnapshotFrom takes).
 * The size and nesting limits are checked before any parser runs.
 */
export function parseMeshObjects(text: string, fileName: string, limits: MeshLimits = DEFAULT_MESH_LIMITS): Result<MeshObject[], MeshFileError> {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxBytes) return err(meshTooLarge(fileName, bytes, limits.maxBytes));
  const fast = readJsonMesh(text, limits.maxDepth);
  if (fast !== undefined) return ok(fast);
  const excess = findExcessNesting(text, limits.maxDepth);
  if (excess !== undefined) return err(meshTooDeep(fileName, excess, limits.maxDepth));
  return yamlDocuments(text, fileName);
}

/** A file over the size limit (`bytes` may be a lower bound: the file is not read past the limit). */
export function meshTooLarge(fileName: string, bytes: number, maxBytes: number): MeshFileError {
  const reason = `the file is ${formatBytes(bytes)} (${bytes} bytes), over the size limit of ${formatBytes(maxBytes)}`;
  return new MeshFileError(MESH_ERRORS.MESH_TOO_LARGE, { file: fileName }, reason);
}

export function meshTooDeep(fileName: string, excess: NestingExcess, maxDepth: number): MeshFileError {
  const reason = `nesting deeper than ${maxDepth} levels (the depth limit), refused before parsing`;
  return new MeshFileError(MESH_ERRORS.MESH_TOO_DEEP, { file: fileName, line: excess.line, column: excess.column }, reason);
}

/**
 * The fast path for mesh files that tools write as JSON documents (`---` lines between objects):
 * JSON.parse reads them tens of times faster than a YAML parser, and JSON is YAML, so the objects
 * are the same. It answers only for a file it takes whole and finds valid; anything else (a YAML
 * document, a syntax error, an invalid or duplicate object, nesting deeper than maxDepth, which is
 * checked before JSON.parse runs) is undefined, and the YAML path reads the file and reports the
 * problem with its line. One difference remains: a key repeated inside a JSON object, which the
 * YAML parser refuses, is taken with its last value, as JSON allows.
 */
export function readJsonMesh(text: string, maxDepth: number): MeshObject[] | undefined {
  const start = /\S/.exec(text)?.[0];
  if (start !== '{' && start !== '-') return undefined;
  if (findExcessJsonNesting(text, maxDepth) !== -1) return undefined;
  const objects: MeshObject[] = [];
  const seen = new Set<string>();
  for (const chunk of text.split(/^---[ \t]*\r?$/m)) {
    const first = /\S/.exec(chunk)?.[0];
    if (first === undefined) continue;
    if (first !== '{') return undefined;
    let content: unknown;
    try {
      content = JSON.parse(chunk);
    } catch {
      return undefined;
    }
    const items = isRecord(content) && content['kind'] === 'List' ? content['items'] : [content];
    if (items === undefined || items === null) continue;
    if (!Array.isArray(items)) return undefined;
    for (const raw of items) {
      const result = validateObject(raw);
      if (!result.ok) return undefined;
      const key = `${result.value.kind}/${result.value.object.metadata.namespace ?? ''}/${result.value.object.metadata.name ?? ''}`;
      if (seen.has(key)) return undefined;
      seen.add(key);
      objects.push(result.value);
    }
  }
  return objects;
}

let yamlModule: typeof Yaml | undefined;

/** The YAML parser, loaded at the first YAML document: a JSON mesh file never needs it (idle memory). */
function yaml(): typeof Yaml {
  return (yamlModule ??= createRequire(import.meta.url)('yaml') as typeof Yaml);
}

function yamlDocuments(text: string, fileName: string): Result<MeshObject[], MeshFileError> {
  const { LineCounter, isNode, parseAllDocuments } = yaml();
  const lines = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const at = (offset: number | undefined): { line?: number; column?: number } => {
    if (offset === undefined) return {};
    const pos = lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const objects: MeshObject[] = [];
  const seen = new Map<string, MeshFileLocation>();
  for (const [index, document] of documents.entries()) {
    const documentNumber = index + 1;
    const syntax = document.errors[0];
    if (syntax !== undefined) {
      const location = { file: fileName, ...at(syntax.pos[0]), document: documentNumber };
      return err(new MeshFileError(MESH_ERRORS.MESH_PARSE, location, `YAML syntax error: ${syntax.message}`, { cause: syntax }));
    }
    const start = isNode(document.contents) ? document.contents.range?.[0] : undefined;
    let content: unknown;
    try {
      content = document.toJS({ maxAliasCount: 100 });
    } catch (cause) {
      const reason = `YAML error: ${messageOf(cause)}`;
      return err(new MeshFileError(MESH_ERRORS.MESH_PARSE, { file: fileName, ...at(start), document: documentNumber }, reason, { cause }));
    }
    if (content === null || content === undefined) continue;
    const entries = listItems(content, document);
    if (!entries.ok) {
      const location = { file: fileName, line: at(start).line, document: documentNumber, object: 'List' };
      return err(new MeshFileError(MESH_ERRORS.MESH_INVALID_OBJECT, location, entries.error));
    }
    for (const entry of entries.value) {
      const location: MeshFileLocation = {
        file: fileName,
        line: at(entry.offset ?? start).line,
        document: documentNumber,
        ...(entry.item === undefined ? {} : { item: entry.item }),
        object: describeObject(identify(entry.raw)),
      };
      const result = validateObject(entry.raw);
      if (!result.ok) return err(new MeshFileError(result.error.code, location, result.error.reason, { cause: result.error }));
      const key = `${result.value.kind}/${result.value.object.metadata.namespace ?? ''}/${result.value.object.metadata.name ?? ''}`;
      const first = seen.get(key);
      if (first !== undefined) {
        const reason = `duplicate object: already defined by ${formatLocation({ ...first, object: undefined })}`;
        return err(new MeshFileError(MESH_ERRORS.MESH_INVALID_OBJECT, location, reason));
      }
      seen.set(key, location);
      objects.push(result.value);
    }
  }
  return ok(objects);
}

interface Entry {
  readonly raw: unknown;
  /** 1-based, only for items of a `kind: List`. */
  readonly item: number | undefined;
  readonly offset: number | undefined;
}

/** One document is one object, or a `kind: List` of them. */
function listItems(content: unknown, document: Document.Parsed): Result<Entry[], string> {
  if (!isRecord(content) || content['kind'] !== 'List') return ok([{ raw: content, item: undefined, offset: undefined }]);
  const items = content['items'];
  if (items === undefined || items === null) return ok([]);
  if (!Array.isArray(items)) return err(`items: must be a list, got ${describeValue(items)}`);
  const { isMap, isNode, isSeq } = yaml();
  const node = isMap(document.contents) ? document.contents.get('items', true) : undefined;
  return ok(
    items.map((raw, i) => {
      const itemNode = isSeq(node) ? node.items[i] : undefined;
      return { raw, item: i + 1, offset: isNode(itemNode) ? itemNode.range?.[0] : undefined };
    }),
  );
}

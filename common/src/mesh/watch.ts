// MeshFileSource: the mesh-file provider. Loads the file, watches its directory (so atomic
// rename-replace and ConfigMap symlink swaps are seen), and publishes a new snapshot per valid
// change; an invalid change is logged and the last good snapshot stays in force. The file is read
// within its size limit and parsed off the event loop (small JSON documents excepted), so the
// proxy or control plane using it keeps serving on the last good snapshot meanwhile.
import { watch, type FSWatcher } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { MESH_ERRORS, err, ok, type Result } from '../errors.js';
import { logger, type Logger } from '../logger.js';
import { MeshFileError, meshTooDeep, meshTooLarge, readJsonMesh } from './file.js';
import { messageOf } from './fields.js';
import { DEFAULT_MESH_LIMITS, DEFAULT_PARSE_BUDGET, type MeshLimits, type ParseBudget } from './limits.js';
import { parseMeshOffThread } from './file-off-thread.js';
import { SnapshotListeners } from './listeners.js';
import { findExcessNesting } from './nesting.js';
import type { ParsedObjects } from './off-thread.js';
import { buildSnapshotInSlices } from './snapshot.js';
import type { MeshProvider, MeshSnapshot } from './types.js';
import { contentVersion } from './version.js';

export interface MeshFileSourceOptions {
  /** Quiet time after the last change event before the file is read again; default 100 ms. */
  readonly debounceMs?: number;
  /** Default: `logger('mesh.file')`. */
  readonly log?: Logger;
  /** Size and nesting limits; default DEFAULT_MESH_LIMITS (16 MiB, 64 levels). */
  readonly limits?: Partial<MeshLimits>;
  /** What parsing may cost off the loop; default DEFAULT_PARSE_BUDGET. */
  readonly budget?: Partial<ParseBudget>;
}

export class MeshFileSource implements MeshProvider {
  readonly path: string;
  private readonly debounceMs: number;
  private readonly log: Logger;
  private readonly listeners = new SnapshotListeners();
  private readonly limits: MeshLimits;
  private readonly budget: ParseBudget;
  private snapshot: MeshSnapshot | undefined;
  private error: MeshFileError | undefined;
  /** The bytes behind `snapshot`, and the last bytes refused: an event that changes neither is ignored. */
  private goodBytes: Buffer | undefined;
  private badBytes: Buffer | undefined;
  /** Cancels the parse under way (close()). */
  private parsing: AbortController | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Loads run one at a time, in order. */
  private loading: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(path: string, options: MeshFileSourceOptions = {}) {
    this.path = path;
    this.debounceMs = options.debounceMs ?? 100;
    this.log = options.log ?? logger('mesh.file');
    this.limits = Object.freeze({ ...DEFAULT_MESH_LIMITS, ...options.limits });
    this.budget = Object.freeze({ ...DEFAULT_PARSE_BUDGET, ...options.budget });
  }

  async start(): Promise<Result<MeshSnapshot, MeshFileError>> {
    if (this.snapshot !== undefined) return ok(this.snapshot);
    // Watch before the first read, so a change racing the read is not lost.
    const watching = this.watch();
    if (!watching.ok) return watching;
    const first = await this.reload();
    if (!first.ok) await this.close();
    return first;
  }

  current(): MeshSnapshot | undefined {
    return this.snapshot;
  }

  /** Why the latest load was refused; undefined when the latest load succeeded. */
  lastError(): MeshFileError | undefined {
    return this.error;
  }

  subscribe(listener: (snapshot: MeshSnapshot) => void): () => void {
    return this.listeners.add(listener);
  }

  /** Reads the file now; the result is the snapshot in force afterwards, or why the file was refused. */
  reload(): Promise<Result<MeshSnapshot, MeshFileError>> {
    const next = this.loading.then(() => this.load());
    this.loading = next;
    return next;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.parsing?.abort();
    this.watcher?.close();
    this.watcher = undefined;
    await this.loading;
  }

  private watch(): Result<void, MeshFileError> {
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), (_event, changed) => {
        // `..data` is the symlink Kubernetes swaps when a mounted ConfigMap changes.
        if (changed === null || changed === name || changed.startsWith('..')) this.schedule();
      });
    } catch (cause) {
      return err(new MeshFileError(MESH_ERRORS.MESH_PARSE, { file: this.path }, `cannot watch the file's directory: ${messageOf(cause)}`, { cause }));
    }
    this.watcher.on('error', (cause) => {
      this.log.error({ file: this.path, err: cause }, 'watching the mesh file failed; the last good mesh stays in force');
    });
    return ok(undefined);
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), this.debounceMs);
  }

  private async load(): Promise<Result<MeshSnapshot, MeshFileError>> {
    if (this.closed && this.snapshot !== undefined) return ok(this.snapshot);
    const read = await readBounded(this.path, this.limits.maxBytes);
    if (!read.ok) {
      this.badBytes = undefined;
      return this.refuse(read.error);
    }
    const bytes = read.value;
    if (this.error !== undefined && this.badBytes?.equals(bytes) === true) return err(this.error);
    if (bytes.length === 0 && this.snapshot !== undefined) {
      // Zero bytes is what a writer that truncates before writing leaves for a moment; a mesh
      // emptied on purpose still has a comment or a `---` in it.
      this.badBytes = bytes;
      return this.refuse(new MeshFileError(MESH_ERRORS.MESH_PARSE, { file: this.path }, 'the file is empty (to empty the mesh on purpose, leave a comment line in it)'));
    }
    if (this.snapshot !== undefined && this.goodBytes?.equals(bytes) === true) {
      this.error = undefined;
      return ok(this.snapshot);
    }
    const parsed = await this.parse(bytes);
    if (this.closed && this.snapshot !== undefined) return ok(this.snapshot);
    if (!parsed.ok) {
      this.badBytes = bytes;
      return this.refuse(parsed.error);
    }
    const snapshot = await buildSnapshotInSlices(parsed.value.objects, parsed.value.version);
    this.goodBytes = bytes;
    this.badBytes = undefined;
    this.error = undefined;
    if (this.closed || snapshot.version === this.snapshot?.version) return ok(this.snapshot ?? snapshot);
    this.snapshot = snapshot;
    this.log.info(
      { file: this.path, version: snapshot.version, services: snapshot.services.length, pods: snapshot.pods.length },
      'mesh file loaded',
    );
    this.listeners.deliver(snapshot, this.log);
    return ok(snapshot);
  }

  /**
   * Small JSON documents are read here (JSON.parse, its nesting checked first: a few milliseconds);
   * anything else in a worker thread, under the memory and time budget.
   */
  private async parse(bytes: Buffer): Promise<Result<ParsedObjects, MeshFileError>> {
    // Hostile nesting shows at the start of a file: refused here, no worker started (a worker
    // competing for the cores is itself a stall on a busy 2-core node). The scan is one pass from the
    // start that stops where the depth first passes the limit, so what it finds in the first bytes
    // it finds in the whole file; the rest is scanned again in the worker, with the parse.
    const excess = findExcessNesting(bytes.toString('utf8', 0, Math.min(bytes.length, PRESCAN_BYTES)), this.limits.maxDepth);
    if (excess !== undefined) return err(meshTooDeep(this.path, excess, this.limits.maxDepth));
    if (bytes.length <= this.budget.inlineJsonBytes) {
      const objects = readJsonMesh(bytes.toString('utf8'), this.limits.maxDepth);
      if (objects !== undefined) return ok({ objects, version: contentVersion(objects) });
    }
    const parsing = new AbortController();
    this.parsing = parsing;
    try {
      return await parseMeshOffThread(bytes, this.path, this.limits, this.budget, parsing.signal);
    } finally {
      if (this.parsing === parsing) this.parsing = undefined;
    }
  }

  private refuse(error: MeshFileError): Result<never, MeshFileError> {
    this.error = error;
    if (this.snapshot !== undefined) {
      this.log.error({ file: this.path, code: error.code, reason: error.message }, 'mesh file refused; the last good mesh stays in force');
    }
    return err(error);
  }
}

/** How much of a file the nesting pre-scan reads on the event loop before any worker starts. */
const PRESCAN_BYTES = 64 * 1024;

/**
 * The file's bytes, refused without reading when it is larger than `maxBytes` (and without reading
 * on when it grows past it meanwhile). The buffer is shared memory, handed to a parse worker uncopied.
 */
async function readBounded(path: string, maxBytes: number): Promise<Result<Buffer, MeshFileError>> {
  const unreadable = (cause: unknown): Result<never, MeshFileError> =>
    err(new MeshFileError(MESH_ERRORS.MESH_PARSE, { file: path }, `cannot read the file: ${messageOf(cause)}`, { cause }));
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    return unreadable(cause);
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) return err(meshTooLarge(path, size, maxBytes));
    // One byte more than the size stat gave: a read that fills it means the file grew.
    let buffer = Buffer.from(new SharedArrayBuffer(size + 1));
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length > maxBytes) return err(meshTooLarge(path, length, maxBytes));
        const larger = Buffer.from(new SharedArrayBuffer(Math.min(buffer.length * 2, maxBytes + 1)));
        buffer.copy(larger);
        buffer = larger;
      }
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) return ok(buffer.subarray(0, length));
      length += bytesRead;
    }
  } catch (cause) {
    return unreadable(cause);
  } finally {
    await handle.close();
  }
}

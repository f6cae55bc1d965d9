// MeshFileSource: the mesh-file provider. Loads the file, watches its directory (so atomic
// rename-replace and ConfigMap symlink swaps are seen), and publishes a new snapshot per valid
// change; an invalid change is logged and the last good snapshot stays in force.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { MESH_ERRORS, err, ok, type Result } from '../errors.js';
import { logger, type Logger } from '../logger.js';
import { MeshFileError, parseMeshObjects } from './file.js';
import { messageOf } from './fields.js';
import { buildSnapshotFrom } from './snapshot.js';
import type { MeshProvider, MeshSnapshot } from './types.js';

export interface MeshFileSourceOptions {
  /** Quiet time after the last change event before the file is read again; default 100 ms. */
  readonly debounceMs?: number;
  /** Default: `logger('mesh.file')`. */
  readonly log?: Logger;
}

export class MeshFileSource implements MeshProvider {
  readonly path: string;
  private readonly debounceMs: number;
  private readonly log: Logger;
  private readonly listeners = new Set<(snapshot: MeshSnapshot) => void>();
  private snapshot: MeshSnapshot | undefined;
  private error: MeshFileError | undefined;
  /** The text behind `snapshot`, and the last text refused: an event that changes neither is ignored. */
  private goodText: string | undefined;
  private badText: string | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Loads run one at a time, in order. */
  private loading: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(path: string, options: MeshFileSourceOptions = {}) {
    this.path = path;
    this.debounceMs = options.debounceMs ?? 100;
    this.log = options.log ?? logger('mesh.file');
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
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
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
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (cause) {
      this.badText = undefined;
      return this.refuse(new MeshFileError(MESH_ERRORS.MESH_PARSE, { file: this.path }, `cannot read the file: ${messageOf(cause)}`, { cause }));
    }
    if (text === this.badText && this.error !== undefined) return err(this.error);
    if (text === '' && this.snapshot !== undefined) {
      // Zero bytes is what a writer that truncates before writing leaves for a moment; a mesh
      // emptied on purpose still has a comment or a `---` in it.
      this.badText = text;
      return this.refuse(new MeshFileError(MESH_ERRORS.MESH_PARSE, { file: this.path }, 'the file is empty (to empty the mesh on purpose, leave a comment line in it)'));
    }
    if (this.snapshot !== undefined && text === this.goodText) {
      this.error = undefined;
      return ok(this.snapshot);
    }
    const parsed = parseMeshObjects(text, this.path);
    if (!parsed.ok) {
      this.badText = text;
      return this.refuse(parsed.error);
    }
    const snapshot = buildSnapshotFrom(parsed.value);
    this.goodText = text;
    this.badText = undefined;
    this.error = undefined;
    if (this.closed || snapshot.version === this.snapshot?.version) return ok(this.snapshot ?? snapshot);
    this.snapshot = snapshot;
    this.log.info(
      { file: this.path, version: snapshot.version, services: snapshot.services.length, pods: snapshot.pods.length },
      'mesh file loaded',
    );
    for (const listener of this.listeners) {
      try {
        listener(snapshot);
      } catch (cause) {
        this.log.error({ err: cause }, 'a mesh snapshot listener threw');
      }
    }
    return ok(snapshot);
  }

  private refuse(error: MeshFileError): Result<never, MeshFileError> {
    this.error = error;
    if (this.snapshot !== undefined) {
      this.log.error({ file: this.path, code: error.code, reason: error.message }, 'mesh file refused; the last good mesh stays in force');
    }
    return err(error);
  }
}

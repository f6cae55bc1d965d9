// Parsing off the event loop: a worker thread with its own heap limit, a time limit and the lowest
// thread priority turns bytes (a mesh file, a control-plane snapshot) into validated mesh objects,
// so a slow or hostile input costs the caller's loop only the objects it hands back, one batch per
// turn of the loop. The worker side is serveParseJob (one small script per input kind); the caller
// side parseOffThread. What the worker cannot parse within its limits is refused.
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { MESH_ERRORS, err, ok, type Result } from '../errors.js';
import { messageOf } from './fields.js';
import type { MeshFileLocation } from './file.js';
import type { ParseBudget } from './limits.js';
import { validateObject, type MeshObject } from './objects.js';
import type { KubeObject } from './types.js';
import { contentVersion } from './version.js';

/** About how much JSON each batch carries: a few milliseconds of the caller's loop to take in. */
const BATCH_BYTES = 64 * 1024;

/**
 * What a parse worker runs first: on Linux a thread has a priority of its own, and this one takes the
 * lowest before it loads the parser, so on a busy machine the threads serving traffic run first
 * (elsewhere, or without /proc, it keeps the default). Then the worker script itself.
 */
const BOOTSTRAP = `
const { readlinkSync } = require('node:fs');
const { setPriority } = require('node:os');
const { workerData } = require('node:worker_threads');
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isSafeInteger(tid) && tid > 0 && tid !== process.pid) setPriority(tid, 19);
} catch {}
import(workerData.script);
`;

/** Why an input was refused, as the worker says it (an Error does not cross threads whole). */
export interface ParseRefusal {
  readonly code: string;
  readonly reason: string;
  /** Where in a mesh file, when the input is one. */
  readonly location?: MeshFileLocation;
  /** A version the input names (a snapshot's), so a refusal can be answered for it. */
  readonly version?: string;
  readonly cause?: unknown;
}

/** Validated objects and their version: the input's own, else their content version. */
export interface ParsedObjects {
  readonly objects: MeshObject[];
  readonly version: string;
}

/** What a worker is given (workerData). The bytes are shared, not copied. */
interface ParseJob<O> {
  /** The worker script's URL, which BOOTSTRAP imports. */
  readonly script: string;
  readonly buffer: ArrayBufferLike;
  readonly offset: number;
  readonly length: number;
  readonly options: O;
  readonly batchBytes: number;
}

type WorkerAnswer =
  | { readonly type: 'parsed'; readonly count: number; readonly version: string }
  | { readonly type: 'refused'; readonly refusal: ParseRefusal }
  | { readonly type: 'batch'; readonly objects: readonly KubeObject[] };

interface WorkerRequest {
  readonly type: 'next';
}

/**
 * Runs `script` (a worker calling serveParseJob) on `bytes`. Resolves with the objects, validated
 * again on this thread as they arrive (so they are exactly what parsing here would give), or with the
 * refusal: the input's own problem, or TSMESH_ERR_MESH_TOO_LARGE when the parse needed more memory or
 * time than `budget` allows. An aborted parse resolves with a refusal at once.
 */
export function parseOffThread<O>(
  script: URL,
  bytes: Uint8Array,
  options: O,
  budget: Pick<ParseBudget, 'workerMemoryMb' | 'timeoutMs'>,
  signal?: AbortSignal,
): Promise<Result<ParsedObjects, ParseRefusal>> {
  const job: ParseJob<O> = { script: script.href, buffer: bytes.buffer, offset: bytes.byteOffset, length: bytes.byteLength, options, batchBytes: BATCH_BYTES };
  let worker: Worker;
  try {
    worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: job,
      resourceLimits: { maxOldGenerationSizeMb: budget.workerMemoryMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
    });
  } catch (cause) {
    return Promise.resolve(err({ code: MESH_ERRORS.MESH_PARSE, reason: `cannot start the parse worker: ${messageOf(cause)}`, cause }));
  }
  return new Promise((resolve) => {
    const objects: MeshObject[] = [];
    let expected = -1;
    let version = '';
    let settled = false;
    const finish = (result: Result<ParsedObjects, ParseRefusal>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      void worker.terminate();
      resolve(result);
    };
    const refuse = (code: string, reason: string, cause?: unknown): void => finish(err({ code, reason, ...(cause === undefined ? {} : { cause }) }));
    const abort = (): void => refuse(MESH_ERRORS.MESH_PARSE, 'the parse was cancelled');
    const timer = setTimeout(() => refuse(MESH_ERRORS.MESH_TOO_LARGE, `parsing took longer than ${budget.timeoutMs / 1000} s, the time limit`), budget.timeoutMs);
    if (signal?.aborted === true) return abort();
    signal?.addEventListener('abort', abort, { once: true });

    worker.on('message', (answer: WorkerAnswer) => {
      if (answer.type === 'refused') return finish(err(answer.refusal));
      if (answer.type === 'parsed') {
        expected = answer.count;
        version = answer.version;
      } else {
        for (const raw of answer.objects) {
          const result = validateObject(raw);
          // The worker validated the same object: a difference is a bug, still never a bad mesh.
          if (!result.ok) return refuse(result.error.code, result.error.message, result.error);
          objects.push(result.value);
        }
      }
      if (objects.length >= expected) return finish(ok({ objects, version }));
      // The next batch after this turn of the loop: I/O waiting meanwhile goes first.
      setImmediate(() => {
        if (!settled) worker.postMessage({ type: 'next' } satisfies WorkerRequest);
      });
    });
    worker.on('error', (cause: Error & { code?: string }) => {
      if (cause.code !== 'ERR_WORKER_OUT_OF_MEMORY') return refuse(MESH_ERRORS.MESH_PARSE, `the parse worker failed: ${messageOf(cause)}`, cause);
      const reason = `parsing needed more than ${budget.workerMemoryMb} MiB of memory, the parse limit (YAML needs about 40 times its size; JSON far less)`;
      refuse(MESH_ERRORS.MESH_TOO_LARGE, reason, cause);
    });
    worker.on('exit', (code) => refuse(MESH_ERRORS.MESH_PARSE, `the parse worker stopped (exit code ${code}) before answering`));
  });
}

/**
 * The worker's side: parses the job's bytes with `parse` (which checks the limits first), then
 * answers the version and object count, and a batch of objects per request. Called once, at the top
 * of a worker script.
 */
export function serveParseJob<O>(parse: (bytes: Buffer, options: O) => Result<{ objects: readonly MeshObject[]; version?: string }, ParseRefusal>): void {
  const port = parentPort;
  if (port === null) throw new Error('serveParseJob runs in a worker thread (see parseOffThread)');
  const job = workerData as ParseJob<O>;
  const send = (answer: WorkerAnswer): void => port.postMessage(answer);
  let parsed: Result<{ objects: readonly MeshObject[]; version?: string }, ParseRefusal>;
  try {
    parsed = parse(Buffer.from(job.buffer, job.offset, job.length), job.options);
  } catch (cause) {
    parsed = err({ code: MESH_ERRORS.MESH_PARSE, reason: `the parse failed: ${messageOf(cause)}` });
  }
  if (!parsed.ok) {
    const { cause: _cause, ...refusal } = parsed.error;
    return send({ type: 'refused', refusal });
  }
  const sizes: number[] = [];
  const version = contentVersion(parsed.value.objects, sizes);
  const objects = parsed.value.objects.map((o) => o.object);
  send({ type: 'parsed', count: objects.length, version: parsed.value.version ?? version });
  let next = 0;
  port.on('message', (request: WorkerRequest) => {
    if (request.type !== 'next') return;
    const start = next;
    let bytes = 0;
    while (next < objects.length && (next === start || bytes + (sizes[next] ?? 0) <= job.batchBytes)) bytes += sizes[next++] ?? 0;
    send({ type: 'batch', objects: objects.slice(start, next) });
  });
}

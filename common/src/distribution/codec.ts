// Framing and parsing of the distribution protocol: newline-delimited JSON, read incrementally from
// a byte stream with a bound on the line length; every message checked for its shape.
import { TsmeshError, err, ok, type Result } from '../errors.js';
import { describeValue, isRecord } from '../mesh/fields.js';
import type { KubeObject } from '../mesh/types.js';
import { DISTRIBUTION_ERRORS, type ClientMessage, type ServerMessage } from './protocol.js';

const NEWLINE = 0x0a;
const MAX_VERSION_LENGTH = 256;
const MAX_REASON_LENGTH = 16 * 1024;

/** One message as one line. */
export function encodeMessage(message: ServerMessage | ClientMessage): string {
  return `${JSON.stringify(message)}\n`;
}

/**
 * Splits a byte stream into lines. Bytes are kept until their newline (which never occurs inside a
 * UTF-8 sequence), so a character split across chunks is decoded whole. Blank lines are skipped.
 */
export class LineDecoder {
  private readonly maxLineBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed: TsmeshError | undefined;

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  /** The complete lines the chunk ends; fails (for good) once a line outgrows the limit. */
  push(chunk: Buffer | string): Result<string[], TsmeshError> {
    if (this.failed !== undefined) return err(this.failed);
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let newline = bytes.indexOf(NEWLINE, start); newline !== -1; newline = bytes.indexOf(NEWLINE, start)) {
      const piece = bytes.subarray(start, newline);
      if (this.pendingBytes + piece.length > this.maxLineBytes) return this.fail();
      const line = this.pending.length === 0 ? piece.toString('utf8') : Buffer.concat([...this.pending, piece]).toString('utf8');
      this.pending = [];
      this.pendingBytes = 0;
      if (line.trim() !== '') lines.push(line);
      start = newline + 1;
    }
    if (start < bytes.length) {
      const rest = bytes.subarray(start);
      if (this.pendingBytes + rest.length > this.maxLineBytes) return this.fail();
      this.pending.push(rest);
      this.pendingBytes += rest.length;
    }
    return ok(lines);
  }

  /** Bytes received after the last newline (a message cut short when the stream ended). */
  get buffered(): number {
    return this.pendingBytes;
  }

  private fail(): Result<never, TsmeshError> {
    this.pending = [];
    this.pendingBytes = 0;
    this.failed = new TsmeshError(DISTRIBUTION_ERRORS.MESSAGE_TOO_LARGE, `a message is longer than ${this.maxLineBytes} bytes`);
    return err(this.failed);
  }
}

function badMessage(reason: string, cause?: unknown): Result<never, TsmeshError> {
  return err(new TsmeshError(DISTRIBUTION_ERRORS.BAD_MESSAGE, reason, cause === undefined ? undefined : { cause }));
}

function parseJson(line: string): Result<Record<string, unknown>, TsmeshError> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    return badMessage(`not JSON: ${(cause as Error).message}`, cause);
  }
  return isRecord(value) ? ok(value) : badMessage(`a message must be a JSON object, got ${describeValue(value)}`);
}

function version(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' && value.length <= MAX_VERSION_LENGTH ? value : undefined;
}

/** A line from the control plane. Objects are only checked to be objects: the sidecar validates them. */
export function parseServerMessage(line: string): Result<ServerMessage, TsmeshError> {
  const parsed = parseJson(line);
  if (!parsed.ok) return parsed;
  const message = parsed.value;
  if (message['type'] !== 'snapshot') return badMessage(`unknown message type ${describeValue(message['type'])} (expected "snapshot")`);
  const v = version(message['version']);
  if (v === undefined) return badMessage(`a snapshot needs a version (a non-empty string), got ${describeValue(message['version'])}`);
  const objects = message['objects'];
  if (!Array.isArray(objects)) return badMessage(`snapshot ${v}: objects must be a list, got ${describeValue(objects)}`);
  const index = objects.findIndex((o) => !isRecord(o) || !isRecord(o['metadata']));
  if (index !== -1) return badMessage(`snapshot ${v}: objects[${index}] must be an object with metadata, got ${describeValue(objects[index])}`);
  return ok({ type: 'snapshot', version: v, objects: objects as KubeObject[] });
}

/** A line from a sidecar. */
export function parseClientMessage(line: string): Result<ClientMessage, TsmeshError> {
  const parsed = parseJson(line);
  if (!parsed.ok) return parsed;
  const message = parsed.value;
  const type = message['type'];
  if (type !== 'ack' && type !== 'nack') return badMessage(`unknown message type ${describeValue(type)} (expected "ack" or "nack")`);
  const v = version(message['version']);
  if (v === undefined) return badMessage(`an ${type} needs a version (a non-empty string), got ${describeValue(message['version'])}`);
  if (type === 'ack') return ok({ type, version: v });
  const reason = message['error'];
  if (typeof reason !== 'string' || reason === '') return badMessage(`a nack needs an error (a non-empty string), got ${describeValue(reason)}`);
  return ok({ type, version: v, error: reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH)}...` : reason });
}

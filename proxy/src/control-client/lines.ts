// Splitting the control plane's byte stream into snapshot lines, each bounded: a line over the limit
// is not kept but skipped to its end and reported with its size and first bytes (where its version
// is), so the sidecar can refuse that one snapshot (NACK) and stay connected.
const NEWLINE = 0x0a;
/** Bytes of an oversized line kept to find its version in. */
const PREFIX_BYTES = 4096;

export type SnapshotLine =
  | { readonly kind: 'line'; readonly bytes: Buffer }
  | { readonly kind: 'too-large'; readonly bytes: number; readonly prefix: Buffer };

export class SnapshotLineReader {
  private readonly maxLineBytes: number;
  private readonly shareAboveBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Over the limit: counting the line's bytes to its end, its first bytes kept. */
  private skipping: { bytes: number; prefix: Buffer } | undefined;

  /**
   * @param maxLineBytes longest line kept
   * @param shareAboveBytes a line longer than this is assembled in shared memory (a parse worker reads it uncopied)
   */
  constructor(maxLineBytes: number, shareAboveBytes: number) {
    this.maxLineBytes = maxLineBytes;
    this.shareAboveBytes = shareAboveBytes;
  }

  /** The lines the chunk completes (blank ones skipped). */
  push(chunk: Buffer): SnapshotLine[] {
    const lines: SnapshotLine[] = [];
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const piece = chunk.subarray(start, newline === -1 ? chunk.length : newline);
      if (this.skipping !== undefined) {
        this.skipping.bytes += piece.length;
      } else if (this.pendingBytes + piece.length > this.maxLineBytes) {
        this.skipping = { bytes: this.pendingBytes + piece.length, prefix: Buffer.concat([...this.pending, piece.subarray(0, PREFIX_BYTES)]).subarray(0, PREFIX_BYTES) };
        this.pending = [];
        this.pendingBytes = 0;
      } else if (piece.length > 0) {
        this.pending.push(piece);
        this.pendingBytes += piece.length;
      }
      if (newline === -1) break;
      const line = this.take();
      if (line !== undefined) lines.push(line);
      start = newline + 1;
    }
    return lines;
  }

  /** Bytes received after the last newline (a message cut short when the stream ended). */
  get buffered(): number {
    return this.skipping?.bytes ?? this.pendingBytes;
  }

  private take(): SnapshotLine | undefined {
    const skipped = this.skipping;
    if (skipped !== undefined) {
      this.skipping = undefined;
      return { kind: 'too-large', bytes: skipped.bytes, prefix: skipped.prefix };
    }
    const pieces = this.pending;
    const length = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (length === 0) return undefined;
    let bytes: Buffer;
    if (length > this.shareAboveBytes) {
      bytes = Buffer.from(new SharedArrayBuffer(length));
      let at = 0;
      for (const piece of pieces) at += piece.copy(bytes, at);
    } else {
      bytes = pieces.length === 1 && pieces[0] !== undefined ? pieces[0] : Buffer.concat(pieces, length);
    }
    return isBlank(bytes) ? undefined : { kind: 'line', bytes };
  }
}

function isBlank(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false;
  return true;
}

/**
 * The version a snapshot line names, read from its first bytes without parsing the rest: the
 * control plane writes `{"type":"snapshot","version":"...",` first. Only a string member of the
 * top-level object counts (a `version` inside the objects cannot be reached before them).
 */
export function versionOf(prefix: Buffer): string | undefined {
  const head = prefix.toString('utf8', 0, Math.min(prefix.length, PREFIX_BYTES));
  const match = /^\s*\{\s*(?:"(?:[^"\\]|\\.)*"\s*:\s*"(?:[^"\\]|\\.)*"\s*,\s*)*?"version"\s*:\s*"((?:[^"\\]|\\.){1,256})"/.exec(head);
  if (match?.[1] === undefined) return undefined;
  try {
    const version: unknown = JSON.parse(`"${match[1]}"`);
    return typeof version === 'string' && version !== '' ? version : undefined;
  } catch {
    return undefined;
  }
}

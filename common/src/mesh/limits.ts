// The limits on mesh configuration, in one place: how large a mesh file may be, how deep its objects
// may nest, and what a parse may cost in the worker thread that runs it. Each limit is named,
// defaulted here and checked before the work it bounds (see file.ts, parse-worker.ts, watch.ts).

/** What a mesh file (or a control-plane snapshot) may be; checked before any parser runs. */
export interface MeshLimits {
  /** Largest mesh file read, in bytes; a larger one is refused without being read. */
  readonly maxBytes: number;
  /** Deepest nesting of collections (a mapping or list in a mapping is two levels). */
  readonly maxDepth: number;
}

/** What parsing a mesh file off the event loop may take. */
export interface ParseBudget {
  /** JSON documents up to this size are read on the calling thread (JSON.parse, depth checked first); all else in a worker. */
  readonly inlineJsonBytes: number;
  /** Heap (V8 old generation) of the parse worker, in MiB; a parse needing more is refused. */
  readonly workerMemoryMb: number;
  /** A parse taking longer is stopped and refused. */
  readonly timeoutMs: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const DEFAULT_MESH_LIMITS: MeshLimits = Object.freeze({ maxBytes: 16 * MiB, maxDepth: 64 });

/**
 * Worker heap: YAML needs about 40 times the file's size while parsing (JSON documents far less),
 * so 256 MiB reads YAML files of about 5 MiB and the 16 MiB limit in JSON, and a hostile file cannot
 * take the sidecar over the injector's default 1 GiB memory limit.
 */
export const DEFAULT_PARSE_BUDGET: ParseBudget = Object.freeze({ inlineJsonBytes: 64 * KiB, workerMemoryMb: 256, timeoutMs: 30_000 });

/** Bounds of the settings (a depth limit allocates a stack of that many numbers). */
export const MESH_LIMIT_RANGES = Object.freeze({ maxBytes: { min: 1, max: 1024 * MiB }, maxDepth: { min: 1, max: 10_000 } });

/** `1 GiB`, `16 MiB`, `300.5 KiB`, `12 bytes`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${trim(bytes / (1024 * MiB))} GiB`;
  if (bytes >= MiB) return `${trim(bytes / MiB)} MiB`;
  if (bytes >= KiB) return `${trim(bytes / KiB)} KiB`;
  return `${bytes} bytes`;
}

function trim(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** A byte size as a flag takes it: `1048576`, `512Ki`, `16Mi`, `1Gi` (a trailing `B` allowed); undefined when not one. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+)\s*(Ki|Mi|Gi)?B?$/i.exec(text.trim());
  if (match === null) return undefined;
  const unit = (match[2] ?? '').toLowerCase();
  const factor = unit === 'ki' ? KiB : unit === 'mi' ? MiB : unit === 'gi' ? 1024 * MiB : 1;
  const value = Number(match[1]) * factor;
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * The limits as flags give them (undefined: the default). The error names the value and what is
 * expected; the caller adds the flag's name.
 */
export function parseMeshLimits(
  maxBytes: string | undefined,
  maxDepth: string | undefined,
): { ok: true; value: MeshLimits } | { ok: false; error: { readonly which: keyof MeshLimits; readonly message: string } } {
  const bytes = maxBytes === undefined ? DEFAULT_MESH_LIMITS.maxBytes : parseByteSize(maxBytes);
  const range = MESH_LIMIT_RANGES;
  if (bytes === undefined || bytes < range.maxBytes.min || bytes > range.maxBytes.max) {
    return { ok: false, error: { which: 'maxBytes', message: `"${maxBytes}" is not a size from 1 byte to ${formatBytes(range.maxBytes.max)} (e.g. 16Mi, 512Ki, 1048576)` } };
  }
  const depth = maxDepth === undefined ? DEFAULT_MESH_LIMITS.maxDepth : /^\d{1,6}$/.test(maxDepth) ? Number(maxDepth) : NaN;
  if (!(depth >= range.maxDepth.min && depth <= range.maxDepth.max)) {
    return { ok: false, error: { which: 'maxDepth', message: `"${maxDepth}" is not a depth from ${range.maxDepth.min} to ${range.maxDepth.max}` } };
  }
  return { ok: true, value: Object.freeze({ maxBytes: bytes, maxDepth: depth }) };
}

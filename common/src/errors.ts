// Stable error codes shared by every tsmesh program. Each package adds its own codes in its errors.ts.

/** An error with a stable code; a package's own error class narrows `C` to its codes. */
export class TsmeshError<C extends string = string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TsmeshError';
    this.code = code;
  }
}

/** A TsmeshError with `cause` only when there is one (an own `cause: undefined` would still be logged). */
export function codedError<C extends string>(code: C, message: string, cause?: unknown): TsmeshError<C> {
  return new TsmeshError(code, message, cause === undefined ? undefined : { cause });
}

/** An expected failure carried as a value (resolvers, balancers, parsers): no throw on the hot path. */
export type Result<T, E = TsmeshError> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });

export const MESH_ERRORS = {
  MESH_PARSE: 'TSMESH_ERR_MESH_PARSE',
  MESH_UNKNOWN_KIND: 'TSMESH_ERR_MESH_UNKNOWN_KIND',
  MESH_INVALID_OBJECT: 'TSMESH_ERR_MESH_INVALID_OBJECT',
  /** Over a size limit: the file's bytes, or the memory or time its parse may take. */
  MESH_TOO_LARGE: 'TSMESH_ERR_MESH_TOO_LARGE',
  /** Nesting deeper than the limit, found before any parser ran. */
  MESH_TOO_DEEP: 'TSMESH_ERR_MESH_TOO_DEEP',
  BAD_FLAG: 'TSMESH_ERR_BAD_FLAG',
} as const;

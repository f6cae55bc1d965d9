// The only reader of flags and environment for the control plane: parsed once into a frozen object;
// a bad value stops the program with a message naming it.
import { parseArgs } from 'node:util';
import { isLogLevel, parseMeshLimits, type MeshLimits, type TsmeshError } from '@tsmesh/common';
import { CONTROL_ERRORS, controlError } from './errors.js';

/** Environment variables of `tsmesh control`; each mirrors the flag of the same name. */
export const CONTROL_ENV = {
  kubeconfig: 'TSMESH_CONTROL_KUBECONFIG',
  config: 'TSMESH_CONTROL_CONFIG',
  meshMaxBytes: 'TSMESH_CONTROL_MESH_MAX_BYTES',
  meshMaxDepth: 'TSMESH_CONTROL_MESH_MAX_DEPTH',
  logLevel: 'TSMESH_CONTROL_LOG_LEVEL',
} as const;

/** Where the mesh comes from: a mesh file (`--config`), or the Kubernetes API server. */
export type MeshSourceConfig =
  /** `limits`: a larger file is refused unread, deeper nesting before parsing (`--mesh-max-bytes`, `--mesh-max-depth`); default DEFAULT_MESH_LIMITS. */
  | { readonly kind: 'file'; readonly path: string; readonly limits?: MeshLimits }
  /** `kubeconfig` undefined: $KUBECONFIG, else ~/.kube/config, else the in-cluster service account. */
  | { readonly kind: 'kubernetes'; readonly kubeconfig: string | undefined };

export interface ControlConfig {
  readonly source: MeshSourceConfig;
  readonly logLevel: string;
}

function badFlag(message: string, cause?: unknown): TsmeshError {
  return controlError(CONTROL_ERRORS.BAD_FLAG, message, cause);
}

/** Flags and environment of `tsmesh control`. Throws a TsmeshError (TSMESH_ERR_BAD_FLAG) on a bad value. */
export function controlConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): ControlConfig {
  let values: Record<string, string | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        kubeconfig: { type: 'string' },
        config: { type: 'string' },
        'mesh-max-bytes': { type: 'string' },
        'mesh-max-depth': { type: 'string' },
        'log-level': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw badFlag(error instanceof Error ? error.message : String(error), error);
  }
  // A flag wins over its variable; an empty value counts as not given.
  const pick = (flag: string, variable: string): string | undefined => {
    const value = values[flag] ?? env[variable];
    return value === '' ? undefined : value;
  };
  const file = pick('config', CONTROL_ENV.config);
  const kubeconfig = pick('kubeconfig', CONTROL_ENV.kubeconfig);
  if (file !== undefined && kubeconfig !== undefined) {
    throw badFlag('--config and --kubeconfig exclude each other: the mesh comes from a file or from Kubernetes');
  }
  const logLevel = pick('log-level', CONTROL_ENV.logLevel) ?? 'info';
  if (!isLogLevel(logLevel)) throw badFlag(`--log-level: "${logLevel}" is not valid (expected a pino level)`);
  const limits = parseMeshLimits(pick('mesh-max-bytes', CONTROL_ENV.meshMaxBytes), pick('mesh-max-depth', CONTROL_ENV.meshMaxDepth));
  if (!limits.ok) throw badFlag(`--${limits.error.which === 'maxBytes' ? 'mesh-max-bytes' : 'mesh-max-depth'}: ${limits.error.message}`);
  const source: MeshSourceConfig = file !== undefined ? { kind: 'file', path: file, limits: limits.value } : { kind: 'kubernetes', kubeconfig };
  return Object.freeze({ source: Object.freeze(source), logLevel });
}

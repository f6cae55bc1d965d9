// The mesh distribution protocol between the control plane and its sidecars: one long-lived HTTP/2
// stream per sidecar over mTLS, newline-delimited JSON both ways (see README.md).
import type { KubeObject } from '../mesh/types.js';

/** The one stream a sidecar opens: `POST`, kept open both ways for the life of the connection. */
export const MESH_STREAM_PATH = '/v1/mesh/stream';
/** Both bodies: one JSON object per line. */
export const NDJSON_CONTENT_TYPE = 'application/x-ndjson';
/** Request and response header naming the protocol revision; a server refuses one it does not speak. */
export const PROTOCOL_HEADER = 'tsmesh-protocol';
export const PROTOCOL_VERSION = 'mesh.v1';
/** Optional request header: the sidecar's pod name, shown by the control plane's debug endpoint. */
export const POD_NAME_HEADER = 'tsmesh-pod-name';

/** The control plane's port for sidecars, and its local debug port. */
export const DEFAULT_CONTROL_PORT = 15010;
export const DEFAULT_DEBUG_PORT = 15011;

/** Longest line a server reads from a sidecar (acks and nacks are small). */
export const MAX_CLIENT_MESSAGE_BYTES = 64 * 1024;
/** Longest line a sidecar reads by default (one whole snapshot). */
export const DEFAULT_MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;

export const DISTRIBUTION_ERRORS = {
  /** A line that is not JSON, or not a message of the protocol. */
  BAD_MESSAGE: 'TSMESH_ERR_DISTRIBUTION_BAD_MESSAGE',
  /** A line longer than the reader accepts. */
  MESSAGE_TOO_LARGE: 'TSMESH_ERR_DISTRIBUTION_MESSAGE_TOO_LARGE',
  /** The server's refusals of a stream (the HTTP status says the same): a path other than MESH_STREAM_PATH (404), */
  NOT_FOUND: 'TSMESH_ERR_NOT_FOUND',
  /** a method other than POST (405), */
  METHOD: 'TSMESH_ERR_METHOD',
  /** a stream whose connection is already gone (500), */
  INTERNAL: 'TSMESH_ERR_INTERNAL',
  /** a PROTOCOL_HEADER version the server does not speak (400), */
  PROTOCOL: 'TSMESH_ERR_PROTOCOL',
  /** and no mesh snapshot yet, or the server closing (503). */
  UNAVAILABLE: 'TSMESH_ERR_UNAVAILABLE',
} as const;

/** Server → sidecar: the whole mesh as this sidecar sees it. Every message replaces the last. */
export interface SnapshotMessage {
  readonly type: 'snapshot';
  /** Content-derived: equal objects, equal version. */
  readonly version: string;
  readonly objects: readonly KubeObject[];
}

/** Sidecar → server: the snapshot `version` is applied. */
export interface AckMessage {
  readonly type: 'ack';
  readonly version: string;
}

/** Sidecar → server: the snapshot `version` was refused; the sidecar keeps its last good one. */
export interface NackMessage {
  readonly type: 'nack';
  readonly version: string;
  /** Why, naming the objects and fields refused. */
  readonly error: string;
}

export type ServerMessage = SnapshotMessage;
export type ClientMessage = AckMessage | NackMessage;

/** The JSON body of a refused stream (401, 403, 404, 405, 415). */
export interface DistributionErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

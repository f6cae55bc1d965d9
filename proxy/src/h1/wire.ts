// The bytes of HTTP/1.1 the relay writes itself: its fixed answers, and the checks and helpers
// for the heads it re-serialises from llhttp's raw header lists.
import type { Socket } from 'node:net';
import type { HttpConnectionContext, HttpRouteTarget } from '../http/context.js';
import { TRACE_HEADERS } from '../telemetry/index.js';
import { isWritableHeader } from './llhttp.js';

export const TRACE_HEADER_SET = new Set(TRACE_HEADERS);
/** Methods a proxy may send twice (RFC 9110 9.2.2). */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
export const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
export const CRLF = '\r\n';

/**
 * Writes one piece of a message body as it goes on the wire: a chunk of the chunked coding
 * (RFC 9112 7.1) when `chunked`, else the bytes as they are. Returns what the last write
 * returned: false when the socket's buffer is full (wait for 'drain').
 */
export function writeBodyChunk(socket: Pick<Socket, 'write'>, chunk: Buffer, chunked: boolean): boolean {
  if (!chunked) return socket.write(chunk);
  socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
  socket.write(chunk);
  return socket.write(CRLF, 'latin1');
}
/** A request head must arrive whole within this (slow-header clients), as h1.ts's server `headersTimeout`. */
export const HEADERS_TIMEOUT_MS = 30_000;
export const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';
export const HEADERS_TOO_LARGE = 'HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';
export const HEADERS_TIMED_OUT = 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';
/** How long a refused client gets to take its 400/431 before its connection is destroyed. */
export const REFUSAL_LINGER_MS = 1_000;
export const LAST_CHUNK = '0\r\n\r\n';

/** The value of header `name` (lowercase) in a raw list: repeats joined as Node joins them. */
export function headerOf(raw: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as string;
    if (n.length !== name.length || n.toLowerCase() !== name) continue;
    const v = raw[i + 1] as string;
    if (found === undefined) found = v;
    else if (name === 'host') return found;
    else found = `${found}, ${v}`;
  }
  return found;
}

/** What the route and the connection add must not break the request's framing (CR/LF in a value). */
export function writableEdits(target: HttpRouteTarget, ctx: HttpConnectionContext): boolean {
  const edit = target.requestHeaders;
  for (const list of [edit?.set, edit?.add, ctx.addHeaders]) {
    for (const [name, value] of list ?? []) if (!isWritableHeader(name, value)) return false;
  }
  return target.path === undefined || isRequestTarget(target.path);
}

/** No control character, space or DEL (which would end or split the request line). */
export function isRequestTarget(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

export function appendHeaders(head: string, raw: readonly string[]): string {
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return head;
}

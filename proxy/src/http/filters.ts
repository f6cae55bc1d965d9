// Route filters where the forwarders meet the wire: the request head the endpoint gets (header
// edits, URLRewrite's host), the response head the client gets (ResponseHeaderModifier), and the
// redirect the sidecar answers itself (RequestRedirect). Each forwarder calls these in one line;
// the routing decision behind them is made once per request in outbound/router.ts.
import type { ServerResponse } from 'node:http';
import { markNeverIndexed, type FieldList } from '../h2/hpack/index.js';
import type { RequestRecord } from '../telemetry/index.js';
import { applyHeaderEditRaw, type HeaderEdit, type HttpConnectionContext, type HttpRouteTarget } from './context.js';

/** An HTTP/1 request's raw headers as the endpoint gets them: the route's edit, URLRewrite's Host, the connection's additions. */
export function upstreamRawHeaders(kept: string[], target: HttpRouteTarget, ctx: HttpConnectionContext): string[] {
  const edit = target.authority === undefined ? target.requestHeaders : withHost(target.requestHeaders, target.authority);
  return applyHeaderEditRaw(kept, edit, ctx.addHeaders);
}

function withHost(edit: HeaderEdit | undefined, host: string): HeaderEdit {
  return {
    set: [...(edit?.set ?? []).filter(([name]) => name.toLowerCase() !== 'host'), ['host', host]],
    add: (edit?.add ?? []).filter(([name]) => name.toLowerCase() !== 'host'),
    remove: edit?.remove ?? [],
  };
}

/** An HTTP/1 response head's raw headers with the route's ResponseHeaderModifier applied. */
export function responseRawHeaders(raw: string[], target: HttpRouteTarget | undefined): string[] {
  const edit = target?.responseHeaders;
  return edit === undefined ? raw : applyHeaderEditRaw(raw, edit);
}

/** An HTTP/1 response head's raw headers with the session persistence header (UpstreamCall.sessionHeader), if any, added. */
export function withSessionRaw(raw: string[], header: [string, string] | undefined): string[] {
  return header === undefined ? raw : [...raw, header[0], header[1]];
}

/** HTTP/2 response fields with the session persistence header, if any, added; never-indexed values stay so. */
export function withSessionFields(fields: string[], header: [string, string] | undefined): string[] {
  if (header === undefined) return fields;
  const out = [...fields, header[0], header[1]];
  const never = (fields as FieldList).neverIndexed;
  if (never) for (const value of never) markNeverIndexed(out, value);
  return out;
}

/**
 * HTTP/2 response fields (`:status` first) with the route's ResponseHeaderModifier applied:
 * pseudo-headers stay first and untouched, names stay lower-case, never-indexed values stay so.
 */
export function responseFields(fields: string[], target: HttpRouteTarget | undefined): string[] {
  const edit = target?.responseHeaders;
  if (edit === undefined) return fields;
  const drop = new Set<string>(edit.remove);
  for (const [name] of edit.set) drop.add(name);
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (name.charCodeAt(0) !== 58 /* : */ && drop.has(name)) continue;
    out.push(name, fields[i + 1]!);
  }
  for (const [name, value] of edit.set) out.push(name.toLowerCase(), value);
  for (const [name, value] of edit.add) out.push(name.toLowerCase(), value);
  const never = (fields as FieldList).neverIndexed;
  if (never) for (const value of never) markNeverIndexed(out, value);
  return out;
}

/**
 * The headers of a RequestRedirect answer (raw list, lower-case names): Location, an empty body, the
 * route's response edits; for a LocalReply (a rate limit's 429), its own headers instead.
 */
export function redirectRawHeaders(target: HttpRouteTarget): string[] {
  if (target.localReply !== undefined) return [...target.localReply.headers];
  return responseRawHeaders(['location', target.redirect?.location ?? '/', 'content-length', '0'], target);
}

/** Answers a RequestRedirect on node:http's engine. The request body, if any, is left for the server to discard. */
export function answerRedirect(res: ServerResponse, record: RequestRecord, target: HttpRouteTarget): void {
  const status = target.redirect?.status ?? 302;
  record.response(status);
  res.writeHead(status, redirectRawHeaders(target) as unknown as Record<string, string>);
  res.end();
  record.end({ bytesSent: 0 });
}
